package decap

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// asyncWriter hands writes to a goroutine, so that the write system calls
// (half of decap's time on a page-cached file) run on another core while
// the next packets are decoded. The pcapfile.RefWriter passes its filled
// buffer over, with the frames it referred to in the mapped input
// (WriteVector, written with writev(2) to a file), and gets recycled ones
// back, so nothing is copied. The first error is
// returned by a later call or by Close.
//
// A frame referred to in the mapped input can no longer be read once the
// input file shrank under the run (see pcapfile.Open): writev then fails
// with EFAULT part way. The output file is cut back to where that buffer
// began, so that it still ends on a whole block (the packets of that
// buffer, at most a megabyte, are lost), and the error is a
// pcapfile.FormatError with pcapfile.ErrShrunk, like the Reader's.
type asyncWriter struct {
	w      io.Writer
	region []byte // the mapped input, for the offset of a frame lost from it
	fd     int    // -1 unless w is a file: then vectors go out with writev
	work   chan job
	free   chan job
	done   chan struct{}
	mu     sync.Mutex
	err    error
}

type job struct {
	buf []byte
	vec [][]byte // nil: write buf (from Write)
}

const (
	asyncBuffers = 4
	asyncBufSize = 1 << 20 // the size pcapfile.RefWriter flushes at
	iovMax       = 1024    // IOV_MAX on Linux
)

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{w: w, fd: -1, work: make(chan job, asyncBuffers), free: make(chan job, asyncBuffers), done: make(chan struct{})}
	// A file, or a type around one (an output written under a temporary
	// name).
	if f, ok := w.(interface{ Fd() uintptr }); ok {
		a.fd = int(f.Fd())
	}
	for range asyncBuffers {
		a.free <- job{buf: make([]byte, 0, asyncBufSize)}
	}
	go a.loop()
	return a
}

func (a *asyncWriter) loop() {
	defer close(a.done)
	// Reading a frame of an input that shrank faults here when w is not a
	// file; writeVector turns that into an error.
	debug.SetPanicOnFault(true)
	for j := range a.work {
		if a.error() == nil {
			var err error
			if j.vec == nil {
				_, err = a.w.Write(j.buf)
			} else {
				err = a.writeVector(j.vec)
			}
			if err != nil {
				a.mu.Lock()
				a.err = err
				a.mu.Unlock()
			}
		}
		clear(j.vec) // drop the references into the input
		a.free <- job{buf: j.buf[:0], vec: j.vec[:0]}
	}
}

func (a *asyncWriter) writeVector(vec [][]byte) (err error) {
	if a.fd < 0 {
		defer func() {
			if v := recover(); v != nil {
				f, ok := v.(interface{ Addr() uintptr })
				if !ok {
					panic(v)
				}
				err = a.lost(f.Addr(), "")
			}
		}()
		for _, b := range vec {
			if _, err := a.w.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	// Where this buffer starts, to cut a part-written one back to; -1 when
	// the output cannot seek (a pipe).
	start, serr := unix.Seek(a.fd, 0, io.SeekCurrent)
	if serr != nil {
		start = -1
	}
	for len(vec) > 0 {
		chunk := vec[:min(len(vec), iovMax)]
		n, err := unix.Writev(a.fd, chunk)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EFAULT {
			if start >= 0 && unix.Ftruncate(a.fd, start) == nil {
				unix.Seek(a.fd, start, io.SeekStart)
				return a.lost(uintptr(unsafe.Pointer(unsafe.SliceData(vec[0]))), "; the output ends with the buffer before it")
			}
			return &os.PathError{Op: "writev", Path: "output", Err: a.lost(0, "")}
		}
		if err != nil {
			return &os.PathError{Op: "writev", Path: "output", Err: err}
		}
		// Skip what was written; a short write leaves part of a vector.
		for n > 0 && len(vec) > 0 {
			if n >= len(vec[0]) {
				n -= len(vec[0])
				vec = vec[1:]
			} else {
				vec[0] = vec[0][n:]
				n = 0
			}
		}
	}
	return nil
}

// lost is the error for a frame of the input that could not be read at
// address addr: a FormatError at its offset in the input when it lies in
// the mapped input.
func (a *asyncWriter) lost(addr uintptr, note string) error {
	err := fmt.Errorf("%w: a frame could not be read to be written%s", pcapfile.ErrShrunk, note)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(a.region)))
	if addr < base || addr-base >= uintptr(len(a.region)) {
		return err
	}
	return &pcapfile.FormatError{Offset: int64(addr - base), What: "mapped input", Err: err}
}

func (a *asyncWriter) error() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *asyncWriter) Write(p []byte) (int, error) {
	if err := a.error(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		j := <-a.free
		k := min(len(p), cap(j.buf))
		a.work <- job{buf: append(j.buf, p[:k]...)}
		p = p[k:]
	}
	return n, nil
}

// WriteVector queues vec, whose pieces live in buf and in the mapped input,
// and returns a free buffer and vector.
func (a *asyncWriter) WriteVector(buf []byte, vec [][]byte) ([]byte, [][]byte, error) {
	if err := a.error(); err != nil {
		return buf, vec, err
	}
	a.work <- job{buf: buf, vec: vec}
	j := <-a.free
	return j.buf, j.vec, nil
}

// Close waits for every write to finish; it does not close the underlying
// writer.
func (a *asyncWriter) Close() error {
	close(a.work)
	<-a.done
	return a.error()
}
