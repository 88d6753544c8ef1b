package capture

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/server"
)

// store serves the workers' rings to the HTTP server as one store: the
// one place where the ring's types meet the API's. The rings share a
// directory and their names differ by prefix, so a name belongs to one.
type store []*ring.Ring

var (
	_ server.Store         = store{}
	_ server.StoreHealth   = store{}
	_ server.StoreCounters = store{}
)

func fileInfo(in ring.Info) server.FileInfo {
	return server.FileInfo{Name: in.Name, Size: in.Size, First: in.First, Last: in.Last, Packets: in.Packets,
		Pairs: in.Pairs, PairsOther: in.PairsOther, Open: in.Open,
		Opened: in.Opened, Closed: in.Closed, Received: in.Received, KernelDropped: in.KernelDropped, StoreDropped: in.StoreDropped}
}

// List lists the files of every ring, oldest first: by first packet (by
// opening for a file without one yet), then name.
func (s store) List() ([]server.FileInfo, error) {
	var out []server.FileInfo
	for _, r := range s {
		ins, err := r.List()
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			out = append(out, fileInfo(in))
		}
	}
	if len(s) > 1 {
		slices.SortStableFunc(out, func(a, b server.FileInfo) int {
			return cmp.Or(cmp.Or(a.First, a.Opened).Compare(cmp.Or(b.First, b.Opened)), cmp.Compare(a.Name, b.Name))
		})
	}
	return out, nil
}

// Open opens name in the ring it belongs to.
func (s store) Open(name string) (f io.ReadSeekCloser, in server.FileInfo, err error) {
	err = route(s, "open", name, func(r *ring.Ring) error {
		var ri ring.Info
		var e error
		f, ri, e = r.Open(name)
		in = fileInfo(ri)
		return e
	})
	return f, in, err
}

// Delete deletes name from the ring it belongs to, saying the ring's
// ErrBusy in the server's terms.
func (s store) Delete(name string) error {
	err := route(s, "delete", name, func(r *ring.Ring) error { return r.Delete(name) })
	if errors.Is(err, ring.ErrBusy) {
		return fmt.Errorf("%w: %w", server.ErrBusy, err)
	}
	return err
}

// route calls fn with the rings in turn until one answers with something
// else than fs.ErrNotExist: the ring name belongs to (the workers' rings
// share a directory, and their names differ by prefix).
func route(rs []*ring.Ring, op, name string, fn func(*ring.Ring) error) error {
	for _, r := range rs {
		if err := fn(r); !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

func (s store) DiskUsage() int64 {
	var n int64
	for _, r := range s {
		n += r.DiskUsage()
	}
	return n
}

// Healthy is the first ring's problem: the rings share a disk, so one
// that cannot write is what the others will meet.
func (s store) Healthy() error {
	for _, r := range s {
		if err := r.Healthy(); err != nil {
			return err
		}
	}
	return nil
}

func (s store) StoreStats() server.StoreStats {
	st := ringStats(s)
	return server.StoreStats{Dropped: st.Dropped, DiskFull: st.DiskFull, Rotated: st.Rotated,
		RemovedMaxFiles: st.RemovedMaxFiles, RemovedMaxBytes: st.RemovedMaxBytes, Deleted: st.Deleted}
}
