package datastore

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// etcd logs through zap. etcdLogger sends its records to slog, so they look
// like ours (component=etcd), with three filters that keep them readable:
// a level (warn by default), sampling (at most 3 records of one message per
// second: a struggling disk makes etcd repeat itself), and, once we are
// shutting the server down on purpose, the errors etcd reports about its
// own listeners closing.
func etcdLogger(log *slog.Logger, level string, closing *atomic.Bool) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	core := &slogCore{
		log:     log,
		level:   lvl,
		closing: closing,
	}
	return zap.New(zapcore.NewSamplerWithOptions(core, time.Second, 3, 0)), nil
}

type slogCore struct {
	log     *slog.Logger
	level   zapcore.Level
	closing *atomic.Bool
	fields  []zapcore.Field
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= c.level }

func (c *slogCore) With(fs []zapcore.Field) zapcore.Core {
	cp := *c
	cp.fields = append(append([]zapcore.Field(nil), c.fields...), fs...)
	return &cp
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// ignoredWarnings are start-up advice that does not apply to how we run
// etcd: one listener serves gRPC and the HTTP gateway on purpose (one port
// to configure), and etcd authentication (with its simple tokens) is not
// used; TLS client certificates are.
var ignoredWarnings = map[string]bool{
	"Running http and grpc server on single port. This is not recommended for production.": true,
	"simple token is not cryptographically signed":                                         true,
}

// benignStartupError: on a fresh data dir etcd 3.7's storage-version
// monitor may run before the first raft term is saved; it logs an error and
// succeeds on its next round a few seconds later.
func benignStartupError(e zapcore.Entry, fs []zapcore.Field) bool {
	if e.Message != "failed to update storage version" {
		return false
	}
	for _, f := range fs {
		if err, ok := f.Interface.(error); ok && f.Type == zapcore.ErrorType && strings.Contains(err.Error(), "missing term information") {
			return true
		}
	}
	return false
}

func (c *slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	if c.closing.Load() && e.Level <= zapcore.ErrorLevel {
		return nil // listeners and streams failing while we close them
	}
	if e.Level == zapcore.WarnLevel && ignoredWarnings[e.Message] {
		return nil
	}
	if benignStartupError(e, fs) {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fs {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	var lvl slog.Level
	switch {
	case e.Level >= zapcore.ErrorLevel:
		lvl = slog.LevelError
	case e.Level == zapcore.WarnLevel:
		lvl = slog.LevelWarn
	case e.Level == zapcore.InfoLevel:
		lvl = slog.LevelInfo
	default:
		lvl = slog.LevelDebug
	}
	c.log.LogAttrs(context.Background(), lvl, e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }
