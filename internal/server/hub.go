package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// encoder appends packets to a pcapng section, as pcapfile.Encoder does:
// the section header and interface descriptions first, then each packet's
// block, preceded by the description of its interface if it is the first
// of one (Interfaces counts them).
type encoder interface {
	AppendHeader(dst []byte) []byte
	Append(dst []byte, p *mirror.Packet) ([]byte, error)
	SizeHint(p *mirror.Packet) int
	Interfaces() int
}

// newEncoderFunc makes the encoder of the stream.
type newEncoderFunc func() (encoder, error)

var (
	// ErrHubClosed is returned when a stream is added to a closed Hub.
	ErrHubClosed = errors.New("stream hub closed")
	// ErrTooManyClients is returned when a stream would exceed the
	// client limit.
	ErrTooManyClients = errors.New("too many stream clients")
)

const (
	// The backlog is cut into chunks of chunkSize bytes; a block never
	// spans two. A chunk holds the largest block a packet can give (a
	// 256 KiB frame and a 64 KiB comment): a larger one is not streamed.
	chunkBits = 19
	chunkSize = 1 << chunkBits

	// MinStreamBuffer is the smallest backlog: two chunks, so that one is
	// written while the other is read.
	MinStreamBuffer = 2 * chunkSize

	// clientBatch is about how many bytes a client copies out of the
	// backlog and writes at once: its own buffer, whatever its speed.
	clientBatch = 64 << 10
	// maxTake bounds the references a client copies under its filter's
	// lock at once.
	maxTake = 1024

	// refsPerByte sizes a filter's list of references to the backlog: one
	// per 512 bytes, so that a slow client finds its packets whenever they
	// average at least that size, and is told it lost them otherwise.
	refsPerByte = 512

	// notifyEvery is the longest clients sleep while packets wait: they
	// are woken at most this often, so that a stream of small packets
	// does not wake every client for every packet.
	notifyEvery = 5 * time.Millisecond
)

// Hub fans decoded packets out to live stream clients.
//
// WritePacket, on a capture goroutine, does the same work whatever the
// number of clients: one filter decision per distinct filter (clients that
// ask for the same filter share one), one pcapng encoding of the packet into
// a shared backlog of fixed size, and a 16-byte reference to it appended to
// the list of each matching filter. It never writes to a socket, never waits
// for a client's I/O (only, briefly, for one copying references out of a
// list), and allocates only a chunk of the backlog, on the first pass
// through it or when the chunk due for reuse is being read. Each client's
// own goroutine follows its filter's references, copies the blocks into a
// write buffer of its own (about clientBatch bytes) and sends them. A
// client so far behind that the backlog no longer holds its next packets
// loses them; the loss is counted for that client and in the totals.
type Hub struct {
	maxClients int
	nrefs      int // references kept per filter, a power of two

	// wmu makes the capture goroutines take turns in WritePacket; what
	// follows, and group.f and group.hit, are used under it only.
	wmu  sync.Mutex
	enc  encoder
	cur  *chunk // chunk being filled
	seq  uint64 // its sequence number, from 1
	used int    // bytes of cur in use

	slots  []atomic.Pointer[chunk] // chunk seq s lives in slots[s%len(slots)]
	oldest atomic.Uint64           // sequence number of the oldest chunk still held

	mu      sync.Mutex // guards what follows, and changes to groups
	groups  atomic.Pointer[[]*group]
	clients []*streamClient
	header  []byte // section header and interface descriptions, in order
	idbEnd  []int  // idbEnd[i] is where interface i's description ends in header
	closed  bool
	done    chan struct{} // closed by Close

	gen  atomic.Pointer[chan struct{}] // closed when packets are waiting
	kick chan struct{}                 // capacity 1: "packets were added"

	// Totals of departed clients; live ones are summed at read time.
	goneSent, goneDropped uint64 // under mu
	unstreamable          atomic.Uint64
	rejected              atomic.Uint64
	shownDropped          atomic.Uint64 // see raise
}

// chunk is a piece of the backlog. Its bytes are written once by the capture
// goroutine, before any reference to them is published, and only read
// afterwards, until the chunk is reused for a later sequence number: seq
// says which one it holds, users how many clients are copying out of it.
// A chunk in use when its turn to be reused comes is left to them and a new
// one takes its slot.
type chunk struct {
	seq   atomic.Uint64 // 0 while being reused
	users atomic.Int32
	data  []byte // chunkSize bytes, never resliced
}

// ref locates one packet block in the backlog.
type ref struct {
	pos    uint64 // chunk sequence number << chunkBits | offset
	n      uint32 // block length
	ifaces uint32 // interfaces described when it was encoded
}

// group is the clients that share one filter.
type group struct {
	key      string
	f        *filter.Filter // used under Hub.wmu only
	hit      bool           // under Hub.wmu: f matched the current packet
	nclients int            // under Hub.mu

	mu   sync.Mutex
	refs []ref  // ring of references, len a power of two
	head uint64 // references appended so far
}

func (g *group) push(r ref) {
	g.mu.Lock()
	g.refs[g.head&uint64(len(g.refs)-1)] = r
	g.head++
	g.mu.Unlock()
}

// streamClient is one live stream.
type streamClient struct {
	g      *group
	remote string
	since  time.Time

	// Used by the client's goroutine only.
	ifaces uint32 // interfaces described to it so far
	taken  []ref
	out    []byte // next bytes to send

	cursor uint64 // next reference of g to send; under g.mu
	gone   bool   // detached; under Hub.mu

	sent    atomic.Uint64
	dropped atomic.Uint64
	shown   atomic.Uint64 // the highest loss reported for it
}

// raise makes a counter read at most what it said last: the loss of a
// client is counted as it takes its references, plus, for those it has not
// taken yet, what lost says; references taken but not yet copied are in
// neither for a moment.
func raise(shown *atomic.Uint64, n uint64) uint64 {
	for {
		old := shown.Load()
		if n <= old {
			return old
		}
		if shown.CompareAndSwap(old, n) {
			return n
		}
	}
}

// newHub makes a hub whose backlog holds about buffer bytes, for at most
// maxClients clients.
func newHub(buffer, maxClients int, newEnc newEncoderFunc) (*Hub, error) {
	if buffer < MinStreamBuffer {
		return nil, fmt.Errorf("stream buffer %d bytes: want at least %d", buffer, MinStreamBuffer)
	}
	if maxClients < 1 {
		return nil, fmt.Errorf("stream clients %d: want at least 1", maxClients)
	}
	h := &Hub{
		maxClients: maxClients,
		nrefs:      1 << bits.Len(uint(max(buffer/refsPerByte, 1024)-1)),
		slots:      make([]atomic.Pointer[chunk], buffer/chunkSize),
		done:       make(chan struct{}),
		kick:       make(chan struct{}, 1),
	}
	gen := make(chan struct{})
	h.gen.Store(&gen)
	h.groups.Store(&[]*group{})
	enc, err := newEnc()
	if err != nil {
		return nil, fmt.Errorf("start stream encoder: %w", err)
	}
	hdr := enc.AppendHeader(nil)
	if len(hdr) < 12 || enc.Interfaces() == 0 {
		return nil, errors.New("start stream encoder: no interface described")
	}
	shb := binary.LittleEndian.Uint32(hdr[4:])
	h.header = hdr[:shb:shb]
	h.describe(hdr[shb:], enc.Interfaces())
	h.enc = enc
	go h.notify()
	return h, nil
}

// describe moves the n interface descriptions that begin b, as the
// encoder wrote them, to the header, and returns the rest of b.
func (h *Hub) describe(b []byte, n int) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range n {
		l := binary.LittleEndian.Uint32(b[4:])
		h.header = append(h.header, b[:l]...)
		h.idbEnd = append(h.idbEnd, len(h.header))
		b = b[l:]
	}
	return b
}

// encode appends p's block to the backlog and returns where it is. The
// encoder appends straight into the chunk being filled; a chunk whose rest
// may not hold the block is left for the next one. A block that does not
// fit a chunk, or one the encoder refuses, is not stored (false).
func (h *Hub) encode(p *mirror.Packet) (ref, bool) {
	if h.cur == nil || (h.used > 0 && h.used+h.enc.SizeHint(p) > chunkSize) {
		h.advance()
	}
	described := h.enc.Interfaces()
	dst := h.cur.data[h.used:h.used:chunkSize]
	out, err := h.enc.Append(dst, p)
	if err != nil {
		return ref{}, false
	}
	blk := out
	if n := h.enc.Interfaces() - described; n > 0 {
		blk = h.describe(out, n)
	}
	if len(blk) > chunkSize {
		return ref{}, false
	}
	if cap(out) != cap(dst) {
		// The hint fell short (a very long comment): Append outgrew the
		// chunk into a buffer of its own.
		if h.used+len(blk) > chunkSize {
			h.advance()
		}
		copy(h.cur.data[h.used:], blk)
	} else if len(blk) != len(out) {
		copy(h.cur.data[h.used:], blk) // over the descriptions moved out
	}
	r := ref{pos: h.seq<<chunkBits | uint64(h.used), n: uint32(len(blk)), ifaces: uint32(h.enc.Interfaces())}
	h.used += len(blk)
	return r, true
}

// advance starts the next chunk, reusing the one it replaces unless a
// client is still copying from it.
func (h *Hub) advance() {
	h.seq++
	slot := &h.slots[h.seq%uint64(len(h.slots))]
	c := slot.Load()
	if c != nil {
		// Mark it first: a client that starts copying from now on sees
		// the mark, and one already copying is seen here.
		c.seq.Store(0)
		if c.users.Load() != 0 {
			c = nil
		}
	}
	if c == nil {
		c = &chunk{data: make([]byte, chunkSize)}
	}
	c.seq.Store(h.seq)
	slot.Store(c)
	h.cur, h.used = c, 0
	h.oldest.Store(h.seq - min(h.seq-1, uint64(len(h.slots)-1)))
}

// acquire returns the chunk holding sequence number seq, to be released
// with c.users.Add(-1), or nil once it has been reused.
func (h *Hub) acquire(seq uint64) *chunk {
	c := h.slots[seq%uint64(len(h.slots))].Load()
	if c == nil {
		return nil
	}
	c.users.Add(1)
	if c.seq.Load() != seq {
		c.users.Add(-1)
		return nil
	}
	return c
}

// WritePacket hands p to every client whose filter matches. It implements
// pipeline.Sink. Several capture goroutines (a capture's workers) may call
// it at once: they take turns under one lock, and only while a client is
// connected; without one a packet costs an atomic load. A stream then
// holds the workers' packets in the order they took their turns, which
// is not quite their time order.
func (h *Hub) WritePacket(p *mirror.Packet) error {
	if len(*h.groups.Load()) == 0 {
		return nil
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	gs := *h.groups.Load()
	hit := false
	for _, g := range gs {
		g.hit = g.f.Match(p)
		hit = hit || g.hit
	}
	if !hit {
		return nil
	}
	blk, ok := h.encode(p)
	if !ok {
		// Not streamable (too large, or the encoder refused it): the
		// clients that wanted it lose it.
		h.mu.Lock()
		for _, g := range gs {
			if g.hit {
				h.unstreamable.Add(uint64(g.nclients))
			}
		}
		h.mu.Unlock()
		return nil
	}
	for _, g := range gs {
		if g.hit {
			g.push(blk)
		}
	}
	select {
	case h.kick <- struct{}{}:
	default:
	}
	return nil
}

// notify wakes the waiting clients when packets were added, at most every
// notifyEvery, until the hub is closed.
func (h *Hub) notify() {
	t := time.NewTimer(notifyEvery)
	defer t.Stop()
	for {
		select {
		case <-h.kick:
		case <-h.done:
			return
		}
		next := make(chan struct{})
		close(*h.gen.Swap(&next))
		t.Reset(notifyEvery)
		select {
		case <-t.C:
		case <-h.done:
			return
		}
	}
}

// wakeup returns a channel closed once packets were added after the call.
func (h *Hub) wakeup() <-chan struct{} { return *h.gen.Load() }

// attach adds a client with filter f; clients whose filters have the same
// options share one. The client's write buffer starts with the stream
// header.
func (h *Hub) attach(f *filter.Filter, remote string) (*streamClient, error) {
	key := f.Options().Query().Encode()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	if len(h.clients) >= h.maxClients {
		h.rejected.Add(1)
		return nil, ErrTooManyClients
	}
	var g *group
	old := *h.groups.Load()
	for _, o := range old {
		if o.key == key {
			g = o
		}
	}
	if g == nil {
		g = &group{key: key, f: f, refs: make([]ref, h.nrefs)}
		next := make([]*group, len(old), len(old)+1)
		copy(next, old)
		next = append(next, g)
		h.groups.Store(&next)
	}
	g.nclients++
	nif := len(h.idbEnd)
	c := &streamClient{
		g: g, remote: remote, since: time.Now(),
		ifaces: uint32(nif),
		taken:  make([]ref, 0, maxTake),
		out:    append(make([]byte, 0, clientBatch+h.idbEnd[nif-1]), h.header[:h.idbEnd[nif-1]]...),
	}
	g.mu.Lock()
	c.cursor = g.head
	g.mu.Unlock()
	h.clients = append(h.clients, c)
	return c, nil
}

// detach stops delivery to c and counts what it lost.
func (h *Hub) detach(c *streamClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.gone {
		return
	}
	c.gone = true
	for i, o := range h.clients {
		if o == c {
			h.clients = append(h.clients[:i], h.clients[i+1:]...)
			break
		}
	}
	g := c.g
	if g.nclients--; g.nclients == 0 {
		// The capture goroutine may still hold the old list: a departed
		// group only costs it a filter decision.
		old := *h.groups.Load()
		next := make([]*group, 0, len(old))
		for _, o := range old {
			if o != g {
				next = append(next, o)
			}
		}
		h.groups.Store(&next)
	}
	c.dropped.Add(h.lost(c))
	g.mu.Lock()
	c.cursor = g.head // what is lost is counted
	g.mu.Unlock()
	h.goneSent += c.sent.Load()
	h.goneDropped += c.dropped.Load()
}

// lost is how many of the packets c has not taken yet are no longer held:
// their references were overwritten or their chunks reused.
func (h *Hub) lost(c *streamClient) uint64 {
	g := c.g
	oldest := h.oldest.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	var n uint64
	cur := c.cursor
	if first := g.head - min(g.head, uint64(len(g.refs))); cur < first {
		n, cur = first-cur, first
	}
	// References are in backlog order: find the first still held.
	mask := uint64(len(g.refs) - 1)
	k := sort.Search(int(g.head-cur), func(i int) bool {
		return g.refs[(cur+uint64(i))&mask].pos>>chunkBits >= oldest
	})
	return n + uint64(k)
}

// take copies c's next references, up to limit and about clientBatch bytes
// of blocks, into c.taken. References already overwritten are counted lost.
func (h *Hub) take(c *streamClient, limit uint64) {
	g := c.g
	c.taken = c.taken[:0]
	g.mu.Lock()
	end := min(g.head, limit)
	if first := g.head - min(g.head, uint64(len(g.refs))); c.cursor < first {
		c.dropped.Add(first - c.cursor)
		c.cursor = first
	}
	mask := uint64(len(g.refs) - 1)
	size := 0
	for c.cursor < end && size < clientBatch && len(c.taken) < cap(c.taken) {
		r := g.refs[c.cursor&mask]
		c.taken = append(c.taken, r)
		size += int(r.n)
		c.cursor++
	}
	g.mu.Unlock()
}

// fill appends c's next blocks, up to limit (a count of its filter's
// references), to c.out, preceded by any interface description they need.
// It reports whether more are waiting.
func (h *Hub) fill(c *streamClient, limit uint64) (more bool) {
	h.take(c, limit)
	var held *chunk
	var heldSeq uint64
	var sent, dropped uint64
	for _, r := range c.taken {
		seq, off := r.pos>>chunkBits, int(r.pos&(chunkSize-1))
		if held == nil || heldSeq != seq {
			if held != nil {
				held.users.Add(-1)
			}
			held, heldSeq = h.acquire(seq), seq
		}
		if held == nil {
			dropped++
			continue
		}
		if r.ifaces > c.ifaces {
			h.mu.Lock()
			c.out = append(c.out, h.header[h.idbEnd[c.ifaces-1]:h.idbEnd[r.ifaces-1]]...)
			h.mu.Unlock()
			c.ifaces = r.ifaces
		}
		c.out = append(c.out, held.data[off:off+int(r.n)]...)
		sent++
	}
	if held != nil {
		held.users.Add(-1)
	}
	c.sent.Add(sent)
	c.dropped.Add(dropped)
	return c.pending(limit)
}

// pending reports whether references up to limit wait for c.
func (c *streamClient) pending(limit uint64) bool {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	return c.cursor < min(c.g.head, limit)
}

// headOf returns how many references c's filter has had so far: the end of
// what c is to send when the hub closes.
func (c *streamClient) headOf() uint64 {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	return c.g.head
}

// Close ends every stream after what is already in the backlog has been
// sent, and refuses new ones. It is safe to call more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// Clients is the number of connected stream clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Dropped is the number of packets stream clients lost because they did not
// keep up, or because a packet was too large to stream, over all clients so
// far, connected ones included.
func (h *Hub) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.goneDropped + h.unstreamable.Load()
	for _, c := range h.clients {
		n += c.dropped.Load() + h.lost(c)
	}
	return raise(&h.shownDropped, n)
}

// Sent is the number of packets sent to stream clients (copied to their
// write buffers), summed over clients so far.
func (h *Hub) Sent() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.goneSent
	for _, c := range h.clients {
		n += c.sent.Load()
	}
	return n
}

// Rejected is the number of stream requests refused because the client
// limit was reached.
func (h *Hub) Rejected() uint64 { return h.rejected.Load() }

// StreamInfo describes one connected stream client.
type StreamInfo struct {
	Remote  string    `json:"remote"`
	Filter  string    `json:"filter"` // its filter as query parameters; "" for none
	Since   time.Time `json:"since"`
	Packets uint64    `json:"packets"` // packets sent to it
	Dropped uint64    `json:"dropped"` // packets it lost by not keeping up
}

// Streams lists the connected stream clients, oldest first.
func (h *Hub) Streams() []StreamInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]StreamInfo, 0, len(h.clients))
	for _, c := range h.clients {
		out = append(out, StreamInfo{
			Remote: c.remote, Filter: c.g.key, Since: c.since,
			Packets: c.sent.Load(), Dropped: raise(&c.shown, c.dropped.Load()+h.lost(c)),
		})
	}
	return out
}
