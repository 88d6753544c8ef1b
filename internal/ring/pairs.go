package ring

import (
	"slices"
	"strings"

	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// pairTable counts a file's packets by directed VN pair. It holds at most
// max pairs: when it is full, the quietest of a sample of pairs leaves and
// its packets, like those of every pair that left, are counted as other.
// Spoofed names then cost a bounded table and a bounded sidecar, and the
// busy pairs of the file stay listed. The rule is the one the pipeline's
// pair counters follow (pipeline.Stats.MaxPairs).
//
// Counts are pending until the packets they stand for are on disk (commit);
// a failed write forgets them (rollback).
type pairTable struct {
	max   int
	idx   map[string]*pairCount
	order []*pairCount
	last  *pairCount // of the previous packet: traffic comes in runs of one pair
	// other and otherPending count packets of pairs no longer in the table.
	other, otherPending uint64
	evicted             uint64
}

type pairCount struct {
	key            string // vnpair.AppendKey, Directed
	src, dst       string
	srcNil, dstNil bool // absent names, which compare equal to empty ones as strings
	n, pending     uint64
}

// pairSample is how many pairs are looked at to find a quiet one to evict.
const pairSample = 8

// count counts one packet of the pair (src, dst); key is scratch space,
// returned for reuse.
func (t *pairTable) count(src, dst, key []byte) []byte {
	if pc := t.last; pc != nil && pc.src == string(src) && pc.dst == string(dst) &&
		pc.srcNil == (src == nil) && pc.dstNil == (dst == nil) {
		pc.pending++
		return key
	}
	key = vnpair.AppendKey(key[:0], src, dst, vnpair.Directed)
	pc := t.idx[string(key)]
	if pc == nil {
		if t.idx == nil {
			t.idx = make(map[string]*pairCount)
		}
		if len(t.order) < max(t.max, 1) {
			pc = &pairCount{}
			t.order = append(t.order, pc)
		} else {
			pc = t.evict()
		}
		pc.key, pc.src, pc.dst = string(key), string(src), string(dst)
		pc.srcNil, pc.dstNil = src == nil, dst == nil
		t.idx[pc.key] = pc
	}
	t.last = pc
	pc.pending++
	return key
}

// evict empties the quietest pair of a sample, whose packets go to other,
// and returns it for reuse.
func (t *pairTable) evict() *pairCount {
	var out *pairCount
	n := len(t.order)
	for j := range pairSample {
		// A multiplicative sequence over the table: no random source
		// needed, and successive evictions look at other pairs.
		c := t.order[int((t.evicted*pairSample+uint64(j))*0x9e3779b97f4a7c15>>32)%n]
		if out == nil || c.n+c.pending < out.n+out.pending {
			out = c
		}
	}
	t.evicted++
	delete(t.idx, out.key)
	if t.last == out {
		t.last = nil
	}
	t.other += out.n
	t.otherPending += out.pending
	out.n, out.pending = 0, 0
	return out
}

// commit counts the pending packets as written.
func (t *pairTable) commit() {
	for _, pc := range t.order {
		pc.n += pc.pending
		pc.pending = 0
	}
	t.other += t.otherPending
	t.otherPending = 0
}

// rollback forgets the pending packets.
func (t *pairTable) rollback() {
	for _, pc := range t.order {
		pc.pending = 0
	}
	t.otherPending = 0
}

// list returns the pairs with packets, most first (ties by name), and the
// packets counted as other; pending packets included.
func (t *pairTable) list() ([]pipeline.Pair, uint64) {
	ps := make([]pipeline.Pair, 0, len(t.order))
	for _, pc := range t.order {
		if n := pc.n + pc.pending; n > 0 {
			ps = append(ps, pipeline.Pair{SrcVN: pc.src, DstVN: pc.dst, Packets: n})
		}
	}
	slices.SortFunc(ps, func(a, b pipeline.Pair) int {
		if a.Packets != b.Packets {
			if a.Packets > b.Packets {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a.SrcVN, b.SrcVN); c != 0 {
			return c
		}
		return strings.Compare(a.DstVN, b.DstVN)
	})
	return ps, t.other + t.otherPending
}
