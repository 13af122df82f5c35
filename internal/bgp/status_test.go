package bgp

import (
	"strings"
	"testing"
	"time"
)

func TestFormatStatus(t *testing.T) {
	now := time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)
	peers := []PeerStatus{
		{Address: addr("172.17.8.102"), Type: PeerTypeMesh, State: "Established", Since: time.Date(2026, 3, 4, 9, 30, 4, 0, time.UTC)},
		{Address: addr("172.17.8.103"), Type: PeerTypeNode, State: "Active", Since: time.Date(2026, 3, 1, 9, 30, 4, 0, time.UTC), Info: "(last down: hold timer expired)"},
		{Address: addr("fd00::1"), Type: PeerTypeGlobal, State: "Idle", AdminDown: true},
	}
	var b strings.Builder
	if err := formatStatus(&b, peers, now); err != nil {
		t.Fatal(err)
	}
	want := `IPv4 BGP status
+--------------+-------------------+-------+------------+----------------------------------------+
| PEER ADDRESS |     PEER TYPE     | STATE |   SINCE    |                  INFO                  |
+--------------+-------------------+-------+------------+----------------------------------------+
| 172.17.8.102 | node-to-node mesh | up    | 09:30:04   | Established                            |
| 172.17.8.103 | node specific     | start | 2026-03-01 | Active (last down: hold timer expired) |
+--------------+-------------------+-------+------------+----------------------------------------+

IPv6 BGP status
+--------------+-----------+-------+-------+------+
| PEER ADDRESS | PEER TYPE | STATE | SINCE | INFO |
+--------------+-----------+-------+-------+------+
| fd00::1      | global    | down  |       | Idle |
+--------------+-----------+-------+-------+------+
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := formatStatus(&b, nil, now); err != nil {
		t.Fatal(err)
	}
	if want := "IPv4 BGP status\nNo IPv4 peers found.\n\nIPv6 BGP status\nNo IPv6 peers found.\n"; b.String() != want {
		t.Errorf("no peers: got %q, want %q", b.String(), want)
	}
}
