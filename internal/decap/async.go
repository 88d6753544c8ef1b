package decap

import (
	"io"
	"sync"
)

// asyncWriter hands writes to a goroutine, so that the write system calls
// (half of decap's time on a page-cached file) run on another core while
// the next packets are decoded. The pcapfile.Writer passes its filled
// buffers over (WriteBuffer) and gets a recycled one back, so nothing is
// copied; a plain Write copies. The first error is returned by a later
// call or by Close.
type asyncWriter struct {
	w    io.Writer
	work chan []byte
	free chan []byte
	done chan struct{}
	mu   sync.Mutex
	err  error
}

const (
	asyncBuffers = 4
	asyncBufSize = 1 << 20 // the size pcapfile.Writer flushes at
)

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{w: w, work: make(chan []byte, asyncBuffers), free: make(chan []byte, asyncBuffers), done: make(chan struct{})}
	for range asyncBuffers {
		a.free <- make([]byte, 0, asyncBufSize)
	}
	go a.loop()
	return a
}

func (a *asyncWriter) loop() {
	defer close(a.done)
	for b := range a.work {
		if a.error() == nil {
			if _, err := a.w.Write(b); err != nil {
				a.mu.Lock()
				a.err = err
				a.mu.Unlock()
			}
		}
		a.free <- b[:0]
	}
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
		b := <-a.free
		k := min(len(p), cap(b))
		a.work <- append(b, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// WriteBuffer queues b as it is and returns a free buffer.
func (a *asyncWriter) WriteBuffer(b []byte) ([]byte, error) {
	if err := a.error(); err != nil {
		return b, err
	}
	a.work <- b
	return <-a.free, nil
}

// Close waits for every write to finish; it does not close the underlying
// writer.
func (a *asyncWriter) Close() error {
	close(a.work)
	<-a.done
	return a.error()
}
