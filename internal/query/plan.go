package query

import (
	"fmt"
	"slices"
	"sync"

	"github.com/vrsniff/vrsniff/internal/flowindex"
	"github.com/vrsniff/vrsniff/internal/objstore"
)

// span is a byte range [off, off+n) of a stored file.
type span struct{ off, n int64 }

func (s span) end() int64 { return s.off + s.n }

// fetch is one range GET: the bytes at, of which only the parts keep
// (ascending, within at) go on to the merge.
type fetch struct {
	at   span
	keep []span
}

// plan is how one stored file is read.
type plan struct {
	m objstore.Manifest
	// indexed: the blocks are those the index selected, not the whole
	// file; they are checked as they are passed on (see selected).
	indexed bool
	fetches []fetch
}

// plan decides, for each manifest, which bytes of its file are read:
// through its index when it has one and the query gives it something to
// look for, else the whole file. Indexes are read Options.Parallel at a
// time; the plans keep the manifests' order.
func (r *run) plan(ms []objstore.Manifest) []plan {
	plans := make([]plan, len(ms))
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(r.o.Parallel, len(ms)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				plans[i] = r.planFile(ms[i])
			}
		}()
	}
	for i := range ms {
		work <- i
	}
	close(work)
	wg.Wait()
	return plans
}

func (r *run) planFile(m objstore.Manifest) plan {
	whole := plan{m: m, fetches: r.coalesce([]span{{0, m.PcapSize}})}
	if r.o.OpenIndex == nil || m.Index == "" || r.iq.Empty() || m.HeaderLen <= 0 || m.HeaderLen > m.PcapSize {
		return whole
	}
	spans, err := r.lookup(m)
	if err != nil {
		if r.ctx.Err() == nil { // not a query that ended
			r.o.Log.Warn("flow index not usable, reading the whole file", "file", m.Pcap, "index", m.Index, "err", err)
		}
		return whole
	}
	r.indexed.Add(1)
	return plan{m: m, indexed: true, fetches: r.coalesce(append([]span{{0, m.HeaderLen}}, spans...))}
}

// lookup returns the byte ranges of the records of m's file that its
// index selects, sorted and merged, each within the file after its header.
func (r *run) lookup(m objstore.Manifest) ([]span, error) {
	ra := &rangeReaderAt{r: r, key: m.Index, size: m.IndexSize}
	idx, err := r.o.OpenIndex(ra, m.IndexSize)
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	rows, err := idx.Lookup(r.iq)
	if err != nil {
		return nil, fmt.Errorf("lookup: %w", err)
	}
	var spans []span
	for _, row := range rows {
		if !rowInWindow(row, r.iq) {
			continue
		}
		if len(row.Offsets) != len(row.Lengths) {
			return nil, fmt.Errorf("a row has %d offsets and %d lengths", len(row.Offsets), len(row.Lengths))
		}
		for i, off := range row.Offsets {
			s := span{off, int64(row.Lengths[i])}
			if s.off < m.HeaderLen || s.n <= 0 || s.end() > m.PcapSize {
				return nil, fmt.Errorf("record [%d, %d) outside the file's packets [%d, %d)", s.off, s.end(), m.HeaderLen, m.PcapSize)
			}
			spans = append(spans, s)
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return int(a.off - b.off) })
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && s.off <= out[n-1].end() {
			out[n-1].n = max(out[n-1].end(), s.end()) - out[n-1].off
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// rowInWindow reports whether a row's packets may fall in the window.
func rowInWindow(row flowindex.Row, q IndexQuery) bool {
	if !row.Last.IsZero() && row.Last.Before(q.Since) {
		return false
	}
	return row.First.IsZero() || row.First.Before(q.Until)
}

// coalesce groups sorted, disjoint spans into GETs: spans at most Gap
// apart share one, as long as it reads at most MaxRange bytes; a span
// longer than MaxRange takes several.
func (r *run) coalesce(spans []span) []fetch {
	var fs []fetch
	for _, s := range spans {
		for s.n > 0 {
			if n := len(fs); n > 0 {
				f := &fs[n-1]
				if gap := s.off - f.at.end(); gap <= r.o.Gap && f.at.n+gap < r.o.MaxRange {
					take := min(s.n, r.o.MaxRange-f.at.n-gap)
					f.at.n += gap + take
					f.keep = append(f.keep, span{s.off, take})
					s = span{s.off + take, s.n - take}
					continue
				}
			}
			take := min(s.n, r.o.MaxRange)
			fs = append(fs, fetch{at: span{s.off, take}, keep: []span{{s.off, take}}})
			s = span{s.off + take, s.n - take}
		}
	}
	return fs
}
