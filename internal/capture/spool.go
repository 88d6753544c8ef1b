package capture

import (
	"cmp"
	"io"
	"slices"
	"sync"

	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/upload"
)

// spool is the workers' file rings as the uploader's one spool: their
// closed files listed together, oldest first, and each name routed to
// the ring it belongs to (the rings share a directory, and their names
// differ by prefix).
type spool struct {
	rings []*ring.Ring
	ready chan struct{}
	done  chan struct{}
	once  sync.Once
}

var _ upload.Spool = (*spool)(nil)

// newSpool watches rs for closed files until close.
func newSpool(rs []*ring.Ring) *spool {
	s := &spool{rings: rs, ready: make(chan struct{}, 1), done: make(chan struct{})}
	for _, r := range rs {
		go func() {
			for {
				select {
				case <-s.done:
					return
				case <-r.Ready():
					select {
					case s.ready <- struct{}{}:
					default: // one signal pending is enough
					}
				}
			}
		}()
	}
	return s
}

// close stops watching the rings.
func (s *spool) close() {
	if s != nil {
		s.once.Do(func() { close(s.done) })
	}
}

func (s *spool) Ready() <-chan struct{} { return s.ready }

// Spooled lists the closed files of every ring, oldest first. With
// several workers each file's Seq, which the stored file's key carries,
// becomes the ring's sequence number times MaxWorkers plus the worker's:
// two workers' files never share one.
func (s *spool) Spooled() []ring.Info {
	var out []ring.Info
	for i, r := range s.rings {
		for _, in := range r.Spooled() {
			if len(s.rings) > 1 {
				in.Seq = in.Seq*MaxWorkers + i
			}
			out = append(out, in)
		}
	}
	if len(s.rings) > 1 {
		slices.SortStableFunc(out, func(a, b ring.Info) int {
			return cmp.Or(a.Closed.Compare(b.Closed), cmp.Compare(a.Name, b.Name))
		})
	}
	return out
}

func (s *spool) Open(name string) (f io.ReadSeekCloser, in ring.Info, err error) {
	err = route(s.rings, "open", name, func(r *ring.Ring) error {
		var e error
		f, in, e = r.Open(name)
		return e
	})
	return f, in, err
}

func (s *spool) OpenIndex(name string) (f io.ReadCloser, err error) {
	err = route(s.rings, "open", name, func(r *ring.Ring) error {
		var e error
		f, e = r.OpenIndex(name)
		return e
	})
	return f, err
}

func (s *spool) Uploaded(name string) error {
	return route(s.rings, "uploaded", name, func(r *ring.Ring) error { return r.Uploaded(name) })
}

func (s *spool) Delete(name string) error {
	return route(s.rings, "delete", name, func(r *ring.Ring) error { return r.Delete(name) })
}
