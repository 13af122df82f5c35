package agent_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/testutil"
)

// TestAutoHostEndpoint: with Calico's autoCreate switch on, the node keeps
// a "*" HostEndpoint of its own, labelled as the node and with its
// addresses, which the dataplane then enforces; it follows the node's
// labels, comes back when deleted by hand, and goes when the switch is off.
func TestAutoHostEndpoint(t *testing.T) {
	testutil.RequireRoot(t)
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	name := testNode + "-auto-hep"
	key := datastore.ResourceKey("hostendpoints", "", name)
	get := func() (*api.HostEndpoint, error) {
		kv, err := e.store.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		r, err := api.DecodeStored(api.KindHostEndpoint, name, kv.Value, kv.Revision)
		if err != nil {
			return nil, err
		}
		return r.(*api.HostEndpoint), nil
	}
	if _, err := get(); !errors.Is(err, datastore.ErrNotFound) {
		t.Fatalf("an automatic host endpoint without the switch: %v", err)
	}
	kcc := func(v string) string {
		return fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: KubeControllersConfiguration
metadata: {name: default}
spec:
  controllers:
    node:
      hostEndpoint: {autoCreate: %s}
`, v)
	}
	e.apply(t, kcc("Enabled"))
	want := func(label string) func() error {
		return func() error {
			h, err := get()
			if err != nil {
				return err
			}
			if h.Spec.Node != testNode || h.Spec.InterfaceName != "*" || !slices.Contains(h.Spec.ExpectedIPs, hostV4) ||
				!slices.Equal(h.Spec.Profiles, []string{"projectcalico-default-allow"}) ||
				h.Labels["projectcalico.org/created-by"] != "calico-kube-controllers" ||
				h.Labels["kubernetes.io/hostname"] != testNode {
				return fmt.Errorf("host endpoint %+v %+v", h.Labels, h.Spec)
			}
			if label != "" && !strings.Contains(fmt.Sprint(h.Labels), label) {
				return fmt.Errorf("labels %v lack %s", h.Labels, label)
			}
			return nil
		}
	}
	testutil.Eventually(t, 15*time.Second, want(""))
	// The dataplane enforces it: the host endpoint chains exist.
	testutil.Eventually(t, 15*time.Second, func() error {
		if nft := e.nftTable(t); !strings.Contains(nft, "host-in") {
			return fmt.Errorf("no host endpoint chains yet")
		}
		return nil
	})

	e.calico(t, "", "label", "nodes", testNode, "rack=r1")
	testutil.Eventually(t, 15*time.Second, want("rack:r1"))

	if err := e.store.Delete(ctx, key, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 15*time.Second, want("rack:r1"))

	e.apply(t, kcc("Disabled"))
	testutil.Eventually(t, 15*time.Second, func() error {
		if _, err := get(); !errors.Is(err, datastore.ErrNotFound) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
}
