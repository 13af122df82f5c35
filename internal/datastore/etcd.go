package datastore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// defaultRequestTimeout bounds an operation whose context has no
	// deadline, so a command never hangs on a datastore that went away.
	defaultRequestTimeout = 10 * time.Second
	// listPageSize keeps each List response well under gRPC message limits.
	listPageSize = 1000
	// maxCallSendMsgSize lets one Txn carry a large multi-document apply;
	// the server's --max-request-bytes still applies.
	maxCallSendMsgSize = 32 << 20
	// probeKey is read (count only) to check that a quorum answers.
	probeKey = "/calico/"
)

type mvccKV = mvccpb.KeyValue

type etcdStore struct {
	cli       *clientv3.Client
	endpoints []string
	log       *slog.Logger
	closed    chan struct{}
	closeOnce sync.Once
	hooks     watchHooks
}

// NewEtcd connects to etcd and checks, within cfg.DialTimeout, that it
// answers a linearizable read. An unreachable cluster gives an
// *UnavailableError (errors.Is(err, ErrUnavailable)) naming the endpoints.
// Operations whose context has no deadline get a 10 s one.
func NewEtcd(ctx context.Context, cfg Config) (Store, error) {
	cfg, cli, tlsCfg, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &etcdStore{
		cli:       cli,
		endpoints: cfg.Endpoints,
		log:       slog.Default().With("component", "datastore"),
		closed:    make(chan struct{}),
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := s.probe(pctx, true); err != nil {
		_ = cli.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to datastore at %v: %w", cfg.Endpoints, ctx.Err())
		}
		// Say why when something answers: not etcd, or TLS that fails.
		if derr := diagnose(ctx, cfg, tlsCfg); derr != nil {
			return nil, derr
		}
		return nil, err
	}
	return s, nil
}

// newClient validates cfg and makes an etcd client (it does not wait for
// a connection).
func newClient(cfg Config) (Config, *clientv3.Client, *tls.Config, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return cfg, nil, nil, err
	}
	var tlsCfg *tls.Config
	if cfg.tlsWanted() {
		info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CACertFile}
		if tlsCfg, err = info.ClientConfig(); err != nil {
			return cfg, nil, nil, fmt.Errorf("etcd TLS settings (ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE): %w", err)
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		TLS:                  tlsCfg,
		MaxCallSendMsgSize:   maxCallSendMsgSize,
		// The client's own retry warnings would flood stderr during an
		// outage; our errors carry the cause instead.
		Logger: zap.NewNop(),
		// gRPC's default reconnect backoff grows to 120 s; keep it short so a
		// returning server is found within a couple of seconds.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("etcd client for %v: %w", cfg.Endpoints, err)
	}
	return cfg, cli, tlsCfg, nil
}

// SetEndpoints changes the endpoints of a store made by NewEtcd (the
// cluster's members changed); other stores ignore it.
func SetEndpoints(s Store, endpoints []string) {
	if es, ok := s.(*etcdStore); ok && len(endpoints) > 0 {
		es.cli.SetEndpoints(endpoints...)
		es.endpoints = endpoints
	}
}

// probe checks that a member answers; with quorum, that the cluster can
// serve a linearizable read (a raft round trip), else only that the member
// we talk to is alive (a local read).
func (s *etcdStore) probe(ctx context.Context, quorum bool) error {
	opts := []clientv3.OpOption{clientv3.WithCountOnly()}
	if !quorum {
		opts = append(opts, clientv3.WithSerializable())
	}
	_, err := s.cli.Get(ctx, probeKey, opts...)
	return s.wrap(err)
}

// opCtx adds the default request timeout when ctx has none.
func opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, defaultRequestTimeout)
}

// wrap turns "cannot reach the cluster" errors into *UnavailableError and
// leaves others alone.
func (s *etcdStore) wrap(err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-s.closed:
		return errClosed
	default:
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if unavailable(err) {
		return &UnavailableError{Endpoints: s.endpoints, Err: err}
	}
	return err
}

func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch {
	case errors.Is(err, rpctypes.ErrNoLeader),
		errors.Is(err, rpctypes.ErrGRPCNoLeader),
		errors.Is(err, rpctypes.ErrTimeout),
		errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost),
		errors.Is(err, rpctypes.ErrLeaderChanged):
		return true
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return true
		}
	}
	return false
}

func kvOf(k *mvccKV) KV { return KV{Key: string(k.Key), Value: k.Value, Revision: k.ModRevision} }

func (s *etcdStore) Get(ctx context.Context, key string) (KV, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return KV{}, fmt.Errorf("get %s: %w", key, s.wrap(err))
	}
	if len(resp.Kvs) == 0 {
		return KV{}, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	return kvOf(resp.Kvs[0]), nil
}

// List reads in pages, all at the revision of the first page, so the result
// is one consistent snapshot however large it is.
func (s *etcdStore) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	end := clientv3.GetPrefixRangeEnd(prefix)
	start := prefix
	var rev int64
	var out []KV
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, start, opts...)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", prefix, s.wrap(err))
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, k := range resp.Kvs {
			out = append(out, kvOf(k))
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, rev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

func (s *etcdStore) Create(ctx context.Context, key string, value []byte) (KV, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value))).
		Commit()
	if err != nil {
		return KV{}, fmt.Errorf("create %s: %w", key, s.wrap(err))
	}
	if !resp.Succeeded {
		return KV{}, fmt.Errorf("create %s: %w", key, ErrExists)
	}
	return KV{Key: key, Value: value, Revision: resp.Header.Revision}, nil
}

func (s *etcdStore) Update(ctx context.Context, key string, value []byte, revision int64) (KV, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	if revision == 0 {
		resp, err := s.cli.Put(ctx, key, string(value))
		if err != nil {
			return KV{}, fmt.Errorf("update %s: %w", key, s.wrap(err))
		}
		return KV{Key: key, Value: value, Revision: resp.Header.Revision}, nil
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", revision)).
		Then(clientv3.OpPut(key, string(value))).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return KV{}, fmt.Errorf("update %s: %w", key, s.wrap(err))
	}
	if !resp.Succeeded {
		return KV{}, casFailure("update", key, revision, resp.Responses[0].GetResponseRange().Kvs)
	}
	return KV{Key: key, Value: value, Revision: resp.Header.Revision}, nil
}

// casFailure explains a failed revision compare from the key's current state.
func casFailure(op, key string, want int64, current []*mvccKV) error {
	if len(current) == 0 {
		return fmt.Errorf("%s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("%s %s: revision %d, stored %d: %w", op, key, want, current[0].ModRevision, ErrConflict)
}

func (s *etcdStore) Delete(ctx context.Context, key string, revision int64) error {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	if revision == 0 {
		resp, err := s.cli.Delete(ctx, key)
		if err != nil {
			return fmt.Errorf("delete %s: %w", key, s.wrap(err))
		}
		if resp.Deleted == 0 {
			return fmt.Errorf("delete %s: %w", key, ErrNotFound)
		}
		return nil
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", revision)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, s.wrap(err))
	}
	if !resp.Succeeded {
		return casFailure("delete", key, revision, resp.Responses[0].GetResponseRange().Kvs)
	}
	return nil
}

func (s *etcdStore) Txn(ctx context.Context, ops []Op) (int64, error) {
	if err := checkOps(ops); err != nil {
		return 0, err
	}
	ctx, cancel := opCtx(ctx)
	defer cancel()
	var cmps []clientv3.Cmp
	var checked []Op // the ops with a condition, in order, for the Else reads
	var then []clientv3.Op
	var elseOps []clientv3.Op
	for _, op := range ops {
		switch op.Type {
		case OpCreate:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(op.Key), "=", 0))
			then = append(then, clientv3.OpPut(op.Key, string(op.Value)))
		case OpPut:
			if op.Revision != 0 {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(op.Key), "=", op.Revision))
			}
			then = append(then, clientv3.OpPut(op.Key, string(op.Value)))
		case OpDelete:
			if op.Revision != 0 {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(op.Key), "=", op.Revision))
			}
			then = append(then, clientv3.OpDelete(op.Key))
		}
		if op.Type == OpCreate || op.Revision != 0 {
			checked = append(checked, op)
			elseOps = append(elseOps, clientv3.OpGet(op.Key, clientv3.WithKeysOnly()))
		}
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(then...).Else(elseOps...).Commit()
	if err != nil {
		return 0, fmt.Errorf("txn of %d ops: %w", len(ops), s.wrap(err))
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	for i, op := range checked {
		kvs := resp.Responses[i].GetResponseRange().Kvs
		var cur int64
		if len(kvs) > 0 {
			cur = kvs[0].ModRevision
		}
		if err := condFailure(op, cur); err != nil {
			return 0, err
		}
	}
	// The compares failed but each key now looks fine: it changed between
	// the transaction and our reads. Still a conflict.
	return 0, fmt.Errorf("txn: %w", ErrConflict)
}

// condFailure reports why op's condition fails against the key's current
// mod revision (0: missing), or nil if it holds.
func condFailure(op Op, cur int64) error {
	switch {
	case op.Type == OpCreate && cur != 0:
		return fmt.Errorf("txn: create %s: %w", op.Key, ErrExists)
	case op.Type != OpCreate && op.Revision != 0 && cur == 0:
		return fmt.Errorf("txn: %s %s: revision %d, key is gone: %w", op.Type, op.Key, op.Revision, ErrConflict)
	case op.Type != OpCreate && op.Revision != 0 && cur != op.Revision:
		return fmt.Errorf("txn: %s %s: revision %d, stored %d: %w", op.Type, op.Key, op.Revision, cur, ErrConflict)
	}
	return nil
}

// checkOps refuses transactions etcd would refuse, with our wording, so
// both backends behave alike.
func checkOps(ops []Op) error {
	seen := make(map[string]bool, len(ops))
	for i, op := range ops {
		if op.Key == "" {
			return fmt.Errorf("txn: op %d: empty key", i)
		}
		if op.Type != OpCreate && op.Type != OpPut && op.Type != OpDelete {
			return fmt.Errorf("txn: op %d (%s): unknown op type %d", i, op.Key, op.Type)
		}
		if seen[op.Key] {
			return fmt.Errorf("txn: key %s appears more than once", op.Key)
		}
		seen[op.Key] = true
	}
	return nil
}

func (t OpType) String() string {
	switch t {
	case OpCreate:
		return "create"
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", int(t))
}

func (s *etcdStore) Watch(ctx context.Context, prefix string) <-chan Event {
	return startWatch(ctx, s.closed, s, prefix, s.hooks, s.log)
}

// follow watches from revision from and, in parallel, probes the member:
// a client watch stream silently waits out a dead server (even Watch itself
// blocks until a stream is up), and we want the consumer to hear about it
// (EventError) and to re-list when it is back. The probe is a cheap local
// read; a member that loses its quorum ends the stream itself
// (WithRequireLeader).
func (s *etcdStore) follow(ctx context.Context, prefix string, from int64, emit func(Event) bool) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		t := time.NewTicker(probeInterval)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(wctx, probeTimeout)
			err := s.probe(pctx, false)
			pcancel()
			if err != nil && wctx.Err() == nil {
				cancel(err)
				return
			}
		}
	}()
	// stopped explains why wctx ended: the caller's ctx, or the probe.
	stopped := func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return context.Cause(wctx)
	}
	wch := s.cli.Watch(clientv3.WithRequireLeader(wctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
	for {
		select {
		case <-wctx.Done():
			return stopped()
		case resp, ok := <-wch:
			if !ok {
				if wctx.Err() != nil {
					return stopped()
				}
				return s.wrap(errors.New("watch stream closed"))
			}
			if resp.CompactRevision != 0 {
				return fmt.Errorf("%w (compacted at %d, wanted %d)", errCompacted, resp.CompactRevision, from)
			}
			if err := resp.Err(); err != nil {
				return s.wrap(err)
			}
			for _, ev := range resp.Events {
				e := Event{Type: EventPut, KV: kvOf(ev.Kv), Revision: ev.Kv.ModRevision}
				if ev.Type == clientv3.EventTypeDelete {
					e.Type = EventDelete
					e.KV.Value = nil
				}
				if !emit(e) {
					return ctx.Err()
				}
			}
		}
	}
}

// Compact discards history before revision and waits until the server has
// applied it, so a watch from an older revision fails from then on.
func (s *etcdStore) Compact(ctx context.Context, revision int64) error {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	if _, err := s.cli.Compact(ctx, revision, clientv3.WithCompactPhysical()); err != nil {
		return fmt.Errorf("compact at %d: %w", revision, s.wrap(err))
	}
	return nil
}

func (s *etcdStore) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		if cerr := s.cli.Close(); cerr != nil && !errors.Is(cerr, context.Canceled) {
			err = fmt.Errorf("close datastore client: %w", cerr)
		}
	})
	return err
}
