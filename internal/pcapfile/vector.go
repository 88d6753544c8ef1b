package pcapfile

import (
	"fmt"
	"unsafe"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// VectorWriter is the destination of a RefWriter: it takes the filled
// buffer over instead of having it copied, e.g. to write it on another
// goroutine. vec lists, in file order, what to write: pieces of buf and the
// frames the RefWriter referred to instead of copying them; write it with
// writev(2). It owns buf and vec until it hands back empty ones.
type VectorWriter interface {
	WriteVector(buf []byte, vec [][]byte) (nextBuf []byte, nextVec [][]byte, err error)
}

// minRefer is the smallest frame worth referring to: below it the copy is
// cheaper than one more I/O vector.
const minRefer = 128

// maxVec bounds the I/O vectors gathered before a flush.
const maxVec = 8192

// RefWriter writes packets as a Writer does, but frames inside a region
// whose bytes stay put until the VectorWriter has written everything
// handed to it (a mapped input file, see Refer) are written by reference: the record's headers and comment are
// encoded into the buffer, the frame is handed to the VectorWriter where it
// lies. For decap that saves copying every frame once more in user space.
type RefWriter struct {
	enc    Encoder
	dst    VectorWriter
	region []byte
	buf    []byte
	err    error // sticky write error

	// vec holds, in file order, pieces of buf and frames inside region;
	// buf[cut:] is not in vec yet. A piece of buf may be of an array
	// that buf outgrew since, and lack what was patched in afterwards (a
	// block's length): Flush takes the pieces from buf as it is then.
	vec [][]byte
	cut int

	// The record being written, so that one left unfinished by a fault on
	// the mapped input (see Reader.Guard) is dropped rather than written.
	open             bool
	markVec, markCut int
}

// NewRefWriter returns a RefWriter that puts the file header (see
// Encoder.AppendHeader) into its buffer; nothing reaches dst before the
// first Flush or a full buffer. Until Refer is called it copies every
// frame.
func NewRefWriter(dst VectorWriter, o Options) (*RefWriter, error) {
	w := &RefWriter{dst: dst}
	if err := w.enc.init(o); err != nil {
		return nil, fmt.Errorf("new ref writer: %w", err)
	}
	w.buf = w.enc.AppendHeader(make([]byte, 0, flushAt))
	return w, nil
}

// Refer declares that region's bytes stay valid and unchanged until the
// VectorWriter has written the vectors of the RefWriter's last Flush, as a
// mapped input file's do: frames inside it
// are then written by reference.
func (w *RefWriter) Refer(region []byte) {
	w.region = region
}

func (w *RefWriter) referable(data []byte) bool {
	return len(data) >= minRefer && w.inRegion(data)
}

// inRegion reports whether data lies inside the region.
func (w *RefWriter) inRegion(data []byte) bool {
	if len(w.region) == 0 {
		return false
	}
	d, r := uintptr(unsafe.Pointer(unsafe.SliceData(data))), uintptr(unsafe.Pointer(unsafe.SliceData(w.region)))
	return d >= r && d+uintptr(len(data)) <= r+uintptr(len(w.region))
}

// refer appends data to the file by reference, after buf, the record
// being encoded.
func (w *RefWriter) refer(buf, data []byte) {
	if w.cut < len(buf) {
		w.vec = append(w.vec, buf[w.cut:len(buf):len(buf)])
	}
	w.vec = append(w.vec, data)
	w.cut = len(buf)
}

// WritePacket writes p as Encoder.Append does, and returns the errors
// Append returns (ErrLinkType) or a write error of an earlier flush.
func (w *RefWriter) WritePacket(p *mirror.Packet) error {
	if w.err != nil {
		return w.err
	}
	w.dropOpen()
	if (len(w.buf) > 0 && len(w.buf)+w.enc.SizeHint(p) > cap(w.buf)) || len(w.vec) >= maxVec {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	w.open, w.markVec, w.markCut = true, len(w.vec), w.cut
	b, err := w.enc.append(w.buf, p, w)
	w.buf, w.open = b, false
	return err
}

// dropOpen drops the references of a record whose writing was cut short by
// a fault (see Reader.Guard); its bytes never reached buf.
func (w *RefWriter) dropOpen() {
	if !w.open {
		return
	}
	clear(w.vec[w.markVec:])
	w.vec, w.cut, w.open = w.vec[:w.markVec], w.markCut, false
}

// Flush hands the buffered records to the VectorWriter. A write error is
// sticky: later calls return it.
func (w *RefWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.dropOpen()
	if len(w.buf) == 0 {
		return nil
	}
	off := 0
	for i, v := range w.vec {
		if !w.inRegion(v) {
			w.vec[i] = w.buf[off : off+len(v) : off+len(v)]
			off += len(v)
		}
	}
	if w.cut < len(w.buf) {
		w.vec = append(w.vec, w.buf[w.cut:len(w.buf):len(w.buf)])
	}
	buf, vec, err := w.dst.WriteVector(w.buf, w.vec)
	w.buf, w.vec, w.cut = buf[:0], vec[:0], 0
	if err != nil {
		w.err = fmt.Errorf("write capture: %w", err)
	}
	return w.err
}
