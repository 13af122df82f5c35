package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Errors callers test with errors.Is.
var (
	// ErrExhausted: the pools have no free address for the request.
	ErrExhausted = errors.New("no free addresses")
	// ErrNoPool: no enabled pool of the family applies to the node.
	ErrNoPool = errors.New("no usable pool")
	// ErrTooManyRetries: compare-and-swap kept losing races.
	ErrTooManyRetries = errors.New("too many conflicting writes")
)

// Handle is stored at HandleKey: how many addresses the handle holds in
// each block (keyed by block CIDR), Calico's IPAMHandle.
type Handle struct {
	HandleID string         `json:"handleID"`
	Block    map[string]int `json:"block"`
	Deleted  bool           `json:"deleted"`
}

// Total is the number of addresses the handle holds.
func (h *Handle) Total() int {
	n := 0
	for _, c := range h.Block {
		n += c
	}
	return n
}

func (h *Handle) add(block string, n int) {
	if h.Block == nil {
		h.Block = map[string]int{}
	}
	h.Block[block] += n
	if h.Block[block] <= 0 {
		delete(h.Block, block)
	}
}

// Affinity is stored at AffinityKey. Blocks and their affinities are written
// in one transaction, so the state is always "confirmed".
type Affinity struct {
	State   string `json:"state"`
	Deleted bool   `json:"deleted"`
}

var confirmedAffinity = mustJSON(Affinity{State: "confirmed"})

// Config is stored at ConfigKey; a missing key means DefaultConfig.
type Config struct {
	// StrictAffinity: never borrow addresses from another node's block.
	StrictAffinity bool `json:"strict_affinity"`
	// AutoAllocateBlocks: claim new blocks when a node's blocks are full.
	AutoAllocateBlocks bool `json:"auto_allocate_blocks"`
	// MaxBlocksPerHost caps the blocks a node claims per family; 0: no cap.
	MaxBlocksPerHost int `json:"maxBlocksPerHost"`
}

// DefaultConfig is Calico's default: borrowing allowed, blocks claimed on demand.
var DefaultConfig = Config{AutoAllocateBlocks: true}

// claimGen is stored at a node's claim key; its revision is what matters.
type claimGen struct {
	Claims uint64 `json:"claims"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("ipam: marshal %T: %v", v, err))
	}
	return b
}
