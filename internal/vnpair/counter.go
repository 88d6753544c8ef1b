package vnpair

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Pair is a directed VN pair and its packet count. An absent name is "",
// like an empty one.
type Pair struct {
	SrcVN   string `json:"src_vn"`
	DstVN   string `json:"dst_vn"`
	Packets uint64 `json:"packets"`
	// Bytes counts the bytes AddBytes counted for the pair; 0 when only
	// packets are counted.
	Bytes uint64 `json:"bytes,omitempty"`
}

// Counter counts packets by directed VN pair (source -> destination) in a
// table of at most Max pairs. When it is full, a new pair takes the place
// of the quietest of a sample of pairs, whose packets, like those of every
// pair that left, are counted as other: spoofed names then cost a bounded
// table, and the busy pairs stay listed with exact counts.
//
// A count is final (Add) or pending (AddPending): a pending count stands
// for a packet that is not yet where it goes, e.g. buffered for a file;
// Commit makes the pending counts final and Rollback forgets them.
//
// One goroutine at a time counts, Commits and Rollbacks (callers that
// share a Counter between goroutines serialise those calls, as the ring
// does under its lock); any number may call Pairs and Evicted at the same
// time. The zero value is a table of one pair.
type Counter struct {
	// Max bounds the pairs in the table (at least 1). Set it before the
	// first packet.
	Max int

	// The counting goroutine finds a pair in idx without a lock; a new
	// pair goes into order, which readers see under mu.
	mu                  sync.Mutex
	order               []*count
	idx                 map[string]*count
	last                *count // of the previous packet: traffic comes in runs of one pair
	key                 []byte
	other, otherPending atomic.Uint64
	evicted             atomic.Uint64
}

type count struct {
	key            string // AppendKey, Directed
	src, dst       string
	srcNil, dstNil bool // absent names, which equal empty ones as strings
	n, pending     atomic.Uint64
	bytes          atomic.Uint64
}

// evictSample is how many pairs are looked at to find a quiet one to
// evict: the quiet pairs of a spoofing flood leave, the busy ones stay, at
// a constant cost per new pair.
const evictSample = 8

// Add counts one packet of the pair (src, dst).
func (c *Counter) Add(src, dst []byte) { c.find(src, dst).n.Add(1) }

// AddBytes counts one packet of the pair (src, dst) and its n bytes.
func (c *Counter) AddBytes(src, dst []byte, n int) {
	e := c.find(src, dst)
	e.n.Add(1)
	e.bytes.Add(uint64(n))
}

// AddPending counts one packet of the pair (src, dst) as pending.
func (c *Counter) AddPending(src, dst []byte) { c.find(src, dst).pending.Add(1) }

func (c *Counter) find(src, dst []byte) *count {
	if e := c.last; e != nil && e.src == string(src) && e.dst == string(dst) &&
		e.srcNil == (src == nil) && e.dstNil == (dst == nil) {
		return e
	}
	c.key = AppendKey(c.key[:0], src, dst, Directed)
	e := c.idx[string(c.key)]
	if e == nil {
		if c.idx == nil {
			c.idx = make(map[string]*count)
		}
		c.mu.Lock()
		if len(c.order) < max(c.Max, 1) {
			e = &count{}
			c.order = append(c.order, e)
		} else {
			e = c.evict()
		}
		e.key, e.src, e.dst = string(c.key), string(src), string(dst)
		e.srcNil, e.dstNil = src == nil, dst == nil
		c.mu.Unlock()
		c.idx[e.key] = e
	}
	c.last = e
	return e
}

// evict empties the quietest pair of a sample, whose packets go to other,
// and returns it for reuse. Called with mu held.
func (c *Counter) evict() *count {
	var out *count
	n := len(c.order)
	ev := c.evicted.Load()
	for j := range evictSample {
		// A multiplicative sequence over the table: no random source
		// needed, and successive evictions look at other pairs.
		e := c.order[int((ev*evictSample+uint64(j))*0x9e3779b97f4a7c15>>32)%n]
		if out == nil || e.n.Load()+e.pending.Load() < out.n.Load()+out.pending.Load() {
			out = e
		}
	}
	c.evicted.Add(1)
	delete(c.idx, out.key)
	if c.last == out {
		c.last = nil
	}
	c.other.Add(out.n.Swap(0))
	c.otherPending.Add(out.pending.Swap(0))
	out.bytes.Store(0)
	return out
}

// Commit makes the pending counts final.
func (c *Counter) Commit() {
	c.mu.Lock()
	for _, e := range c.order {
		e.n.Add(e.pending.Swap(0))
	}
	c.other.Add(c.otherPending.Swap(0))
	c.mu.Unlock()
}

// Rollback forgets the pending counts.
func (c *Counter) Rollback() {
	c.mu.Lock()
	for _, e := range c.order {
		e.pending.Store(0)
	}
	c.otherPending.Store(0)
	c.mu.Unlock()
}

// Pairs returns the pairs in the table with packets, most first (ties by
// name, see Sort), and the packets of pairs no longer in it; pending
// counts included.
func (c *Counter) Pairs() (pairs []Pair, other uint64) {
	c.mu.Lock()
	ps := make([]Pair, 0, len(c.order))
	for _, e := range c.order {
		if n := e.n.Load() + e.pending.Load(); n > 0 {
			ps = append(ps, Pair{SrcVN: e.src, DstVN: e.dst, Packets: n, Bytes: e.bytes.Load()})
		}
	}
	other = c.other.Load() + c.otherPending.Load()
	c.mu.Unlock()
	Sort(ps)
	return ps, other
}

// Evicted is the number of pairs that left the table to make room.
func (c *Counter) Evicted() uint64 { return c.evicted.Load() }

// Sort orders pairs most packets first, then by source and destination
// name.
func Sort(pairs []Pair) {
	slices.SortFunc(pairs, func(a, b Pair) int {
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
}

// Top sorts pairs (Sort) and returns the n busiest and the packets of the
// others. The result shares pairs' array, clipped to n.
func Top(pairs []Pair, n int) (top []Pair, other uint64) {
	Sort(pairs)
	n = min(max(n, 0), len(pairs))
	for _, p := range pairs[n:] {
		other += p.Packets
	}
	return slices.Clip(pairs[:n]), other
}
