// Package e2e holds multi-host end-to-end tests: a lab of network namespaces,
// each with a real dockerd and a calico node container, and real containers.
package e2e

import (
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/lab/labtest"
)

// Lab is a running lab for one test (labtest.Lab), with this package's
// own helpers.
type Lab struct{ *labtest.Lab }

// newLab brings up a lab with calico nodes and removes it at cleanup.
func newLab(t *testing.T, hosts, subnets int) *Lab {
	t.Helper()
	return newLabWith(t, lab.Config{Hosts: hosts, Subnets: subnets, StartNodes: true})
}

// newLabWith brings up a lab from c (name, binary and images filled in) and
// removes it at cleanup.
func newLabWith(t *testing.T, c lab.Config) *Lab {
	t.Helper()
	return &Lab{labtest.New(t, "e", c, 5*time.Minute)}
}

func (l *Lab) host(name string) *lab.Host { return l.Host(name) }

// seedPolicy is the seed scenario's policy, shared with `make demo`.
const seedPolicy = "../../examples/allow-web-to-db.yaml"
