package capture

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/source"
)

// Output is one capture stream the kept packets are written to, beside or
// instead of the rotating files: standard output piped into Wireshark
// (wireshark -k -i -) or a single file, as tcpdump -w writes them.
type Output struct {
	W io.Writer
	// Format is pcapfile.FormatPcapNG (the metadata as packet comments,
	// the zero value) or pcapfile.FormatPcap.
	Format pcapfile.Format
	// PacketBuffered writes each packet out as it is kept, so that a
	// reader at the other end of a pipe sees it at once; otherwise
	// whole blocks are written, a megabyte at a time, and the rest when
	// Run ends.
	PacketBuffered bool
	// MaxBytes, if positive, ends the capture once that many bytes were
	// written to W (the last packet may go past it).
	MaxBytes int64
}

// OutputStats are the counters of the Output: packets and bytes handed to
// W, and packets that could not be (a write error, a link type that
// classic pcap cannot hold).
type OutputStats struct {
	Packets, Bytes, Errors uint64
}

// MinRingMiB is the smallest AF_PACKET ring Check accepts, in MiB.
const MinRingMiB = 4

// Check reports what makes c unusable before anything is opened, in the
// terms of c: the errors New returns for a bad configuration, so that a
// command line can tell them (a usage error) from a failure to start (a
// port taken, an interface missing).
func (c Config) Check() error {
	n := 0
	for _, v := range []string{c.Interface, c.Listen, c.Read} {
		if v != "" {
			n++
		}
	}
	so := c.Source
	ringBytes := int64(so.RingBlocks) * int64(max(so.RingBlockSize, source.DefaultRingBlockSize))
	switch {
	case n != 1:
		return errors.New("give exactly one source: an interface, a UDP address or a file")
	case c.Dir == "" && c.HTTP == "" && c.Out == nil:
		return errors.New("nothing would be kept: give a directory (files), an HTTP address (API, live stream) and/or an output stream")
	case c.StaleAfter < 0:
		return fmt.Errorf("stale-after %v: must not be negative", c.StaleAfter)
	case so.SnapLen < 0:
		return fmt.Errorf("snap length %d: must not be negative (0: %d)", so.SnapLen, source.DefaultSnapLen)
	case so.RingBlocks < 0 || so.RingBlocks > 0 && ringBytes < MinRingMiB<<20:
		return fmt.Errorf("AF_PACKET ring of %d MiB: want at least %d MiB", ringBytes>>20, MinRingMiB)
	case c.MaxPackets < 0:
		return fmt.Errorf("packet count %d: must not be negative (0: no limit)", c.MaxPackets)
	case c.Out != nil && c.Out.W == nil:
		return errors.New("an output stream without a writer")
	case c.Out != nil && c.Out.Format != pcapfile.FormatPcapNG && c.Out.Format != pcapfile.FormatPcap:
		return fmt.Errorf("output stream format %v: want pcapng or pcap", c.Out.Format)
	case c.Out != nil && c.Out.MaxBytes < 0:
		return fmt.Errorf("output size limit %d: must not be negative (0: no limit)", c.Out.MaxBytes)
	}
	if err := checkUpload(c); err != nil {
		return err
	}
	if _, err := workerCount(c); err != nil {
		return err
	}
	return c.Decoder.Traffic.Validate()
}

// outSink writes the kept packets to an Output.
type outSink struct {
	mu   sync.Mutex // held while writing a packet
	o    Output
	w    *pcapfile.Writer
	cw   countWriter
	stop func() // ends the capture
	err  error  // the first write error
	full bool   // MaxBytes written: the packets after go to the other sinks only
	n    atomic.Uint64
	errs atomic.Uint64
}

func newOutSink(c Config, stop func()) (*outSink, error) {
	s := &outSink{o: *c.Out, stop: stop}
	s.cw.w = c.Out.W
	var err error
	s.w, err = pcapfile.NewWriter(&s.cw, pcapfile.Options{Format: c.Out.Format, Capture: fileInterface(c, false),
		SnapLen: c.Source.SnapLen, Application: "vrsniff capture"})
	return s, err
}

func (s *outSink) WritePacket(p *mirror.Packet) error {
	// Workers write in turn.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.full {
		return nil // the capture is ending
	}
	err := s.w.WritePacket(p)
	if err == nil && s.o.PacketBuffered {
		err = s.w.Flush()
	}
	switch {
	case errors.Is(err, pcapfile.ErrLinkType):
		s.errs.Add(1)
		return fmt.Errorf("output stream: %w", err)
	case err != nil:
		// The reader is gone (a closed pipe) or the disk full: there is
		// nowhere to write, so the capture ends.
		s.errs.Add(1)
		s.err = err
		s.stop()
		return fmt.Errorf("output stream: %w", err)
	}
	s.n.Add(1)
	if s.o.MaxBytes > 0 && s.cw.n.Load()+int64(s.w.Buffered()) >= s.o.MaxBytes {
		s.full = true
		s.stop()
	}
	return nil
}

// close writes out what is buffered, the header too when no packet came;
// an error is OutputErr's.
func (s *outSink) close() {
	if s.err == nil {
		s.err = s.w.Flush()
	}
}

func (s *outSink) stats() OutputStats {
	return OutputStats{Packets: s.n.Load(), Bytes: uint64(s.cw.n.Load()), Errors: s.errs.Load()}
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// OutputErr returns the error that ended writing to Config.Out (a reader
// that went away, a full disk), nil if none: a capture that ended for it
// ends without the packets that came after. Call it after Run.
func (s *Service) OutputErr() error {
	if s.out == nil || s.out.err == nil {
		return nil
	}
	return fmt.Errorf("output stream: %w", s.out.err)
}

// gate makes Run end once max packets were kept, by all workers together:
// the sinks get the first max packets, the packets after them none.
type gate struct {
	max  int64
	n    atomic.Int64
	stop func()
}

// newGate returns the gate of max packets, nil for no limit.
func newGate(max int64, stop func()) *gate {
	if max <= 0 {
		return nil
	}
	return &gate{max: max, stop: stop}
}

// limit puts one worker's sinks behind the gate. A pipeline calls the
// sinks of a packet in order from its one goroutine: the first sink
// takes the packet's number, which decides for the others.
func (g *gate) limit(sinks []pipeline.Sink) []pipeline.Sink {
	if g == nil || len(sinks) == 0 {
		return sinks
	}
	t := &ticket{g: g}
	out := make([]pipeline.Sink, len(sinks))
	for i, s := range sinks {
		out[i] = gated{t: t, s: s, first: i == 0, last: i == len(sinks)-1}
	}
	return out
}

// ticket is one worker's current packet's number.
type ticket struct {
	g *gate
	n int64
}

type gated struct {
	t           *ticket
	s           pipeline.Sink
	first, last bool
}

func (g gated) WritePacket(p *mirror.Packet) error {
	if g.first {
		g.t.n = g.t.g.n.Add(1)
	}
	if g.t.n > g.t.g.max {
		return nil
	}
	err := g.s.WritePacket(p)
	if g.last && g.t.n == g.t.g.max {
		g.t.g.stop()
	}
	return err
}

// end makes Run return as if its context were done: a limit was reached.
func (s *Service) end() {
	if s.endRun != nil {
		s.endRun()
	}
}
