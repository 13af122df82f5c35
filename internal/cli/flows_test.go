package cli

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/flows"
)

// The table names the host and both endpoints with their network and
// labels (not the docker.* ones, shown as name and network already).
func TestFlowTableNamesEndpoints(t *testing.T) {
	r := flows.Record{End: time.Now(), Host: "host1", Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("10.0.0.1"),
		Proto: "tcp", DstPort: 80, Action: "deny", Direction: "ingress", Endpoint: "docker/w1", Rule: -1, Reason: "no policy or profile allowed it",
		SrcName: "db2", SrcNetwork: "backend", SrcLabels: map[string]string{"role": "db", "tier": "2", "docker.container": "db2"},
		DstEndpoint: "docker/w1", DstName: "web1", DstNetwork: "frontend", DstLabels: map[string]string{"role": "web"}, Packets: 3}
	var b strings.Builder
	writeFlowTable(&b, []flows.Record{r}, func(id string) string { return id }, true)
	out := b.String()
	for _, want := range []string{"host1", "db2 (10.0.0.2 backend role=db,tier=2)", "web1 (10.0.0.1 frontend role=web)", "DENY", "[ingress of web1]"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "docker.container") {
		t.Errorf("table shows docker.* labels:\n%s", out)
	}
	if !matchesRef("db2", r.Src.String(), r.SrcEndpoint, r.SrcName, "") || matchesRef("web1", r.Src.String(), r.SrcEndpoint, r.SrcName, "") {
		t.Error("--from matches by the recorded name")
	}
}
