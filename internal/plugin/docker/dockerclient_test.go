package docker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// A rebooted swarm host's dockerd reports peers missing from its member
// list with the IP "unknown": the plugin's client still inspects and lists
// networks (the plain client cannot, which stopped every endpoint there).
func TestDockerClientUnknownPeerIP(t *testing.T) {
	const nw = `{"Name":"front","Id":"n1","Scope":"swarm","Driver":"calico","Options":{"mtu":"1400"},` +
		`"Peers":[{"Name":"a1","IP":"10.99.1.11"},{"Name":"64280a4ac393","IP":"unknown"}]}`
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			_, _ = w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/networks/n1"):
			_, _ = w.Write([]byte(nw))
		case strings.HasSuffix(r.URL.Path, "/networks"):
			_, _ = w.Write([]byte("[" + nw + "]"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer hs.Close()
	t.Setenv("DOCKER_HOST", "tcp://"+strings.TrimPrefix(hs.URL, "http://"))
	ctx := context.Background()

	plain, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.NetworkInspect(ctx, "n1", client.NetworkInspectOptions{}); err == nil {
		t.Fatal("the plain client decoded an \"unknown\" peer IP: this repair is no longer needed")
	}

	dc, err := NewDockerClient()
	if err != nil {
		t.Fatal(err)
	}
	res, err := dc.NetworkInspect(ctx, "n1", client.NetworkInspectOptions{})
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	if res.Network.Name != "front" || res.Network.Options["mtu"] != "1400" || len(res.Network.Peers) != 2 ||
		res.Network.Peers[0].IP.String() != "10.99.1.11" || res.Network.Peers[1].IP.IsValid() {
		t.Fatalf("inspect: %+v", res.Network)
	}
	list, err := dc.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "front" {
		t.Fatalf("list: %+v, %v", list.Items, err)
	}
}
