// Package decap turns a capture of raw vRouter mirror traffic into clean
// captures of the mirrored frames: the offline side of vrsniff.
package decap

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
)

// Options configure a run.
type Options struct {
	Format     pcapfile.Format
	Nanosecond bool // classic pcap with nanosecond timestamps
	Decoder    mirror.Config
	Filter     filter.Options
	// Out receives the decoded capture, unless SplitDir is set: then one
	// file per VN pair is written in that directory.
	Out      io.Writer
	SplitDir string
	// Rejects, if set, receives every packet that failed to decode, as
	// captured, with the reason in a comment.
	Rejects io.Writer
	// Progress, if set, gets a progress line every second.
	Progress io.Writer
	Size     int64 // input size for the progress line; 0 if unknown
	// MaxInterfaces bounds the distinct interfaces a pcapng input may
	// describe (see pcapfile.Reader.MaxInterfaces); 0 keeps the Reader's.
	MaxInterfaces int
}

// Run decodes in according to o. It returns the counters even on error;
// whatever was decoded before an error in the input has been written and
// flushed.
func Run(ctx context.Context, in io.Reader, o Options) (*pipeline.Stats, error) {
	r, err := pcapfile.NewReader(in)
	if err != nil {
		return &pipeline.Stats{}, err
	}
	return RunReader(ctx, r, o)
}

// RunReader is Run on an open capture (see pcapfile.Open).
func RunReader(ctx context.Context, r *pcapfile.Reader, o Options) (*pipeline.Stats, error) {
	stats := &pipeline.Stats{}
	flt, err := filter.New(o.Filter)
	if err != nil {
		return stats, err
	}
	if o.MaxInterfaces > 0 {
		r.MaxInterfaces = o.MaxInterfaces
	}
	// Each output interface is named after the input interface its
	// packets came from.
	wo := pcapfile.Options{Format: o.Format, Nanosecond: o.Nanosecond, Application: "vrsniff decap", Interfaces: r}
	var out interface {
		pipeline.Sink
		Close() error
	}
	if o.SplitDir != "" {
		if err := os.MkdirAll(o.SplitDir, 0o755); err != nil {
			return stats, err
		}
		out = &splitSink{dir: o.SplitDir, opts: wo, files: map[string]map[string]*splitFile{}}
	} else {
		aw := newAsyncWriter(o.Out)
		w, err := pcapfile.NewWriter(aw, wo)
		if err != nil {
			aw.Close()
			return stats, err
		}
		// Frames in the mapped input go out by reference, not copied.
		w.Refer(r.Mapped())
		out = flushCloser{w, aw}
	}
	dc := o.Decoder
	dc.Reassembly.DiscardRaw = o.Rejects == nil
	pl := &pipeline.Pipeline{
		Source:  r,
		Decoder: mirror.NewDecoder(dc),
		Filter:  flt,
		Sinks:   []pipeline.Sink{out},
		Stats:   stats,
		SinkError: func(err error) error {
			// Pass-through packets of another link type cannot go into a
			// classic pcap file; they are counted, the rest goes on.
			if errors.Is(err, pcapfile.ErrLinkType) {
				return nil
			}
			return err
		},
	}
	var rejects *pcapfile.Writer
	if o.Rejects != nil {
		rejects, err = pcapfile.NewWriter(o.Rejects, pcapfile.Options{Format: pcapfile.FormatRaw, Application: "vrsniff decap", Interfaces: r})
		if err != nil {
			return stats, err
		}
		pl.Rejects = rejects
	}
	stop := progress(o.Progress, stats, o.Size)
	// A mapped input that shrinks under the run ends it with an error, not
	// a SIGBUS; the writers then drop the packet they were writing.
	runErr := r.Guard(func() error { return pl.Run(ctx) })
	stop()
	closeErr := out.Close()
	if rejects != nil {
		closeErr = errors.Join(closeErr, rejects.Flush())
	}
	return stats, errors.Join(runErr, closeErr)
}

type flushCloser struct {
	*pcapfile.Writer
	a *asyncWriter
}

func (f flushCloser) Close() error { return errors.Join(f.Flush(), f.a.Close()) }

// splitSink writes one file per (source VN, destination VN) pair.
type splitSink struct {
	dir   string
	opts  pcapfile.Options
	files map[string]map[string]*splitFile
	n     int
}

type splitFile struct {
	f *os.File
	w *pcapfile.Writer
}

// maxSplitFiles bounds the open files; VN pairs are few in practice, a
// capture with more is not what --split-by was meant for.
const maxSplitFiles = 1000

func (s *splitSink) WritePacket(p *mirror.Packet) error {
	inner := s.files[string(p.Meta.SrcVN)]
	if inner == nil {
		inner = map[string]*splitFile{}
		s.files[string(p.Meta.SrcVN)] = inner
	}
	sf := inner[string(p.Meta.DstVN)]
	if sf == nil {
		if s.n >= maxSplitFiles {
			return fmt.Errorf("more than %d VN pairs", maxSplitFiles)
		}
		name := filepath.Join(s.dir, PairFileName(string(p.Meta.SrcVN), string(p.Meta.DstVN))+ext(s.opts.Format))
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		w, err := pcapfile.NewWriter(f, s.opts)
		if err != nil {
			f.Close()
			return err
		}
		sf = &splitFile{f, w}
		inner[string(p.Meta.DstVN)] = sf
		s.n++
	}
	return sf.w.WritePacket(p)
}

func (s *splitSink) Close() error {
	var errs []error
	for _, inner := range s.files {
		for _, sf := range inner {
			errs = append(errs, sf.w.Flush(), sf.f.Close())
		}
	}
	return errors.Join(errs...)
}

func ext(f pcapfile.Format) string {
	if f == pcapfile.FormatPcap {
		return ".pcap"
	}
	return ".pcapng"
}

// PairFileName is the file name stem for a VN pair: each name with its
// unsafe characters replaced, joined by "__"; a missing side is "none".
func PairFileName(src, dst string) string {
	return Slug(src) + "__" + Slug(dst)
}

// maxSlug keeps two slugs and an extension within a file name's 255 bytes.
const maxSlug = 100

// Slug makes a VN name safe as part of a file name. A long name is cut and
// marked with a hash of the whole, so that names stay distinct.
func Slug(vn string) string {
	if vn == "" {
		return "none"
	}
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, vn)
	if len(s) > maxSlug {
		h := fnv.New32a()
		h.Write([]byte(vn))
		s = fmt.Sprintf("%s-%08x", s[:maxSlug-9], h.Sum32())
	}
	return s
}

func progress(w io.Writer, s *pipeline.Stats, size int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				// The reader's own offset is not safe to read from here;
				// the captured bytes are close enough for a progress line.
				off := s.ReadBytes.Load()
				line := fmt.Sprintf("\r%d packets, %d decoded, %.1f MB/s", s.Read.Load(), s.Written.Load(),
					float64(off)/1e6/time.Since(start).Seconds())
				if size > 0 {
					line += fmt.Sprintf(", %.0f%%", 100*float64(off)/float64(size))
				}
				fmt.Fprint(w, line+"\033[K")
			}
		}
	}()
	return func() { close(done); <-finished }
}
