package syncer

import (
	"net/netip"
	"testing"

	"github.com/calico-docker/calico/internal/datastore"
)

// A block records which of its addresses another node holds (borrowed), as
// IPAM writes it: the attribute's secondary "node".
func TestDecodeBlockHolders(t *testing.T) {
	v := `{"cidr":"10.0.0.0/30","affinity":"host:h1",
	  "allocations":[0,null,1,2],
	  "attributes":[{"handle_id":"a","secondary":{"node":"h1"}},
	                {"handle_id":"b","secondary":{"node":"h2","kind":"workload"}},
	                {"handle_id":"c","secondary":{"kind":"manual"}}]}`
	u, err := Decode(datastore.KV{Key: BlockAssignmentPrefix + "ipv4/block/10.0.0.0-30", Value: []byte(v)})
	if err != nil {
		t.Fatal(err)
	}
	b := u.Object.(*Block)
	if b.Node != "h1" || len(b.Holders) != 1 || b.Holders[netip.MustParseAddr("10.0.0.2")] != "h2" {
		t.Fatalf("block %+v: want node h1 and 10.0.0.2 held by h2", b)
	}
}
