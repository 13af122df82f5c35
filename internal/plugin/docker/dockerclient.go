package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/moby/moby/client"
)

// NewDockerClient is the Docker API client the plugin uses: the
// environment's (DOCKER_HOST or the default socket), with one repair of
// what dockerd answers about networks.
//
// dockerd's network database reports a swarm peer that is missing from its
// member list with the IP "unknown" (libnetwork networkdb, Docker 20.10),
// which happens to a host that just rebooted. The client decodes peer IPs
// as addresses, so every network inspect and list on that host then fails,
// and so did creating every endpoint there: swarm tasks could not start
// until the member list healed. The plugin never reads peers: such a peer's
// IP is read as no address.
func NewDockerClient() (*client.Client, error) {
	base, err := client.New(client.FromEnv)
	if err != nil {
		return nil, err
	}
	dial := base.Dialer()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }}
	return client.New(client.FromEnv, client.WithHTTPClient(&http.Client{Transport: unknownPeerIP{tr}}))
}

// unknownPeerIP rewrites `"IP":"unknown"` in answers about networks.
type unknownPeerIP struct{ next http.RoundTripper }

var (
	unknownIP   = []byte(`"IP":"unknown"`)
	noIP        = []byte(`"IP":""`)
	maxNetworks = int64(64 << 20) // a network list is far smaller
)

func (u unknownPeerIP) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := u.next.RoundTrip(req)
	if err != nil || !strings.Contains(req.URL.Path, "/networks") || resp.Body == nil {
		return resp, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxNetworks))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.URL.Path, err)
	}
	if bytes.Contains(b, unknownIP) {
		b = bytes.ReplaceAll(b, unknownIP, noIP)
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}
