package pcapfile

import (
	"fmt"
	"io"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// flushAt is the most a Writer buffers before it writes: whole blocks, a
// megabyte at a time.
const flushAt = 1 << 20

// Writer writes packets to a capture file or stream through a buffer of
// its own: an Encoder for callers that want an io.Writer filled in large
// writes. The buffer only ever holds whole records, so whatever reaches the
// underlying writer, on Flush or when the buffer fills, ends on a record
// boundary.
type Writer struct {
	enc Encoder
	w   io.Writer
	buf []byte // 64 KiB, grown to flushAt when more is needed
	err error  // sticky write error
}

// NewWriter returns a Writer that puts the file header (see
// Encoder.AppendHeader) into its buffer; nothing reaches w before the first
// Flush or a full buffer.
func NewWriter(w io.Writer, o Options) (*Writer, error) {
	wr := &Writer{w: w}
	if err := wr.enc.init(o); err != nil {
		return nil, fmt.Errorf("new writer: %w", err)
	}
	wr.buf = wr.enc.AppendHeader(make([]byte, 0, 64<<10))
	return wr, nil
}

// WritePacket writes p as Encoder.Append does, and returns the errors
// Append returns (ErrLinkType) or a write error of an earlier flush. A
// write error is sticky: later calls return it.
func (w *Writer) WritePacket(p *mirror.Packet) error {
	if w.err != nil {
		return w.err
	}
	if n := len(w.buf) + w.enc.SizeHint(p); n > cap(w.buf) {
		switch {
		case cap(w.buf) < flushAt:
			// Grown once, to the full size: a file of a few packets
			// (one of many split by VN pair) never takes it.
			w.buf = append(make([]byte, 0, max(flushAt, n)), w.buf...)
		case len(w.buf) > 0:
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	// The buffer is only assigned once Append returns: a record cut short
	// by a fault on a mapped input is never written.
	b, err := w.enc.Append(w.buf, p)
	w.buf = b
	return err
}

// WriteStats writes an interface statistics block for interface id, as
// Encoder.AppendISB does: nothing for pcap, or for an interface that no
// packet has described yet. It returns a write error of an earlier flush.
func (w *Writer) WriteStats(id int, s InterfaceStats) error {
	if w.err != nil {
		return w.err
	}
	w.buf = w.enc.AppendISB(w.buf, id, s)
	return nil
}

// Buffered returns how many bytes are buffered, not yet written.
func (w *Writer) Buffered() int { return len(w.buf) }

// Flush writes the buffered records to the underlying writer. A write
// error is sticky: later calls return it.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("write capture: %w", err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}
