// Package query finds packets across a fleet's stored capture files: the
// files every sniffer uploaded to a bucket (internal/objstore's layout and
// manifests) are narrowed down by their manifests (window, sniffer, VN
// pairs) and, where a file has a flow index, by the index (addresses,
// ports, Community ID), read with range GETs, and merged by time into one
// pcapng with internal/extract, the comments kept. docs/query.md describes
// the design.
package query

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vrsniff/vrsniff/internal/extract"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/flowindex"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/objstore"
)

// Bucket is the object store as a query reads it (objstore.Store). Keys
// are relative to the store's prefix, as in a Manifest.
type Bucket interface {
	// Manifests returns the manifests of the stored files that may hold
	// packets of [since, until) of the given sniffers (all when empty).
	// A file without its manifest is not listed.
	Manifests(ctx context.Context, since, until time.Time, sniffers []string) ([]objstore.Manifest, error)
	// GetRange reads n bytes of the object key from byte off.
	GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
}

// Index is an opened flow index (internal/flowindex).
type Index interface {
	// Lookup returns at least the rows that may hold packets the query
	// asks for (see IndexQuery); more rows cost reads, not results, since
	// every packet read is filtered again.
	Lookup(IndexQuery) ([]flowindex.Row, error)
}

// OpenIndex opens the flow index of size bytes that r reads. r reads
// with range GETs: the index should read its footer and the pages it
// needs, not the whole object.
type OpenIndex func(r io.ReaderAt, size int64) (Index, error)

// IndexQuery asks a flow index for the rows a query needs. Every
// condition holds for each packet the query writes, so a row failing one
// holds none of them. Empty fields ask nothing.
type IndexQuery struct {
	// Since and Until are the window [Since, Until): rows whose packets
	// (First to Last) are all outside it are not needed.
	Since, Until time.Time
	// Prefixes: the row's source or destination address is in one of
	// them. With NoAddr, rows without addresses (frames without IP) are
	// needed too.
	Prefixes []netip.Prefix
	NoAddr   bool
	// Ports: the row's source or destination port is in one of the
	// ranges; a TCP, UDP or SCTP row with both ports 0 (an index may give
	// those to IPv4 first fragments, whose transport header the filter
	// reads) is needed too.
	Ports []filter.PortRange
	// CommunityID: the row's Community ID is this one.
	CommunityID string
}

// Empty reports whether q asks only for a window: an index then saves
// nothing.
func (q IndexQuery) Empty() bool {
	return len(q.Prefixes) == 0 && len(q.Ports) == 0 && q.CommunityID == ""
}

// Query is what to find.
type Query struct {
	// Since and Until bound the window [Since, Until) of packet times;
	// both are required.
	Since, Until time.Time
	// Filter is the filter of every packet: VN patterns, direction and
	// the tcpdump expression (BPF).
	Filter filter.Options
	// Sniffers limits the query to these sniffers; empty: all.
	Sniffers []string
	// CommunityID keeps only the packets of the flow of this Community ID
	// (v1, seed 0); "" for any.
	CommunityID string
}

// ErrBadQuery is returned (wrapped) for a query that cannot be answered
// as asked: a window that is empty or too long, a bad sniffer id or
// Community ID, a bad filter. The caller should change the query, not
// try again.
var ErrBadQuery = errors.New("bad query")

// MaxWindow is the longest window a query reads: objstore's listing of
// manifests, a month.
const MaxWindow = objstore.MaxWindowHours * time.Hour

// Check reports what makes q unanswerable, wrapping ErrBadQuery.
func (q Query) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("query: %w: %s", ErrBadQuery, fmt.Sprintf(format, args...))
	}
	switch {
	case q.Since.IsZero() || q.Until.IsZero():
		return bad("since and until are required")
	case !q.Since.Before(q.Until):
		return bad("since %s is not before until %s", q.Since.Format(time.RFC3339Nano), q.Until.Format(time.RFC3339Nano))
	case q.Until.Sub(q.Since) > MaxWindow:
		return bad("a window of %s is longer than %d days: narrow since and until", q.Until.Sub(q.Since).Round(time.Hour), MaxWindow/(24*time.Hour))
	}
	for _, s := range q.Sniffers {
		if err := objstore.CheckSniffer(s); err != nil {
			return bad("%v", err)
		}
	}
	if q.CommunityID != "" {
		v, ok := strings.CutPrefix(q.CommunityID, "1:")
		if b, err := base64.StdEncoding.DecodeString(v); !ok || err != nil || len(b) != sha1.Size {
			return bad("community id %q: want a Community ID v1, \"1:\" and the base64 of 20 bytes", q.CommunityID)
		}
	}
	if _, err := filter.New(q.Filter); err != nil {
		return bad("%v", err)
	}
	return nil
}

// Defaults of Options.
const (
	DefaultParallel = 8
	DefaultGap      = 1 << 20
	DefaultMaxRange = 8 << 20
)

// Options tune Run.
type Options struct {
	// OpenIndex opens a file's flow index; nil reads every file whole.
	OpenIndex OpenIndex
	// CommunityID returns the Community ID of a packet's frame, "" for
	// none; required for a query by Community ID (flowindex's).
	CommunityID func(*mirror.Packet) string
	// Parallel bounds the range GETs in flight, DefaultParallel when 0.
	Parallel int
	// Gap is the largest gap in bytes between two needed byte ranges of a
	// file that one GET reads through (DefaultGap when 0; negative: none),
	// MaxRange the most bytes one GET reads (DefaultMaxRange when 0). A
	// file being merged holds at most two GETs' bytes in memory, and the
	// files together up to Parallel more read ahead of the merge, so a
	// query holds at most (2 × the files merged at once + Parallel) ×
	// MaxRange.
	Gap, MaxRange int64
	// MaxOpen bounds the files merged at once (extract.Options.MaxOpen).
	MaxOpen int
	// Application names the writing program in the section header.
	Application string
	// Log gets a warning per file skipped or read whole for a problem.
	Log *slog.Logger
	// Progress, when set, is called (one call at a time) as files are
	// planned and read.
	Progress func(Progress)
}

// Progress is how far a query is, for a terminal.
type Progress struct {
	Files     int   // files to read
	FilesDone int   // files read to their end
	Bytes     int64 // bytes read so far (indexes and captures)
}

// Stats count what Run did.
type Stats struct {
	Manifests int // manifests the bucket listed for the window
	Kept      int // manifests kept by sniffer, time and VN pairs
	Files     int // files read (all kept ones, unless the query ended early)
	Indexed   int // of those, files narrowed down by their index
	// IndexBytes and PcapBytes are the bytes read from indexes and from
	// capture files; Ranges the range GETs of capture files.
	IndexBytes, PcapBytes int64
	Ranges                int64
	Packets               uint64        // packets written
	Extract               extract.Stats // the merge's own counts
}

// ErrTooManyOpen is returned (wrapped) when more stored files overlap
// one instant than Options.MaxOpen allows the merge to hold open.
var ErrTooManyOpen = extract.ErrTooManyOpen

// Run writes to w, as one pcapng stream in time order, the packets of the
// bucket's stored files within q's window that pass q's filter, from every
// sniffer q names, with their comments. The error is a bad query, a
// bucket that cannot list, a write error, ErrTooManyOpen (wrapped, with
// what to change), or ctx's error; files that cannot be read are counted
// in Stats.Extract and logged.
func Run(ctx context.Context, b Bucket, q Query, w io.Writer, o Options) (Stats, error) {
	var st Stats
	if err := q.Check(); err != nil {
		return st, err
	}
	if q.CommunityID != "" && o.CommunityID == nil {
		return st, errors.New("query: a query by Community ID needs Options.CommunityID")
	}
	f, err := filter.New(q.Filter)
	if err != nil {
		return st, fmt.Errorf("query: %w", err)
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Gap == 0 {
		o.Gap = DefaultGap
	}
	if o.MaxRange <= 0 {
		o.MaxRange = DefaultMaxRange
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	iq := IndexQuery{Since: q.Since, Until: q.Until, CommunityID: q.CommunityID}
	// An expression the hints cannot read gives none: every file is read.
	if h, err := filter.Hints(q.Filter.BPF); err == nil {
		iq.Prefixes, iq.Ports, iq.NoAddr = h.Prefixes, h.Ports, !h.IP
	}

	ms, err := b.Manifests(ctx, q.Since, q.Until, q.Sniffers)
	if err != nil {
		return st, fmt.Errorf("query: listing manifests: %w", err)
	}
	st.Manifests = len(ms)
	ms = keep(ms, q, f)
	st.Kept = len(ms)

	r := &run{ctx: ctx, b: b, o: o, iq: iq, sem: make(chan struct{}, o.Parallel), ahead: make(chan struct{}, o.Parallel)}
	r.prog.Files = len(ms)
	plans := r.plan(ms)
	srcs := make([]extract.Source, len(plans))
	for i, p := range plans {
		srcs[i] = extract.Source{Name: p.m.Pcap, First: p.m.First, Last: p.m.Last,
			Open: func() (io.ReadCloser, error) { return r.open(p), nil }}
	}
	eo := extract.Options{Since: q.Since, Until: q.Until, Filter: f, MaxOpen: o.MaxOpen,
		Application: o.Application, Log: o.Log}
	if q.CommunityID != "" {
		eo.Match = func(p *mirror.Packet) bool { return o.CommunityID(p) == q.CommunityID }
	}
	es, err := extract.Write(ctx, w, srcs, eo)
	// Every stream is closed by now; their GETs in flight end first.
	r.fills.Wait()
	if err == nil && ctx.Err() != nil {
		// Files whose GETs the end of ctx stopped count as unreadable to
		// the merge; the answer is not whole.
		err = context.Cause(ctx)
	}
	st.Extract, st.Packets, st.Files = es, es.Written, es.Files
	st.Indexed = int(r.indexed.Load())
	st.IndexBytes, st.PcapBytes, st.Ranges = r.indexBytes.Load(), r.pcapBytes.Load(), r.ranges.Load()
	if errors.Is(err, extract.ErrTooManyOpen) {
		return st, fmt.Errorf("query: %w (narrow the window or the sniffers, or allow more files open at once)", err)
	}
	if err != nil {
		return st, fmt.Errorf("query: %w", err)
	}
	return st, nil
}

// keep returns the manifests q needs, in the order the merge takes
// equal times in: by first packet, sniffer and sequence number.
func keep(ms []objstore.Manifest, q Query, f *filter.Filter) []objstore.Manifest {
	var out []objstore.Manifest
	for _, m := range ms {
		if len(q.Sniffers) > 0 && !slices.Contains(q.Sniffers, m.Sniffer) {
			continue
		}
		if !extract.Overlaps(m.First, m.Last, q.Since, q.Until) {
			continue
		}
		if !pairsMayMatch(m, f) {
			continue
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b objstore.Manifest) int {
		return cmp.Or(a.First.Compare(b.First), cmp.Compare(a.Sniffer, b.Sniffer), cmp.Compare(a.Seq, b.Seq))
	})
	return out
}

// pairsMayMatch reports whether the file of m may hold packets of the VN
// patterns of f: one of its counted pairs matches, or it has packets of
// pairs it did not keep.
func pairsMayMatch(m objstore.Manifest, f *filter.Filter) bool {
	o := f.Options()
	if o.VN == "" && o.SrcVN == "" && o.DstVN == "" {
		return true
	}
	if m.PairsOther > 0 {
		return true
	}
	for _, p := range m.Pairs {
		if f.MayMatchVNs(p.SrcVN, p.DstVN) {
			return true
		}
	}
	return false
}

// run is one Run's shared state.
type run struct {
	ctx   context.Context
	b     Bucket
	o     Options
	iq    IndexQuery
	sem   chan struct{}  // range GETs in flight
	ahead chan struct{}  // GETs started ahead of the merge, all files together
	fills sync.WaitGroup // the goroutines filling the streams

	indexed                       atomic.Int64
	indexBytes, pcapBytes, ranges atomic.Int64

	progMu sync.Mutex
	prog   Progress
}

// progress adds to the progress and reports it.
func (r *run) progress(filesDone int, bytes int64) {
	if r.o.Progress == nil {
		return
	}
	r.progMu.Lock()
	defer r.progMu.Unlock()
	r.prog.FilesDone += filesDone
	r.prog.Bytes += bytes
	r.o.Progress(r.prog)
}
