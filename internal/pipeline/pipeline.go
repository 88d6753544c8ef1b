// Package pipeline moves packets from a source through the decoder and the
// filter to the sinks, counting everything on the way. It is the one loop
// behind the offline decoder (decap), the live capture and Wireshark's
// local interface (extcap), and New the one place that builds their
// decoder.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Source yields captured packets: it fills the source fields of p. The
// bytes stay valid until the next call. io.EOF ends the input.
type Source interface {
	Next(p *mirror.Packet) error
}

// Sink receives packets. The packet and its slices are valid only during
// the call.
type Sink interface {
	WritePacket(p *mirror.Packet) error
}

// Config says what a Pipeline connects.
type Config struct {
	Source  Source
	Decoder mirror.Config  // Reassembly.DiscardRaw is New's to set
	Filter  *filter.Filter // nil keeps everything
	Sinks   []Sink         // decoded packets that passed the filter
	// Rejects receives the packets that failed to decode, with their
	// original bytes; nil drops them (they are counted). A nil pointer
	// of a concrete type is not nil here: leave the field unset instead.
	Rejects Sink
	Stats   *Stats // the counters; nil: new ones (see Pipeline.Stats)
	// SinkError decides what a sink's error means: return nil to count it
	// and go on, or an error to stop. Nil stops on every error.
	SinkError func(error) error
}

// Pipeline wires a source through a decoder and a filter to sinks. Build
// it with New.
type Pipeline struct {
	src       Source
	dec       *mirror.Decoder
	filter    *filter.Filter
	sinks     []Sink
	rejects   Sink
	stats     *Stats
	onSinkErr func(error) error
}

// New builds a Pipeline and its decoder. The decoder keeps a copy of each
// outer IP fragment it holds for reassembly if and only if c.Rejects is
// set: the fragments of a datagram that never completes are handed to
// Rejects with their bytes, and without Rejects nothing would read them
// (mirror.ReassemblyConfig.DiscardRaw). The error is c.Decoder's traffic
// being invalid (mirror.Traffic.Validate) or a missing source.
func New(c Config) (*Pipeline, error) {
	if c.Source == nil {
		return nil, errors.New("pipeline: no source")
	}
	if err := c.Decoder.Traffic.Validate(); err != nil {
		return nil, err
	}
	if c.Stats == nil {
		c.Stats = &Stats{}
	}
	dc := c.Decoder
	dc.Reassembly.DiscardRaw = c.Rejects == nil
	return &Pipeline{
		src: c.Source, dec: mirror.NewDecoder(dc), filter: c.Filter, sinks: c.Sinks, rejects: c.Rejects,
		stats: c.Stats, onSinkErr: c.SinkError,
	}, nil
}

// Stats returns the pipeline's counters; other goroutines may read them
// while it runs.
func (pl *Pipeline) Stats() *Stats { return pl.stats }

// FragmentCopies reports whether the decoder keeps copies of the outer
// fragments it holds, that is whether the pipeline has a rejects sink.
func (pl *Pipeline) FragmentCopies() bool { return pl.rejects != nil }

// Run reads the source until it ends, the context is done or a sink fails
// for good. Fragments still held at the end are handed to the rejects
// sink. It
// returns nil at the end of the input.
func (pl *Pipeline) Run(ctx context.Context) error {
	var p mirror.Packet
	var err error
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			break
		}
		if err = pl.src.Next(&p); err != nil {
			break
		}
		if err = pl.process(&p); err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	var ferr error
	pl.dec.Flush(func(f *mirror.Packet) {
		if e := pl.reject(f); e != nil && ferr == nil {
			ferr = e
		}
	})
	pl.stats.SetHints(pl.dec.Hints())
	return errors.Join(err, ferr)
}

// hintEvery is how often, in packets, the decoder's hints are copied
// into Stats for other goroutines (a power of two).
const hintEvery = 1 << 16

// process handles one packet from the source.
func (pl *Pipeline) process(p *mirror.Packet) error {
	s := pl.stats
	if s.Read.Add(1)&(hintEvery-1) == 0 {
		s.SetHints(pl.dec.Hints())
	}
	s.ReadBytes.Add(uint64(len(p.Data)))
	s.LastPacket.Store(p.Timestamp.UnixNano())
	if p.TimeClamped {
		s.TimeClamped.Add(1)
	}
	var err error
	switch pl.dec.Decode(p) {
	case mirror.Held:
	case mirror.Merged:
		s.Merged.Add(1)
	case mirror.Duplicate:
		s.Duplicates.Add(1)
	case mirror.Failed:
		pl.merged(p)
		err = pl.reject(p)
	case mirror.Decoded:
		pl.merged(p)
		err = pl.deliver(p)
	}
	pl.dec.Expire(p.Timestamp, func(f *mirror.Packet) {
		if e := pl.reject(f); e != nil && err == nil {
			err = e
		}
	})
	return err
}

func (pl *Pipeline) merged(p *mirror.Packet) {
	if p.Fragments > 1 {
		pl.stats.Merged.Add(uint64(p.Fragments - 1))
	}
}

func (pl *Pipeline) deliver(p *mirror.Packet) error {
	s := pl.stats
	s.Decoded[p.Mode].Add(1)
	if p.Meta.Overlay != mirror.OverlayNone {
		s.Overlays[p.Meta.Overlay].Add(1)
	}
	if p.Truncated {
		s.Truncated.Add(1)
	}
	if m := &p.Meta; m.SrcVN != nil || m.DstVN != nil {
		s.CountPairBytes(m.SrcVN, m.DstVN, max(p.FrameLen, len(p.Frame)))
	}
	if !pl.filter.Match(p) {
		s.Filtered.Add(1)
		return nil
	}
	s.Written.Add(1)
	for _, k := range pl.sinks {
		if err := k.WritePacket(p); err != nil {
			if err = pl.sinkError(err); err != nil {
				return err
			}
		}
	}
	return nil
}

func (pl *Pipeline) reject(p *mirror.Packet) error {
	pl.stats.Malformed[p.Err].Add(1)
	if pl.rejects == nil {
		return nil
	}
	if err := pl.rejects.WritePacket(p); err != nil {
		return pl.sinkError(fmt.Errorf("rejects: %w", err))
	}
	return nil
}

func (pl *Pipeline) sinkError(err error) error {
	pl.stats.SinkErrs.Add(1)
	if pl.onSinkErr == nil {
		return err
	}
	return pl.onSinkErr(err)
}
