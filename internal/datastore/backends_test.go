package datastore_test

import (
	"testing"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
)

func TestConformanceMemory(t *testing.T) {
	RunConformance(t, func(t *testing.T) datastore.Store {
		s := datastore.NewMemory()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestConformanceEmbeddedEtcd(t *testing.T) {
	eps := etcdtest.Start(t)
	RunConformance(t, func(t *testing.T) datastore.Store { return etcdtest.Store(t, eps) })
}

func TestConformanceExternalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: starts a 3-member etcd cluster")
	}
	c := etcdtest.StartCluster(t, 3)
	RunConformance(t, func(t *testing.T) datastore.Store { return etcdtest.Store(t, c.Endpoints()) })
}
