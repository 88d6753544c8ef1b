// Package pipeline moves packets from a source through the decoder and the
// filter to the sinks, counting everything on the way. It is the one loop
// behind both the offline decoder and the live capture.
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

// Pipeline wires a source to sinks.
type Pipeline struct {
	Source  Source
	Decoder *mirror.Decoder
	Filter  *filter.Filter // nil keeps everything
	Sinks   []Sink         // decoded packets that passed the filter
	Rejects Sink           // packets that failed to decode, with their original bytes; may be nil
	Stats   *Stats
	// SinkError decides what a sink's error means: return nil to count it
	// and go on, or an error to stop. Nil stops on every error.
	SinkError func(error) error
}

// Run reads the source until it ends, the context is done or a sink fails
// for good. Fragments still held at the end are handed to Rejects. It
// returns nil at the end of the input.
func (pl *Pipeline) Run(ctx context.Context) error {
	var p mirror.Packet
	var err error
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			break
		}
		if err = pl.Source.Next(&p); err != nil {
			break
		}
		if err = pl.Process(&p); err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	var ferr error
	pl.Decoder.Flush(func(f *mirror.Packet) {
		if e := pl.reject(f); e != nil && ferr == nil {
			ferr = e
		}
	})
	pl.Stats.SetHints(pl.Decoder.Hints())
	return errors.Join(err, ferr)
}

// hintEvery is how often, in packets, the decoder's hints are copied
// into Stats for other goroutines (a power of two).
const hintEvery = 1 << 16

// Process handles one packet from the source; a caller with its own loop
// (e.g. a live capture with several outputs) may use it directly.
func (pl *Pipeline) Process(p *mirror.Packet) error {
	s := pl.Stats
	if s.Read.Add(1)&(hintEvery-1) == 0 {
		s.SetHints(pl.Decoder.Hints())
	}
	s.ReadBytes.Add(uint64(len(p.Data)))
	if p.TimeClamped {
		s.TimeClamped.Add(1)
	}
	var err error
	switch pl.Decoder.Decode(p) {
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
	pl.Decoder.Expire(p.Timestamp, func(f *mirror.Packet) {
		if e := pl.reject(f); e != nil && err == nil {
			err = e
		}
	})
	return err
}

func (pl *Pipeline) merged(p *mirror.Packet) {
	if p.Fragments > 1 {
		pl.Stats.Merged.Add(uint64(p.Fragments - 1))
	}
}

func (pl *Pipeline) deliver(p *mirror.Packet) error {
	s := pl.Stats
	s.Decoded[p.Mode].Add(1)
	if p.Meta.Overlay != mirror.OverlayNone {
		s.Overlays[p.Meta.Overlay].Add(1)
	}
	if p.Truncated {
		s.Truncated.Add(1)
	}
	if m := &p.Meta; m.SrcVN != nil || m.DstVN != nil {
		s.CountPair(m.SrcVN, m.DstVN)
	}
	if !pl.Filter.Match(p) {
		s.Filtered.Add(1)
		return nil
	}
	s.Written.Add(1)
	for _, k := range pl.Sinks {
		if err := k.WritePacket(p); err != nil {
			if err = pl.sinkError(err); err != nil {
				return err
			}
		}
	}
	return nil
}

func (pl *Pipeline) reject(p *mirror.Packet) error {
	pl.Stats.Malformed[p.Err].Add(1)
	if pl.Rejects == nil {
		return nil
	}
	if err := pl.Rejects.WritePacket(p); err != nil {
		return pl.sinkError(fmt.Errorf("rejects: %w", err))
	}
	return nil
}

func (pl *Pipeline) sinkError(err error) error {
	pl.Stats.SinkErrs.Add(1)
	if pl.SinkError == nil {
		return err
	}
	return pl.SinkError(err)
}
