package capture

import (
	"errors"
	"fmt"
	"io"

	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/server"
)

// store serves a ring's files to the HTTP server: the one place where the
// ring's types meet the API's.
type store struct{ r *ring.Ring }

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

func (s store) List() ([]server.FileInfo, error) {
	ins, err := s.r.List()
	if err != nil {
		return nil, err
	}
	out := make([]server.FileInfo, len(ins))
	for i, in := range ins {
		out[i] = fileInfo(in)
	}
	return out, nil
}

func (s store) Open(name string) (io.ReadSeekCloser, server.FileInfo, error) {
	f, in, err := s.r.Open(name)
	return f, fileInfo(in), err
}

// Delete says the ring's ErrBusy in the server's terms.
func (s store) Delete(name string) error {
	err := s.r.Delete(name)
	if errors.Is(err, ring.ErrBusy) {
		return fmt.Errorf("%w: %w", server.ErrBusy, err)
	}
	return err
}

func (s store) DiskUsage() int64 { return s.r.DiskUsage() }
func (s store) Healthy() error   { return s.r.Healthy() }

func (s store) StoreStats() server.StoreStats {
	st := s.r.Stats()
	return server.StoreStats{Dropped: st.Dropped, DiskFull: st.DiskFull, Rotated: st.Rotated,
		RemovedMaxFiles: st.RemovedMaxFiles, RemovedMaxBytes: st.RemovedMaxBytes, Deleted: st.Deleted}
}
