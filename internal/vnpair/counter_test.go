package vnpair

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
)

// Past Max pairs the quiet ones give way to new ones and their packets are
// counted as other; a busy pair keeps its exact count however many spoofed
// pairs come between its packets, and no packet is lost.
func TestCounterBounded(t *testing.T) {
	c := &Counter{Max: 100}
	const spoofed = 20000
	busySrc, busyDst := []byte("default-domain:admin:vn-web"), []byte("default-domain:admin:vn-db")
	for i := range spoofed {
		c.Add(fmt.Appendf(nil, "default-domain:evil:vn-%06d", i), busyDst)
		c.Add(busySrc, busyDst)
	}
	ps, other := c.Pairs()
	if len(ps) != 100 {
		t.Fatalf("%d pairs kept, want 100", len(ps))
	}
	if ps[0] != (Pair{SrcVN: string(busySrc), DstVN: string(busyDst), Packets: spoofed}) {
		t.Errorf("busiest pair %+v, want the real one with %d packets", ps[0], spoofed)
	}
	var total uint64
	for _, p := range ps {
		total += p.Packets
	}
	if total+other != 2*spoofed {
		t.Errorf("%d packets listed + %d other, want %d", total, other, 2*spoofed)
	}
	if c.Evicted() != spoofed-99 {
		t.Errorf("%d pairs evicted, want %d", c.Evicted(), spoofed-99)
	}
}

// Pairs are directed; an absent name and an empty one are different pairs
// (listed alike), and names are bytes: no separator joins two pairs.
func TestCounterKeys(t *testing.T) {
	c := &Counter{Max: 10}
	for _, p := range [][2][]byte{
		{nil, []byte("b")}, {[]byte{}, []byte("b")}, {nil, []byte("b")},
		{[]byte("a\xffb"), []byte("c")}, {[]byte("a"), []byte("b\xffc")},
		{[]byte("b"), []byte("a")}, {[]byte("a"), []byte("b")},
	} {
		c.Add(p[0], p[1])
	}
	ps, other := c.Pairs()
	want := []Pair{{"", "b", 2, 0}, {"", "b", 1, 0}, {"a", "b", 1, 0}, {"a", "b\xffc", 1, 0}, {"a\xffb", "c", 1, 0}, {"b", "a", 1, 0}}
	if !reflect.DeepEqual(ps, want) || other != 0 {
		t.Errorf("pairs %+v, other %d; want %+v", ps, other, want)
	}
}

// Pending counts are listed, become final on Commit and vanish on
// Rollback, also for pairs evicted while pending.
func TestCounterPending(t *testing.T) {
	c := &Counter{Max: 2}
	a, b, x := []byte("vn-a"), []byte("vn-b"), []byte("vn-x")
	c.AddPending(a, b)
	c.AddPending(a, b)
	c.Commit()
	c.AddPending(a, b)
	c.AddPending(b, a)
	if ps, _ := c.Pairs(); !reflect.DeepEqual(ps, []Pair{{"vn-a", "vn-b", 3, 0}, {"vn-b", "vn-a", 1, 0}}) {
		t.Errorf("before rollback: %v", ps)
	}
	c.Rollback()
	if ps, other := c.Pairs(); !reflect.DeepEqual(ps, []Pair{{"vn-a", "vn-b", 2, 0}}) || other != 0 {
		t.Errorf("after rollback: %v, other %d", ps, other)
	}
	// x -> a takes the place of b -> a, the quieter, and x -> b that of
	// x -> a: pending packets of evicted pairs count as other until the
	// rollback.
	c.AddPending(b, a)
	c.AddPending(x, a)
	c.AddPending(x, b)
	ps, other := c.Pairs()
	if len(ps) != 2 || other == 0 {
		t.Fatalf("full table: %v, other %d", ps, other)
	}
	c.Rollback()
	if ps, other := c.Pairs(); other != 0 || len(ps) != 1 || ps[0] != (Pair{"vn-a", "vn-b", 2, 0}) {
		t.Errorf("evicted pending packets survive a rollback: %v, other %d", ps, other)
	}
	c.AddPending(x, x)
	c.Add(x, x)
	c.Commit()
	ps, other = c.Pairs()
	var total uint64
	for _, p := range ps {
		total += p.Packets
	}
	if total+other != 4 {
		t.Errorf("after commit: %v, other %d; want 4 packets in all", ps, other)
	}
}

// Readers list the pairs while one goroutine counts (run with -race).
func TestCounterConcurrentReaders(t *testing.T) {
	c := &Counter{Max: 16}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				ps, _ := c.Pairs()
				for _, p := range ps {
					if p.Packets == 0 {
						t.Error("listed a pair without packets")
						return
					}
				}
				c.Evicted()
			}
		})
	}
	for i := range 20000 {
		c.AddPending(fmt.Appendf(nil, "vn-%d", i%40), []byte("vn-b"))
		if i%7 == 0 {
			c.Commit()
		}
	}
	close(done)
	wg.Wait()
	c.Commit()
	ps, other := c.Pairs()
	var total uint64
	for _, p := range ps {
		total += p.Packets
	}
	if total+other != 20000 {
		t.Errorf("%d packets listed + %d other, want 20000", total, other)
	}
}

func TestTop(t *testing.T) {
	ps := []Pair{{"c", "x", 1, 0}, {"a", "x", 5, 0}, {"b", "x", 5, 0}, {"d", "x", 2, 0}}
	top, other := Top(ps, 2)
	if !reflect.DeepEqual(top, []Pair{{"a", "x", 5, 0}, {"b", "x", 5, 0}}) || other != 3 || cap(top) != 2 {
		t.Errorf("Top 2: %v (cap %d), other %d", top, cap(top), other)
	}
	if top, other := Top(ps, 10); len(top) != 4 || other != 0 {
		t.Errorf("Top 10: %v, other %d", top, other)
	}
	if top, other := Top(ps, 0); len(top) != 0 || other != 13 {
		t.Errorf("Top 0: %v, other %d", top, other)
	}
}

// AddBytes counts bytes with the packets; a pair that leaves the table
// takes its bytes along.
func TestCounterBytes(t *testing.T) {
	c := Counter{Max: 1}
	a, b := []byte("vn-a"), []byte("vn-b")
	c.AddBytes(a, b, 100)
	c.AddBytes(a, b, 50)
	c.Add(a, b)
	if ps, _ := c.Pairs(); len(ps) != 1 || ps[0].Packets != 3 || ps[0].Bytes != 150 {
		t.Fatalf("pairs %+v, want 3 packets and 150 bytes", ps)
	}
	c.AddBytes(b, a, 7)
	if ps, other := c.Pairs(); len(ps) != 1 || ps[0] != (Pair{SrcVN: "vn-b", DstVN: "vn-a", Packets: 1, Bytes: 7}) || other != 3 {
		t.Fatalf("after eviction: pairs %+v, other %d", ps, other)
	}
}
