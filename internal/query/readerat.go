package query

import (
	"fmt"
	"io"
	"sync"
)

// indexBlock is the unit in which an index is read and kept: a Parquet
// reader asks for many small pieces (the footer's length, the footer, page
// headers), and one GET of a block answers several of them.
const indexBlock = 64 << 10

// indexBlocks bounds the blocks kept per index (4 MiB).
const indexBlocks = 64

// rangeReaderAt reads an object of the bucket at any offset with range
// GETs of whole blocks, keeping the last indexBlocks of them; it counts
// the bytes it reads in the run's IndexBytes. Safe for concurrent use.
type rangeReaderAt struct {
	r    *run
	key  string
	size int64

	mu     sync.Mutex
	blocks map[int64][]byte // by block number
	order  []int64          // blocks in the order read, for eviction
}

func (a *rangeReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", a.key, off)
	}
	if off >= a.size {
		return 0, io.EOF
	}
	want := p
	if rest := a.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.blocks == nil {
		a.blocks = map[int64][]byte{}
	}
	first, last := off/indexBlock, (off+int64(len(want))-1)/indexBlock
	// This read's blocks; one GET for those not held, from the first
	// missing to the last.
	got := make([][]byte, last-first+1)
	lo, hi := int64(-1), int64(-1)
	for b := first; b <= last; b++ {
		blk, ok := a.blocks[b]
		got[b-first] = blk
		if !ok {
			if lo < 0 {
				lo = b
			}
			hi = b
		}
	}
	if lo >= 0 {
		start := lo * indexBlock
		end := min((hi+1)*indexBlock, a.size)
		buf, err := a.r.get(a.key, span{start, end - start})
		if err != nil {
			return 0, err
		}
		a.r.indexBytes.Add(int64(len(buf)))
		a.r.progress(0, int64(len(buf)))
		for b := lo; b <= hi; b++ {
			s := (b - lo) * indexBlock
			got[b-first] = buf[s:min(s+indexBlock, int64(len(buf)))]
			a.put(b, got[b-first])
		}
	}
	n := 0
	for b := first; b <= last; b++ {
		blk := got[b-first]
		from := max(off+int64(n)-b*indexBlock, 0)
		n += copy(want[n:], blk[from:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// put keeps block b, letting the oldest go past indexBlocks.
func (a *rangeReaderAt) put(b int64, blk []byte) {
	for len(a.order) >= indexBlocks {
		old := a.order[0]
		a.order = a.order[1:]
		delete(a.blocks, old)
	}
	a.blocks[b] = blk
	a.order = append(a.order, b)
}
