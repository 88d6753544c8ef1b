// Package extract answers "everything between T1 and T2 for this VN": it
// merges the stored capture files that overlap a time window into one
// time-ordered pcapng stream, with a filter applied.
//
// The files are those vrsniff capture writes (internal/ring): pcapng or
// pcap holding decoded frames, the metadata of each in its first comment.
// They are read back as they are: data, comments and direction are copied,
// not decoded again (pcapfile.FormatCopy).
package extract

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// DefaultMaxOpen is the default of Options.MaxOpen: room for every file
// a capture split by VN pair has open at once (ring.DefaultMaxOpen, 256,
// and the other set), twice over. Each open file holds one packet and a
// read buffer of readBuf bytes (more while a longer record is read), so
// the default bounds the memory of a merge to about 32 MiB.
const DefaultMaxOpen = 512

// readBuf is the read buffer of each open file.
const readBuf = 64 << 10

// ErrTooManyOpen is returned (wrapped) when more files overlap one instant
// of the window than Options.MaxOpen allows: the merge needs them all open
// at once to keep the output in time order.
var ErrTooManyOpen = errors.New("too many files overlap in time")

// Source is one capture file to read.
type Source struct {
	Name string // for messages
	// Paths are the file's paths, for a file of a directory (Dir): a file
	// being written lists both its names. Empty for a file of a store.
	Paths []string
	// First and Last are the times of the file's first and last packets,
	// from its sidecar (ring.Info) or the store's listing; zero when not
	// known. They decide which files the window skips without opening
	// them, and when a file is opened: not before the merge reaches First.
	First, Last time.Time
	// Partial marks a file still being written: an incomplete record at
	// its end is where it ends for now, not an error.
	Partial bool
	// Stats is what the capture received and lost while the file was
	// written (its sidecar, or the store's listing); zero when not known.
	Stats Drops
	// Open opens the file; an error satisfying errors.Is(err,
	// fs.ErrNotExist) means it was removed (retention) since it was
	// listed, and the file is skipped with a warning.
	Open func() (io.ReadCloser, error)
}

// Drops are a stored file's counts of what its capture received and lost
// while it was written, from Opened to Closed (docs/capture.md, "Drops").
type Drops struct {
	Opened, Closed time.Time
	// Received counts the packets the capture source read, KernelDropped
	// those the kernel dropped before it could, StoreDropped those the
	// store could not write.
	Received, KernelDropped, StoreDropped uint64
}

// known reports whether d holds counts.
func (d Drops) known() bool { return !d.Opened.IsZero() }

// Options select what Write copies.
type Options struct {
	// Since and Until bound the window [Since, Until) of packet times;
	// a zero value leaves that side open.
	Since, Until time.Time
	Filter       *filter.Filter // nil keeps every packet
	// Match, when set, is a further condition a packet that passed Filter
	// must meet (what a filter.Filter cannot say, such as a flow's
	// Community ID). The packet is as Filter sees it.
	Match func(*mirror.Packet) bool
	// MaxOpen bounds the files open at once (DefaultMaxOpen when 0).
	MaxOpen int
	// Application names the writing program in the section header.
	Application string
	// Log gets a warning per file skipped or cut short; nil discards them.
	Log *slog.Logger
}

// Stats count what Write did.
type Stats struct {
	Files    int    // files read
	Skipped  int    // files outside the window by their times, not opened
	Vanished int    // files removed between listing and reading
	Broken   int    // files that could not be read, or ended in a bad record
	Read     uint64 // packets read from the files within the window
	Written  uint64 // packets that passed the filter and were written
}

// Warnings is the number of files skipped or cut short by a problem.
func (s Stats) Warnings() int { return s.Vanished + s.Broken }

// Overlaps reports whether a file with packets from first to last (zero:
// unknown) may hold packets of the window [since, until).
func Overlaps(first, last, since, until time.Time) bool {
	if !last.IsZero() && !since.IsZero() && last.Before(since) {
		return false
	}
	if !first.IsZero() && !until.IsZero() && !first.Before(until) {
		return false
	}
	return true
}

// Write writes, as one pcapng stream to w, the packets of srcs within the
// window that pass the filter, in time order: a k-way merge that holds one
// packet per open file. Packets of equal time keep the order of srcs, then
// their order in the file; a file whose own packets are out of order is
// merged as it comes. Output interfaces are one per distinct input
// interface description (name, description, link type, snap length),
// whatever file it comes from.
//
// Files that vanish or cannot be read are counted in Stats and logged, not
// errors; the error is a write error, ErrTooManyOpen, or ctx's error when
// it ends first.
func Write(ctx context.Context, w io.Writer, srcs []Source, o Options) (Stats, error) {
	m := &merger{o: o, log: o.Log, ctx: ctx}
	if m.o.MaxOpen <= 0 {
		m.o.MaxOpen = DefaultMaxOpen
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	pw, err := pcapfile.NewWriter(w, pcapfile.Options{Format: pcapfile.FormatCopy, Interfaces: &m.ifaces, Application: o.Application})
	if err != nil {
		return m.st, err
	}
	defer m.closeAll()
	for i, s := range srcs {
		if s.First.IsZero() {
			// A file being written has no sidecar yet: its first packet
			// says when to open it, so that many of them (a capture split
			// by VN pair) are not all open from the start.
			s.First = firstTime(s)
		}
		if !Overlaps(s.First, s.Last, o.Since, o.Until) {
			m.st.Skipped++
			continue
		}
		m.pending = append(m.pending, &cursor{src: s, order: i})
	}
	// Opened in order of their first packet; unknown first, at once.
	slices.SortStableFunc(m.pending, func(a, b *cursor) int { return a.src.First.Compare(b.src.First) })
	for {
		for len(m.pending) > 0 && (len(m.open) == 0 || !m.pending[0].src.First.After(m.open[0].p.Timestamp)) {
			c := m.pending[0]
			m.pending = m.pending[1:]
			if err := m.start(c); err != nil {
				return m.st, err
			}
		}
		if len(m.open) == 0 {
			break
		}
		if m.err != nil {
			return m.st, m.err
		}
		c := m.open[0]
		c.p.Interface = c.global(&m.ifaces)
		if !c.counted && c.src.Stats.known() {
			c.counted = true
			m.addStats(c.p.Interface, c.src.Stats)
		}
		if err := pw.WritePacket(&c.p); err != nil {
			return m.st, fmt.Errorf("extract: %w", err)
		}
		m.st.Written++
		if m.advance(c) {
			heap.Fix(&m.open, 0)
		} else {
			heap.Pop(&m.open)
			c.close()
		}
	}
	if m.err != nil {
		return m.st, m.err
	}
	for id, s := range m.isb {
		if s.HasReceived {
			if err := pw.WriteStats(id, s); err != nil {
				return m.st, fmt.Errorf("extract: %w", err)
			}
		}
	}
	if err := pw.Flush(); err != nil {
		return m.st, fmt.Errorf("extract: %w", err)
	}
	return m.st, nil
}

type merger struct {
	ctx     context.Context
	err     error  // ctx's, once it ended
	steps   uint64 // packets read, for how often ctx is looked at
	o       Options
	log     *slog.Logger
	st      Stats
	pending []*cursor
	open    cursors
	ifaces  ifaceTable
	isb     []pcapfile.InterfaceStats // by output interface: the sum of its files' Drops
}

// addStats adds the counts of a file whose packets go to output interface
// id: the statistics block written for it at the end covers every file
// that gave it packets, from the first opened to the last closed, whole
// files (a window cuts packets, not counts).
func (m *merger) addStats(id int, d Drops) {
	for len(m.isb) <= id {
		m.isb = append(m.isb, pcapfile.InterfaceStats{})
	}
	s := &m.isb[id]
	if !s.HasReceived || d.Opened.Before(s.Start) {
		s.Start = d.Opened
	}
	if d.Closed.After(s.End) {
		s.End = d.Closed
	}
	s.Time = s.End
	// As the capture writes its blocks (internal/ring): what reached the
	// interface is what was read and what the kernel dropped.
	s.Received += d.Received + d.KernelDropped
	s.IfDropped += d.KernelDropped
	s.OSDropped += d.StoreDropped
	s.HasReceived, s.HasIfDropped, s.HasOSDropped = true, true, true
}

// start opens c and queues it at its first packet; a file without one in
// the window is closed again.
func (m *merger) start(c *cursor) error {
	if len(m.open) >= m.o.MaxOpen {
		return fmt.Errorf("extract: %s: %w: more than %d (MaxOpen) at %s", c.src.Name, ErrTooManyOpen,
			m.o.MaxOpen, c.src.First.UTC().Format(time.RFC3339Nano))
	}
	rc, err := c.src.Open()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			m.st.Vanished++
			m.log.Warn("capture file removed before it could be read", "file", c.src.Name)
			return nil
		}
		m.st.Broken++
		m.log.Warn("cannot open capture file", "file", c.src.Name, "err", err)
		return nil
	}
	c.rc = rc
	rd, err := pcapfile.NewReaderSize(rc, readBuf)
	if err != nil {
		c.close()
		if !isCut(err, c.src.Partial) {
			m.st.Broken++
			m.log.Warn("cannot read capture file", "file", c.src.Name, "err", err)
		}
		return nil
	}
	c.rd = rd
	m.st.Files++
	if m.advance(c) {
		heap.Push(&m.open, c)
	} else {
		c.close()
	}
	return nil
}

// advance reads c's next packet within the window that passes the filter;
// false at the end of the file.
func (m *merger) advance(c *cursor) bool {
	for {
		if m.steps++; m.steps%1024 == 1 && m.ctx.Err() != nil {
			m.err = fmt.Errorf("extract: %w", context.Cause(m.ctx))
			return false
		}
		if m.err != nil {
			return false
		}
		err := c.rd.Next(&c.p)
		if err == io.EOF {
			return false
		}
		if err != nil {
			if !isCut(err, c.src.Partial) {
				m.st.Broken++
				m.log.Warn("capture file cut short", "file", c.src.Name, "err", err)
			}
			return false
		}
		t := c.p.Timestamp
		if (!m.o.Since.IsZero() && t.Before(m.o.Since)) || (!m.o.Until.IsZero() && !t.Before(m.o.Until)) {
			continue
		}
		m.st.Read++
		c.names = prepare(&c.p, c.names)
		if m.o.Filter.Match(&c.p) && (m.o.Match == nil || m.o.Match(&c.p)) {
			c.seq++
			return true
		}
	}
}

// firstTime returns the time of the first packet of s, zero when it
// cannot be read; the file is opened again when the merge reaches it.
func firstTime(s Source) time.Time {
	rc, err := s.Open()
	if err != nil {
		return time.Time{}
	}
	defer rc.Close()
	rd, err := pcapfile.NewReaderSize(rc, 4096)
	if err != nil {
		return time.Time{}
	}
	var p mirror.Packet
	if rd.Next(&p) != nil {
		return time.Time{}
	}
	return p.Timestamp
}

// isCut reports whether err is the end of a file being written: a record
// not yet complete.
func isCut(err error, partial bool) bool {
	var fe *pcapfile.FormatError
	return partial && (errors.As(err, &fe) || errors.Is(err, io.ErrUnexpectedEOF))
}

// prepare fills in, from what a stored record holds, what the filter
// looks at: the VN names and direction from the metadata comment, and
// the frame. Quoted names are unquoted into names, which it returns for
// the next packet of the same file.
func prepare(p *mirror.Packet, names []byte) []byte {
	p.Reset()
	p.Frame = p.Data
	if p.LinkType != layers.LinkTypeEthernet {
		p.Mode = mirror.ModeOther // not a frame an expression can match
	}
	if len(p.Comments) > 0 {
		names, _ = mirror.ParseCommentBuf(p.Comments[0], &p.Meta, names)
	}
	return names
}

func (m *merger) closeAll() {
	for _, c := range m.open {
		c.close()
	}
	m.open = nil
}

// cursor is one open file of the merge and its next packet.
type cursor struct {
	src     Source
	order   int
	seq     uint64
	rc      io.ReadCloser
	rd      *pcapfile.Reader
	p       mirror.Packet
	local   []int  // the reader's interface index to the output's
	counted bool   // its Stats were added to its output interface's
	names   []byte // p's quoted VN names, unquoted
}

func (c *cursor) close() {
	if c.rc != nil {
		c.rc.Close()
		c.rc = nil
	}
}

// global returns the output interface index of c's packet.
func (c *cursor) global(t *ifaceTable) int {
	i := c.p.Interface
	for len(c.local) <= i {
		c.local = append(c.local, t.index(c.rd.Interface(len(c.local))))
	}
	return c.local[i]
}

// ifaceTable lists the distinct input interface descriptions; it is the
// output encoder's Describer.
type ifaceTable struct {
	list []pcapfile.Interface
	by   map[ifaceKey]int
}

type ifaceKey struct {
	name, desc string
	link       layers.LinkType
	snap       uint32
}

func (t *ifaceTable) index(d pcapfile.Interface) int {
	k := ifaceKey{d.Name, d.Description, d.LinkType, d.SnapLen}
	if i, ok := t.by[k]; ok {
		return i
	}
	if t.by == nil {
		t.by = map[ifaceKey]int{}
	}
	t.by[k] = len(t.list)
	t.list = append(t.list, d)
	return len(t.list) - 1
}

func (t *ifaceTable) Interface(i int) pcapfile.Interface { return t.list[i] }

// cursors is a heap of open files by their next packet's time.
type cursors []*cursor

func (h cursors) Len() int { return len(h) }
func (h cursors) Less(i, j int) bool {
	a, b := h[i], h[j]
	if c := a.p.Timestamp.Compare(b.p.Timestamp); c != 0 {
		return c < 0
	}
	if a.order != b.order {
		return a.order < b.order
	}
	return a.seq < b.seq
}
func (h cursors) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursors) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *cursors) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
