package query

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// open returns the bytes of p's file that the plan reads, as one pcapng
// stream: the header, then the selected blocks in file order. A goroutine
// reads the plan's GETs in order, each whole into memory while it holds
// one of the Parallel slots, and hands them over one at a time: a file
// holds at most the GET being read and the one being merged, and a GET
// never waits on the merge while it holds a slot, so files merged
// together cannot starve each other of slots.
func (r *run) open(p plan) io.ReadCloser {
	s := &stream{ch: make(chan []byte), done: make(chan struct{})}
	var sel *selector
	if p.indexed {
		sel = &selector{}
	}
	r.fills.Add(1)
	go func() {
		defer r.fills.Done()
		s.fill(r, p, sel)
	}()
	return s
}

type stream struct {
	ch   chan []byte // chunks of the stream; closed at its end
	err  error       // why it ended early; read after ch is closed
	done chan struct{}
	once sync.Once
	cur  []byte
}

func (s *stream) fill(r *run, p plan, sel *selector) {
	defer close(s.ch)
	finished := false
	defer func() {
		if finished {
			r.progress(1, 0)
		}
	}()
	// The GETs of the file are started in order: the next one always,
	// more ahead of the merge while the run has read-ahead tokens to spare
	// (a token is given back once its GET was handed over), so a file read
	// alone keeps Parallel GETs in flight and files merged together share
	// them, without one waiting for another's tokens.
	type result struct {
		b     []byte
		err   error
		token bool
	}
	var queue []chan result
	next := 0
	start := func(token bool) {
		ch := make(chan result, 1)
		at := p.fetches[next].at
		next++
		queue = append(queue, ch)
		go func() {
			b, err := r.get(p.m.Pcap, at)
			ch <- result{b, err, token}
		}()
	}
	defer func() {
		for _, ch := range queue { // abandoned: wait, give tokens back
			if res := <-ch; res.token {
				<-r.ahead
			}
		}
	}()
	for i := range p.fetches {
		f := p.fetches[i]
		if len(queue) == 0 {
			start(false)
		}
		for next < len(p.fetches) && len(queue) <= maxAhead {
			select {
			case r.ahead <- struct{}{}:
				start(true)
				continue
			default:
			}
			break
		}
		res := <-queue[0]
		queue = queue[1:]
		if res.token {
			<-r.ahead
		}
		b, err := res.b, res.err
		if err != nil {
			s.err = err
			return
		}
		r.pcapBytes.Add(int64(len(b)))
		r.ranges.Add(1)
		r.progress(0, int64(len(b)))
		out := b
		if len(f.keep) != 1 || f.keep[0] != f.at {
			out = make([]byte, 0, len(b))
			for _, k := range f.keep {
				out = append(out, b[k.off-f.at.off:k.end()-f.at.off]...)
			}
		}
		if sel != nil {
			if out, err = sel.pass(out); err != nil {
				s.err = fmt.Errorf("%s: %w", p.m.Pcap, err)
				return
			}
		}
		if len(out) == 0 {
			continue
		}
		select {
		case s.ch <- out:
		case <-s.done:
			return
		case <-r.ctx.Done():
			s.err = r.ctx.Err()
			return
		}
	}
	if sel != nil && len(sel.pend) > 0 {
		s.err = fmt.Errorf("%s: the selected bytes end inside a block", p.m.Pcap)
		return
	}
	finished = true
}

// maxAhead bounds the GETs one file has started ahead of the one the
// merge reads next.
const maxAhead = 8

// get reads the bytes at of key, holding a slot for the GET.
func (r *run) get(key string, at span) ([]byte, error) {
	select {
	case r.sem <- struct{}{}:
	case <-r.ctx.Done():
		return nil, r.ctx.Err()
	}
	defer func() { <-r.sem }()
	rc, err := r.b.GetRange(r.ctx, key, at.off, at.n)
	if err != nil {
		return nil, fmt.Errorf("%s: reading [%d, %d): %w", key, at.off, at.end(), err)
	}
	defer rc.Close()
	b := make([]byte, at.n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("%s: reading [%d, %d): %w", key, at.off, at.end(), err)
	}
	return b, nil
}

func (s *stream) Read(b []byte) (int, error) {
	for len(s.cur) == 0 {
		c, ok := <-s.ch
		if !ok {
			if s.err != nil {
				return 0, s.err
			}
			return 0, io.EOF
		}
		s.cur = c
	}
	n := copy(b, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// Close stops the goroutine that fills the stream.
func (s *stream) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// pcapng block types the selector looks at.
const (
	blockSHB = 0x0a0d0d0a
	blockIDB = 1
	blockSPB = 3
	blockISB = 5
	blockEPB = 6
)

// selector passes on the blocks an index selected, checking that they
// are whole blocks, and drops those referring to an interface not
// described before them. A capture file describes an interface when its
// first packet is written, so a file's header (Manifest.HeaderLen) may not
// describe every interface of it; the interfaces described later carry
// packets as captured (no decoded frame), which neither an expression nor
// a Community ID matches, so dropping them loses nothing the query keeps.
type selector struct {
	pend   []byte
	order  binary.ByteOrder
	ifaces uint32
}

// pass appends b to what is pending and returns the whole blocks to pass
// on; a block cut across GETs waits for the rest.
func (s *selector) pass(b []byte) ([]byte, error) {
	s.pend = append(s.pend, b...)
	var out []byte
	for len(s.pend) >= 12 {
		typ := binary.LittleEndian.Uint32(s.pend)
		if typ == blockSHB {
			switch binary.LittleEndian.Uint32(s.pend[8:]) {
			case 0x1a2b3c4d:
				s.order = binary.LittleEndian
			case 0x4d3c2b1a:
				s.order = binary.BigEndian
			default:
				return nil, errors.New("section header with a bad byte-order magic")
			}
			s.ifaces = 0
		}
		if s.order == nil {
			return nil, errors.New("selected blocks do not start with a section header")
		}
		typ = s.order.Uint32(s.pend)
		n := s.order.Uint32(s.pend[4:])
		if n < 12 || n%4 != 0 || n > 64<<20 {
			return nil, fmt.Errorf("selected block of type %#x with a bad length %d (not a block boundary?)", typ, n)
		}
		if uint32(len(s.pend)) < n {
			break
		}
		blk := s.pend[:n]
		keep := true
		switch typ {
		case blockIDB:
			s.ifaces++
		case blockEPB, blockISB:
			keep = n >= 16 && s.order.Uint32(blk[8:]) < s.ifaces
		case blockSPB:
			keep = s.ifaces > 0
		}
		if keep {
			out = append(out, blk...)
		}
		s.pend = s.pend[n:]
	}
	if len(s.pend) == 0 {
		s.pend = nil // let the GET's buffer go
	}
	return out, nil
}
