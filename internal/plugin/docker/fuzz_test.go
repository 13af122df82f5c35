package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/moby/moby/api/types/events"
)

// fuzzMethods are the plugin methods the fuzzer calls. Join and Leave are
// left out: they create and delete veths in the machine's namespace (their
// request decoding is the same generic code as every other method's).
var fuzzMethods = []string{
	"/Plugin.Activate",
	"/NetworkDriver.GetCapabilities",
	"/NetworkDriver.CreateNetwork",
	"/NetworkDriver.DeleteNetwork",
	"/NetworkDriver.CreateEndpoint",
	"/NetworkDriver.EndpointOperInfo",
	"/NetworkDriver.DeleteEndpoint",
	"/NetworkDriver.ProgramExternalConnectivity",
	"/NetworkDriver.RevokeExternalConnectivity",
	"/NetworkDriver.DiscoverNew",
	"/IpamDriver.GetCapabilities",
	"/IpamDriver.GetDefaultAddressSpaces",
	"/IpamDriver.RequestPool",
	"/IpamDriver.ReleasePool",
	"/IpamDriver.RequestAddress",
	"/IpamDriver.ReleaseAddress",
}

// FuzzPluginRequest posts arbitrary bodies to every plugin method of the
// real handler (an in-memory datastore, a real IPAM allocator) and checks
// that the server never panics, always answers JSON of Docker's content
// type, answers 200 or 4xx (a 5xx here would be a server fault caused by
// input alone: the datastore cannot fail), and that every error names a
// reason on one line.
func FuzzPluginRequest(f *testing.F) {
	seeds := map[string][]string{
		"/NetworkDriver.CreateNetwork": {
			`{"NetworkID":"` + testNetID + `","Options":{"com.docker.network.generic":{"mtu":"1400"}},"IPv4Data":[{"AddressSpace":"CalicoLocalAddressSpace","Pool":"0.0.0.0/0","Gateway":"169.254.1.1/32"}]}`,
			`{"NetworkID":"x","Options":{"com.docker.network.generic":{"mtu":1e300}}}`,
			`{"NetworkID":"` + testNetID + `","Options":{"com.docker.network.generic":"str"}}`,
		},
		"/NetworkDriver.CreateEndpoint": {
			`{"NetworkID":"` + testNetID + `","EndpointID":"` + epA + `","Interface":{"Address":"10.65.0.5/32","MacAddress":"` + macA + `"}}`,
			`{"NetworkID":"` + testNetID + `","EndpointID":"../../etc","Interface":{"Address":"10.65.0.5/33"}}`,
			`{"NetworkID":"` + testNetID + `","EndpointID":"` + epB + `","Interface":{"AddressIPv6":"fd00:65::5/128"},"Options":{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80}],"com.docker.network.portmap":[{"Proto":6,"Port":80,"HostPort":8080}]}}`,
		},
		"/NetworkDriver.ProgramExternalConnectivity": {
			`{"NetworkID":"` + testNetID + `","EndpointID":"` + epB + `","Options":{"com.docker.network.portmap":[{"Proto":17,"Port":53,"HostIP":"0.0.0.0","HostPort":5353,"HostPortEnd":5360}]}}`,
		},
		"/NetworkDriver.DeleteEndpoint": {`{"NetworkID":"` + testNetID + `","EndpointID":"` + epA + `"}`},
		"/NetworkDriver.DeleteNetwork":  {`{"NetworkID":"` + testNetID + `"}`},
		"/IpamDriver.RequestPool": {
			`{"AddressSpace":"CalicoLocalAddressSpace","Pool":"","V6":false}`,
			`{"AddressSpace":"CalicoLocalAddressSpace","Pool":"10.65.0.0/16","SubPool":"10.65.1.0/24","Options":{"a":"b"}}`,
			`{"AddressSpace":"CalicoGlobalAddressSpace","V6":true}`,
			`{"AddressSpace":1,"V6":"yes"}`,
		},
		"/IpamDriver.ReleasePool": {`{"PoolID":"CalicoPoolIPv4"}`},
		"/IpamDriver.RequestAddress": {
			`{"PoolID":"CalicoPoolIPv4","Address":"","Options":{"com.docker.network.endpoint.macaddress":"` + macA + `"}}`,
			`{"PoolID":"CalicoPoolIPv4","Address":"10.65.3.3"}`,
			`{"PoolID":"CalicoPoolIPv6","Address":"fd00:65::1:1"}`,
			`{"PoolID":"CalicoPoolIPv4","Options":{"RequestAddressType":"com.docker.network.gateway"}}`,
		},
		"/IpamDriver.ReleaseAddress": {`{"PoolID":"CalicoPoolIPv4","Address":"10.65.3.3"}`},
	}
	for i, m := range fuzzMethods {
		f.Add(uint8(i), []byte(""))
		f.Add(uint8(i), []byte("{}"))
		f.Add(uint8(i), []byte("null"))
		f.Add(uint8(i), []byte(`{"NetworkID":5}`))
		for _, s := range seeds[m] {
			f.Add(uint8(i), []byte(s))
		}
	}
	srv := fuzzServer(f)
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		m := fuzzMethods[int(which)%len(fuzzMethods)]
		// Docker announces every network it creates; a DeleteNetwork
		// before this input may have forgotten it.
		srv.handleEvent(context.Background(), events.Message{Type: events.NetworkEventType, Action: events.ActionCreate,
			Actor: events.Actor{ID: testNetID, Attributes: map[string]string{"name": "fuzznet", "type": NetworkDriverName}}})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "http://plugin"+m, bytes.NewReader(body))
		h.ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); ct != contentType {
			t.Fatalf("%s: content type %q", m, ct)
		}
		// The one 5xx input alone can cause here: an endpoint on a network
		// other than the harness's, whose name only Docker could tell.
		harness := rec.Code == http.StatusInternalServerError && strings.Contains(rec.Body.String(), "no Docker client configured")
		if rec.Code != http.StatusOK && (rec.Code < 400 || rec.Code >= 500) && !harness {
			t.Fatalf("%s %q: status %d: %s", m, body, rec.Code, rec.Body.String())
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: reply is not a JSON object: %v: %q", m, err, rec.Body.String())
		}
		if rec.Code != http.StatusOK {
			msg, _ := out["Err"].(string)
			if msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("%s %q: status %d with error %q (want a one-line reason)", m, body, rec.Code, msg)
			}
		}
	})
}

// fuzzServer is one server shared by every fuzz input (state carries over
// from call to call, as it does in a daemon), with pools and one network
// whose name is known so that CreateEndpoint gets past the name lookup.
func fuzzServer(f *testing.F) *Server {
	st := datastore.NewMemory()
	f.Cleanup(func() { st.Close() })
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	alloc := ipam.New(st, ipam.WithClock(clock.Now), ipam.WithLogger(quietLogger()))
	putPoolTB(f, st, "pool4", "10.65.0.0/16")
	putPoolTB(f, st, "pool6", "fd00:65::/64")
	srv, err := NewServer(Config{Store: st, IPAM: alloc, Node: testNode, PluginDir: f.TempDir(), MTU: 1440, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	srv.nowFunc = clock.Now
	return srv
}

func putPoolTB(tb testing.TB, st datastore.Store, name, cidr string) {
	tb.Helper()
	p := &api.IPPool{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.IPPoolSpec{CIDR: cidr}}
	b, err := encode(p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Update(context.Background(), datastore.ResourceKey(plIPPool, "", name), b, 0); err != nil {
		tb.Fatal(err)
	}
}
