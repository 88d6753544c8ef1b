package server

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// encoder turns packets into a byte stream (a pcapng section). Flush must
// push everything written so far to the underlying io.Writer.
type encoder interface {
	WritePacket(p *mirror.Packet) error
	Flush() error
}

// newEncoderFunc starts a stream on w; it may write a header.
type newEncoderFunc func(w io.Writer) (encoder, error)

// ErrHubClosed is returned when a stream is added to a closed Hub.
var ErrHubClosed = errors.New("stream hub closed")

// Hub fans decoded packets out to live stream clients. WritePacket runs on
// the capture goroutine and never waits for a client: each client has its
// own filter and encoder, encoding goes into the client's pending buffer,
// and the client's goroutine swaps that buffer for an empty one and sends
// it. A client whose pending buffer is full loses packets, which are
// counted.
type Hub struct {
	limit  int
	newEnc newEncoderFunc

	// clients is replaced, never modified, so that WritePacket can read it
	// without a lock.
	clients atomic.Pointer[[]*streamClient]
	mu      sync.Mutex // serializes changes to clients and closed
	closed  bool
	done    chan struct{} // closed by Close

	sent    atomic.Uint64 // packets queued to clients, over all clients
	dropped atomic.Uint64 // packets lost by slow clients, over all clients
}

func newHub(limit int, newEnc newEncoderFunc) *Hub {
	h := &Hub{limit: limit, newEnc: newEnc, done: make(chan struct{})}
	h.clients.Store(&[]*streamClient{})
	return h
}

// streamClient is one live stream. Its filter and encoder are used only by
// the capture goroutine (after attach); pending and closed are shared with
// the client goroutine under mu.
type streamClient struct {
	f   *filter.Filter
	enc encoder

	mu      sync.Mutex
	pending []byte // encoded, not yet sent
	closed  bool
	wake    chan struct{} // capacity 1: "pending has data"

	sent    atomic.Uint64
	dropped atomic.Uint64
}

// Write is the encoder's sink: it appends to pending. It runs with mu held.
func (c *streamClient) Write(b []byte) (int, error) {
	c.pending = append(c.pending, b...)
	return len(b), nil
}

// WritePacket hands p to every client whose filter matches. It implements
// pipeline.Sink and is meant for the single capture goroutine.
func (h *Hub) WritePacket(p *mirror.Packet) error {
	for _, c := range *h.clients.Load() {
		if !c.f.Match(p) {
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			continue
		}
		if len(c.pending) >= h.limit {
			c.mu.Unlock()
			c.dropped.Add(1)
			h.dropped.Add(1)
			continue
		}
		mark := len(c.pending)
		err := c.enc.WritePacket(p)
		if err == nil {
			err = c.enc.Flush()
		}
		if err != nil {
			// Keep the stream well formed: forget a half-written block.
			c.pending = c.pending[:mark]
			c.mu.Unlock()
			c.dropped.Add(1)
			h.dropped.Add(1)
			continue
		}
		c.mu.Unlock()
		c.sent.Add(1)
		h.sent.Add(1)
		if mark == 0 {
			// Wake the client only when its buffer stops being empty: it
			// takes everything pending at once, and waking a goroutine for
			// every packet would cost more than encoding it.
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// attach creates a client with its own filter, writes the stream header into
// its pending buffer and starts delivering packets to it.
func (h *Hub) attach(f *filter.Filter) (*streamClient, error) {
	c := &streamClient{
		f:       f,
		pending: make([]byte, 0, 64<<10),
		wake:    make(chan struct{}, 1),
	}
	c.mu.Lock()
	enc, err := h.newEnc(c)
	if err == nil {
		err = enc.Flush()
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c.enc = enc
	c.wake <- struct{}{} // the header goes out at once

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	old := *h.clients.Load()
	next := make([]*streamClient, len(old), len(old)+1)
	copy(next, old)
	next = append(next, c)
	h.clients.Store(&next)
	return c, nil
}

// detach stops delivery to c. The capture goroutine may still hold the old
// client list, so c is also marked closed under its own lock.
func (h *Hub) detach(c *streamClient) {
	h.mu.Lock()
	old := *h.clients.Load()
	next := make([]*streamClient, 0, len(old))
	for _, o := range old {
		if o != c {
			next = append(next, o)
		}
	}
	h.clients.Store(&next)
	h.mu.Unlock()

	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// take swaps the pending buffer for spare (emptied) and returns what was
// pending.
func (c *streamClient) take(spare []byte) []byte {
	c.mu.Lock()
	out := c.pending
	c.pending = spare[:0]
	c.mu.Unlock()
	return out
}

// Close ends every stream after what is already encoded has been sent, and
// refuses new ones. It is safe to call more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// Clients is the number of connected stream clients.
func (h *Hub) Clients() int { return len(*h.clients.Load()) }

// Dropped is the number of packets lost by stream clients that did not keep
// up, over all clients so far.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Sent is the number of packets queued to stream clients, over all clients
// so far.
func (h *Hub) Sent() uint64 { return h.sent.Load() }
