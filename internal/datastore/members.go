package datastore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Member is one etcd cluster member.
type Member struct {
	ID         uint64
	Name       string // empty for a learner that has not started yet
	PeerURLs   []string
	ClientURLs []string
	Learner    bool
}

// Members manages the membership of an etcd cluster.
type Members struct {
	cli *clientv3.Client
}

// NewMembers connects to the cluster cfg names (no request is made yet).
func NewMembers(cfg Config) (*Members, error) {
	_, cli, _, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Members{cli: cli}, nil
}

// SetEndpoints changes the endpoints the membership client uses.
func (m *Members) SetEndpoints(endpoints []string) {
	if len(endpoints) > 0 {
		m.cli.SetEndpoints(endpoints...)
	}
}

// Close closes the connection.
func (m *Members) Close() error { return m.cli.Close() }

func memberOf(p interface {
	GetID() uint64
	GetName() string
	GetPeerURLs() []string
	GetClientURLs() []string
	GetIsLearner() bool
}) Member {
	return Member{ID: p.GetID(), Name: p.GetName(), PeerURLs: p.GetPeerURLs(), ClientURLs: p.GetClientURLs(), Learner: p.GetIsLearner()}
}

// List returns the members, sorted by name (learners not yet started last).
func (m *Members) List(ctx context.Context) ([]Member, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	resp, err := m.cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list etcd members: %w", err)
	}
	var out []Member
	for _, p := range resp.Members {
		out = append(out, memberOf(p))
	}
	slices.SortFunc(out, func(a, b Member) int {
		if (a.Name == "") != (b.Name == "") {
			if a.Name == "" {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// AddLearner adds a non-voting member with peerURL and returns the
// membership after the change.
func (m *Members) AddLearner(ctx context.Context, peerURL string) (Member, []Member, error) {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	resp, err := m.cli.MemberAddAsLearner(ctx, []string{peerURL})
	if err != nil {
		return Member{}, nil, fmt.Errorf("add etcd learner %s: %w", peerURL, err)
	}
	var all []Member
	for _, p := range resp.Members {
		all = append(all, memberOf(p))
	}
	return memberOf(resp.Member), all, nil
}

// ErrLearnerNotReady is returned by Promote while the learner catches up.
var ErrLearnerNotReady = errors.New("learner is not yet in sync with the leader")

// Promote makes a learner a voting member once it has caught up.
func (m *Members) Promote(ctx context.Context, id uint64) error {
	ctx, cancel := opCtx(ctx)
	defer cancel()
	if _, err := m.cli.MemberPromote(ctx, id); err != nil {
		if strings.Contains(err.Error(), "not in sync") || strings.Contains(err.Error(), "not started") {
			return fmt.Errorf("promote member %x: %w", id, ErrLearnerNotReady)
		}
		return fmt.Errorf("promote member %x: %w", id, err)
	}
	return nil
}

// Remove removes a member by name (or by hex ID for a learner that never
// started).
func (m *Members) Remove(ctx context.Context, name string) (Member, error) {
	ms, err := m.List(ctx)
	if err != nil {
		return Member{}, err
	}
	i := slices.IndexFunc(ms, func(x Member) bool { return x.Name == name || fmt.Sprintf("%x", x.ID) == name })
	if i < 0 {
		var names []string
		for _, x := range ms {
			names = append(names, x.Name)
		}
		return Member{}, fmt.Errorf("no etcd member %q (members: %s)", name, strings.Join(names, ", "))
	}
	if !ms[i].Learner {
		voters := 0
		for _, x := range ms {
			if !x.Learner {
				voters++
			}
		}
		if voters == 1 {
			return Member{}, fmt.Errorf("member %s is the only voting member: removing it would destroy the datastore", name)
		}
	}
	ctx, cancel := opCtx(ctx)
	defer cancel()
	if _, err := m.cli.MemberRemove(ctx, ms[i].ID); err != nil {
		if strings.Contains(err.Error(), "unhealthy cluster") {
			return Member{}, fmt.Errorf("remove etcd member %s: %w (etcd refuses while the remaining members have not all been connected for a few seconds; retry shortly)", name, err)
		}
		return Member{}, fmt.Errorf("remove etcd member %s: %w", name, err)
	}
	return ms[i], nil
}

// Voters returns the client URLs of the voting members, those of the
// member named first first.
func Voters(ms []Member, first string) []string {
	var head, tail []string
	for _, x := range ms {
		if x.Learner {
			continue
		}
		if x.Name == first {
			head = append(head, x.ClientURLs...)
		} else {
			tail = append(tail, x.ClientURLs...)
		}
	}
	return append(head, tail...)
}
