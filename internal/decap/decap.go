// Package decap turns a capture of raw vRouter mirror traffic into clean
// captures of the mirrored frames: the offline side of vrsniff.
package decap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// Options configure a run.
type Options struct {
	Format     pcapfile.Format
	Nanosecond bool // classic pcap with nanosecond timestamps
	Decoder    mirror.Config
	// Filter selects the packets written; nil keeps every one. It is
	// compiled (filter.New) before the run, so that a bad expression is
	// refused before any output exists.
	Filter *filter.Filter
	// Out receives the decoded capture, unless Split is set: then one file
	// per VN pair (vnpair.Label, plus the format's extension) is written
	// into the directory Dir.
	Out   io.Writer
	Split vnpair.Split
	Dir   string
	// Rejects, if set, receives every packet that failed to decode, as
	// captured, with the reason in a comment.
	Rejects io.Writer
	// Progress, if set, gets a progress line every second.
	Progress io.Writer
	Size     int64 // input size for the progress line; 0 if unknown
	// MaxInterfaces bounds the distinct interfaces a pcapng input may
	// describe (see pcapfile.Reader.MaxInterfaces); 0 keeps the Reader's.
	MaxInterfaces int
	// PacketBuffered writes the single output out after every packet, as
	// tcpdump -U does, so that a reader at the other end of a pipe (e.g.
	// wireshark -k -i -) sees each packet as it is decoded.
	PacketBuffered bool
	// MaxPackets, if positive, ends the run once that many packets were
	// written, as tcpdump -c does: a run that is done, not interrupted.
	MaxPackets int64

	// Set by RunFiles: what the split files must not be written over.
	in          os.FileInfo
	inName      string
	rejectsPath string
}

// Files names what RunFiles reads and writes.
type Files struct {
	In  string // a capture file; "-" is standard input
	Out string // the output file, "-" for standard output; with Options.Split, a directory
	// Rejects, if not empty, is the file that gets the packets that failed
	// to decode.
	Rejects string
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

// RunFiles decodes the file f.In into f.Out (and f.Rejects) without ever
// losing data on the way:
//
//   - an output that is the input (the same path, a hard link, a symbolic
//     link to it; also an output that is another output) is refused with a
//     *SameFileError before anything is opened for writing;
//   - an output file is written under a temporary name in its directory
//     and renamed over its name at the end. A run that ends in a damaged
//     input (a *pcapfile.FormatError) keeps what was decoded before the
//     damage: its outputs are put in place. A run that fails otherwise (a
//     write error such as a full disk, an interruption) removes its
//     temporary files: existing outputs are left as they were, and no new
//     ones appear;
//   - "-" streams to standard output as it goes, and an existing output
//     that is not a regular file (/dev/null, a FIFO) is written directly.
//
// The split files of Options.Split follow the same rule, each on its own.
func RunFiles(ctx context.Context, f Files, o Options) (*pipeline.Stats, error) {
	stats := &pipeline.Stats{}
	var r *pcapfile.Reader
	var err error
	if f.In == "-" {
		o.in, _ = os.Stdin.Stat()
		r, err = pcapfile.NewReader(os.Stdin)
	} else {
		var c io.Closer
		r, c, err = pcapfile.Open(f.In)
		if err == nil {
			defer c.Close()
			if o.in, err = os.Stat(f.In); err == nil {
				o.Size = o.in.Size()
			}
		}
	}
	if err != nil {
		return stats, err
	}
	inName := f.In
	if f.In == "-" {
		inName = "standard input"
	}
	input := "input " + inName
	o.inName = input
	same := func(out string) bool {
		st, err := os.Stat(out)
		return err == nil && o.in != nil && os.SameFile(st, o.in)
	}
	var outputs []*output // removed unless committed
	defer func() {
		for _, w := range outputs {
			if w != nil {
				w.abort()
			}
		}
	}()
	switch {
	case o.Split != vnpair.None:
		o.Dir = f.Out
	case f.Out == "-":
		if st, err := os.Stdout.Stat(); err == nil && o.in != nil && os.SameFile(st, o.in) {
			return stats, &SameFileError{Output: "output (standard output)", Other: input}
		}
		o.Out = os.Stdout
	case same(f.Out):
		return stats, &SameFileError{Output: "output " + f.Out, Other: input}
	}
	if f.Rejects != "" {
		if same(f.Rejects) {
			return stats, &SameFileError{Output: "rejects file " + f.Rejects, Other: input}
		}
		if o.Split == vnpair.None && f.Out != "-" && samePath(f.Rejects, f.Out) {
			return stats, &SameFileError{Output: "rejects file " + f.Rejects, Other: "output " + f.Out}
		}
		o.rejectsPath = f.Rejects
	}
	// Every check is done: only now is anything created.
	var out, rej *output
	if o.Split == vnpair.None && f.Out != "-" {
		if out, err = createOutput(f.Out, true); err != nil {
			return stats, err
		}
		outputs = append(outputs, out)
		o.Out = out
	}
	if f.Rejects != "" {
		if rej, err = createOutput(f.Rejects, true); err != nil {
			return stats, err
		}
		outputs = append(outputs, rej)
		o.Rejects = rej
	}
	stats, err = RunReader(ctx, r, o)
	if !keepOutput(err) {
		if errors.Is(err, ErrInterrupted) || o.Split != vnpair.None {
			if len(outputs) > 0 || o.Split != vnpair.None {
				err = fmt.Errorf("%w (no output file written; existing ones left as they were)", err)
			}
			return stats, err
		}
		// A write failed (a full disk): a file that replaces nothing is
		// kept, cut after its last complete record, so that what was
		// written is readable; an existing one is left as it was.
		var kept []string
		for i, w := range outputs {
			if w.replace || w.tmp == "" || w.cutToLastRecord() != nil || w.commit() != nil {
				continue
			}
			kept = append(kept, w.name)
			outputs[i] = nil
		}
		if len(kept) > 0 {
			return stats, fmt.Errorf("%w (%s cut after the last complete record; existing files left as they were)", err, strings.Join(kept, ", "))
		}
		if len(outputs) > 0 {
			err = fmt.Errorf("%w (no output file written; existing ones left as they were)", err)
		}
		return stats, err
	}
	if err != nil {
		err = fmt.Errorf("%s: %w (everything before it was written)", inName, err)
	}
	for _, w := range outputs {
		if cerr := w.commit(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	outputs = nil
	return stats, err
}

// keepOutput reports whether a run that ended with err keeps its output:
// after a clean run, or one that stopped at damaged input (everything
// before the damage was decoded, and is what the input holds); not after a
// write error or an interruption.
func keepOutput(err error) bool {
	if err == nil {
		return true
	}
	if errs, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range errs.Unwrap() {
			if !keepOutput(e) {
				return false
			}
		}
		return true
	}
	var fe *pcapfile.FormatError
	return errors.As(err, &fe)
}

// ErrInterrupted ends a run whose context was cancelled (SIGINT, SIGTERM).
var ErrInterrupted = errors.New("interrupted")

// RunReader is Run on an open capture (see pcapfile.Open). The files of
// Options.Split follow RunFiles's rule: put in place after a clean run or
// damaged input, removed after any other error.
func RunReader(ctx context.Context, r *pcapfile.Reader, o Options) (*pipeline.Stats, error) {
	stats := &pipeline.Stats{}
	// Refused before an output exists.
	if err := o.Decoder.Traffic.Validate(); err != nil {
		return stats, err
	}
	if o.MaxInterfaces > 0 {
		r.MaxInterfaces = o.MaxInterfaces
	}
	// Each output interface is named after the input interface its
	// packets came from.
	wo := pcapfile.Options{Format: o.Format, Nanosecond: o.Nanosecond, Application: "vrsniff decap", Interfaces: r}
	var out pipeline.Sink
	var single flushCloser
	var split *splitSink
	if o.Split != vnpair.None {
		var err error
		if split, err = newSplitSink(o.Dir, o.Split, wo); err != nil {
			return stats, err
		}
		split.in, split.inName, split.avoid = o.in, o.inName, o.rejectsPath
		out = split
	} else {
		aw := newAsyncWriter(o.Out)
		aw.region = r.Mapped()
		w, err := pcapfile.NewRefWriter(aw, wo)
		if err != nil {
			aw.Close()
			return stats, err
		}
		// Frames in the mapped input go out by reference, not copied.
		w.Refer(r.Mapped())
		single = flushCloser{w, aw}
		out = single
		if o.PacketBuffered {
			out = packetFlusher{single.RefWriter}
		}
	}
	var rejects *pcapfile.Writer
	if o.Rejects != nil {
		var err error
		rejects, err = pcapfile.NewWriter(o.Rejects, pcapfile.Options{Format: pcapfile.FormatRaw, Application: "vrsniff decap", Interfaces: r})
		if err != nil {
			if split != nil {
				split.finish(false)
			}
			return stats, err
		}
	}
	if o.MaxPackets > 0 {
		out = &limitSink{Sink: out, left: o.MaxPackets}
	}
	pl, err := newPipeline(r, o, out, rejects, stats)
	if err != nil {
		if split != nil {
			split.finish(false)
		}
		return stats, err
	}
	stop := progress(o.Progress, stats, o.Size)
	// A mapped input that shrinks under the run ends it with an error, not
	// a SIGBUS; the writers then drop the packet they were writing.
	runErr := r.Guard(func() error { return pl.Run(ctx) })
	stop()
	if errors.Is(runErr, errLimit) {
		// The pipeline counted the end as a failed write; it was none.
		runErr = nil
		stats.SinkErrs.Add(^uint64(0))
	}
	if ctx.Err() != nil {
		runErr = errors.Join(runErr, ErrInterrupted)
	}
	var closeErr error
	if split != nil {
		closeErr = split.flush()
	} else {
		closeErr = single.Close()
	}
	if rejects != nil {
		closeErr = errors.Join(closeErr, rejects.Flush())
	}
	err = errors.Join(runErr, closeErr)
	if split != nil {
		err = errors.Join(err, split.finish(keepOutput(err)))
	}
	return stats, err
}

// newPipeline connects r to out and, if not nil, to rejects: only then
// does the decoder keep copies of the fragments it holds.
func newPipeline(r *pcapfile.Reader, o Options, out pipeline.Sink, rejects *pcapfile.Writer, stats *pipeline.Stats) (*pipeline.Pipeline, error) {
	c := pipeline.Config{
		Source:  r,
		Decoder: o.Decoder,
		Filter:  o.Filter,
		Sinks:   []pipeline.Sink{out},
		Stats:   stats,
		SinkError: func(err error) error {
			// Pass-through packets of another link type cannot go into a
			// classic pcap file; they are counted, the rest goes on.
			if errors.Is(err, pcapfile.ErrLinkType) {
				return nil
			}
			return err // errLimit too: the run is done
		},
	}
	if rejects != nil {
		c.Rejects = rejects
	}
	return pipeline.New(c)
}

// errLimit is what limitSink returns once the last packet is written: it
// ends the pipeline.
var errLimit = errors.New("packet limit reached")

// limitSink passes packets on until left is 0, then ends the run.
type limitSink struct {
	pipeline.Sink
	left int64
}

func (l *limitSink) WritePacket(p *mirror.Packet) error {
	if err := l.Sink.WritePacket(p); err != nil {
		return err
	}
	if l.left--; l.left == 0 {
		return errLimit
	}
	return nil
}

type flushCloser struct {
	*pcapfile.RefWriter
	a *asyncWriter
}

func (f flushCloser) Close() error { return errors.Join(f.Flush(), f.a.Close()) }

func ext(f pcapfile.Format) string {
	if f == pcapfile.FormatPcap {
		return ".pcap"
	}
	return ".pcapng"
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

// packetFlusher writes each packet out as soon as it is encoded.
type packetFlusher struct{ w *pcapfile.RefWriter }

func (f packetFlusher) WritePacket(p *mirror.Packet) error {
	if err := f.w.WritePacket(p); err != nil {
		return err
	}
	return f.w.Flush()
}
