package bgp

// A harness that runs GoBGP speakers in network namespaces, one child
// process per speaker.
//
// Why child processes: GoBGP listens and dials from goroutines it starts
// itself, and a goroutine may run on any OS thread. Entering a namespace on
// a locked thread would only move that thread; the server's other goroutines
// would dial from the host namespace. Creating the listener inside the
// namespace would not help either, since sessions are also dialled out. A
// process started with `ip netns exec` has every thread in the namespace, as
// the agent has in production. The child is this test binary, re-executed
// to run TestHelperSpeaker, which serves the Speaker methods over net/rpc
// (JSON) on its stdin and stdout.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/testutil"
)

const helperEnv = "CALICO_BGP_TEST_SPEAKER"

// TestHelperSpeaker is the child process's entry point; run normally, it
// does nothing.
func TestHelperSpeaker(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	svc := &speakerService{}
	srv := rpc.NewServer()
	if err := srv.RegisterName("Speaker", svc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Serves until the parent closes our stdin.
	srv.ServeCodec(jsonrpc.NewServerCodec(stdio{}))
	svc.mu.Lock()
	s := svc.s
	svc.mu.Unlock()
	if s != nil {
		_ = s.Stop(context.Background(), false)
	}
	os.Exit(0)
}

type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error                { return os.Stdin.Close() }

// speakerService runs in the child and exposes a GoBGP speaker.
type speakerService struct {
	mu      sync.Mutex
	changed *sync.Cond
	s       *GoBGP
	version int
	routes  []LearnedRoute
}

// LearnedReply is one learned set and its version.
type LearnedReply struct {
	Version int
	Routes  []LearnedRoute
}

func (h *speakerService) Start(cfg Config, _ *struct{}) error {
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := NewGoBGP(cfg)
	if err := s.Start(context.Background()); err != nil {
		return err
	}
	h.mu.Lock()
	h.s = s
	h.changed = sync.NewCond(&h.mu)
	h.mu.Unlock()
	go func() {
		for r := range s.Learned() {
			h.mu.Lock()
			h.version++
			h.routes = r
			h.changed.Broadcast()
			h.mu.Unlock()
		}
	}()
	return nil
}

func (h *speakerService) speaker() (*GoBGP, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.s == nil {
		return nil, errors.New("not started")
	}
	return h.s, nil
}

func (h *speakerService) SetPeers(peers []Peer, _ *struct{}) error {
	s, err := h.speaker()
	if err != nil {
		return err
	}
	return s.SetPeers(context.Background(), peers)
}

func (h *speakerService) SetAdvertisements(ads []Advertisement, _ *struct{}) error {
	s, err := h.speaker()
	if err != nil {
		return err
	}
	return s.SetAdvertisements(context.Background(), ads)
}

func (h *speakerService) Status(_ struct{}, out *[]PeerStatus) error {
	s, err := h.speaker()
	if err != nil {
		return err
	}
	st, err := s.Status(context.Background())
	if st == nil {
		// net/rpc's JSON client reads a null result as an error.
		st = []PeerStatus{}
	}
	*out = st
	return err
}

func (h *speakerService) Stop(graceful bool, _ *struct{}) error {
	s, err := h.speaker()
	if err != nil {
		return err
	}
	return s.Stop(context.Background(), graceful)
}

// NextLearned waits (up to a few seconds) for a learned set newer than the
// given version.
func (h *speakerService) NextLearned(version int, out *LearnedReply) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed == nil {
		return errors.New("not started")
	}
	deadline := time.AfterFunc(5*time.Second, func() {
		h.mu.Lock()
		h.changed.Broadcast()
		h.mu.Unlock()
	})
	defer deadline.Stop()
	start := time.Now()
	for h.version <= version && time.Since(start) < 5*time.Second {
		h.changed.Wait()
	}
	*out = LearnedReply{Version: h.version, Routes: h.routes}
	return nil
}

// remoteSpeaker is the parent's handle on a speaker in a child process; it
// implements Speaker.
type remoteSpeaker struct {
	name    string
	cfg     Config
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	client  *rpc.Client
	learned chan []LearnedRoute
	logPath string
	done    chan struct{}
}

var _ Speaker = (*remoteSpeaker)(nil)

// newRemoteSpeaker starts a child process in the namespace; Start then
// starts the speaker in it. The process is killed at test cleanup.
func newRemoteSpeaker(t testing.TB, ns testutil.NetNS, name string, cfg Config) *remoteSpeaker {
	t.Helper()
	logPath := fmt.Sprintf("%s/%s-%d.log", t.TempDir(), name, time.Now().UnixNano())
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("ip", "netns", "exec", ns.Name, os.Args[0], "-test.run=^TestHelperSpeaker$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = logFile
	// ip netns exec execs the test binary in place, so this is its PID;
	// if the test process dies, so does the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting speaker %s in %s: %v", name, ns.Name, err)
	}
	r := &remoteSpeaker{
		name:    name,
		cfg:     cfg,
		cmd:     cmd,
		stdin:   stdin,
		client:  rpc.NewClientWithCodec(jsonrpc.NewClientCodec(pipeConn{stdout, stdin})),
		learned: make(chan []LearnedRoute, 1),
		logPath: logPath,
		done:    make(chan struct{}),
	}
	go func() { _ = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			r.dumpLog(t)
		}
	})
	return r
}

type pipeConn struct {
	io.Reader
	io.WriteCloser
}

func (r *remoteSpeaker) Start(ctx context.Context) error {
	if err := r.client.Call("Speaker.Start", r.cfg, &struct{}{}); err != nil {
		return fmt.Errorf("speaker %s: %w", r.name, err)
	}
	go r.pullLearned()
	return nil
}

// pullLearned forwards learned sets from the child to r.learned, keeping
// only the latest, until the child goes away.
func (r *remoteSpeaker) pullLearned() {
	version := 0
	for {
		var reply LearnedReply
		if err := r.client.Call("Speaker.NextLearned", version, &reply); err != nil {
			return
		}
		if reply.Version == version {
			continue
		}
		version = reply.Version
		select {
		case <-r.learned:
		default:
		}
		r.learned <- reply.Routes
	}
}

func (r *remoteSpeaker) SetPeers(ctx context.Context, peers []Peer) error {
	return r.client.Call("Speaker.SetPeers", peers, &struct{}{})
}

func (r *remoteSpeaker) SetAdvertisements(ctx context.Context, ads []Advertisement) error {
	return r.client.Call("Speaker.SetAdvertisements", ads, &struct{}{})
}

func (r *remoteSpeaker) Learned() <-chan []LearnedRoute { return r.learned }

func (r *remoteSpeaker) Status(ctx context.Context) ([]PeerStatus, error) {
	var st []PeerStatus
	err := r.client.Call("Speaker.Status", struct{}{}, &st)
	return st, err
}

// Stop stops the speaker and ends the child process.
func (r *remoteSpeaker) Stop(ctx context.Context, graceful bool) error {
	err := r.client.Call("Speaker.Stop", graceful, &struct{}{})
	_ = r.stdin.Close()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.kill()
		return fmt.Errorf("speaker %s did not exit after Stop", r.name)
	}
	return err
}

// kill ends the child at once (a crash, as far as peers can tell).
func (r *remoteSpeaker) kill() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	_ = r.client.Close()
}

func (r *remoteSpeaker) dumpLog(t testing.TB) {
	f, err := os.Open(r.logPath)
	if err != nil {
		return
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	t.Logf("log of speaker %s:\n%s", r.name, b.String())
}

// fabric is a set of "hosts", each a network namespace with an eth0 on one
// bridge that lives in a namespace of its own; nothing is on the host's own
// interfaces.
type fabric struct {
	bridge testutil.NetNS
	hosts  []testutil.NetNS
}

// hostV4 and hostV6 are host i's addresses on the fabric (i from 0).
func hostV4(i int) string { return fmt.Sprintf("10.199.0.%d", i+1) }
func hostV6(i int) string { return fmt.Sprintf("fd00:199::%d", i+1) }

func newFabric(t testing.TB, n int) *fabric {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "ip")
	f := &fabric{bridge: testutil.NewNetNS(t, "bgpfab")}
	f.bridge.MustExec(t, "ip", "link", "add", "br0", "type", "bridge")
	f.bridge.MustExec(t, "ip", "link", "set", "br0", "up")
	for i := range n {
		h := testutil.NewNetNS(t, "bgph")
		port := fmt.Sprintf("p%d", i)
		h.MustExec(t, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", port)
		h.MustExec(t, "ip", "link", "set", port, "netns", f.bridge.Name)
		f.bridge.MustExec(t, "ip", "link", "set", port, "master", "br0", "up")
		h.MustExec(t, "ip", "addr", "add", hostV4(i)+"/24", "dev", "eth0")
		h.MustExec(t, "ip", "addr", "add", hostV6(i)+"/64", "dev", "eth0", "nodad")
		h.MustExec(t, "ip", "link", "set", "eth0", "up")
		f.hosts = append(f.hosts, h)
	}
	return f
}
