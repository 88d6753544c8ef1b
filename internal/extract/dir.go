package extract

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The names of a capture directory (internal/ring): a file being written
// ends in partSuffix and is renamed without it when closed; a closed
// file's sidecar is its name and sidecarSuffix.
const (
	partSuffix    = ".part"
	sidecarSuffix = ".json"
)

// sidecar is what Dir reads of a ring sidecar (ring.Info's JSON).
type sidecar struct {
	Name          string    `json:"name"`
	Size          int64     `json:"size"`
	First         time.Time `json:"first_packet"`
	Last          time.Time `json:"last_packet"`
	Opened        time.Time `json:"opened"`
	Closed        time.Time `json:"closed"`
	Received      uint64    `json:"source_received"`
	KernelDropped uint64    `json:"kernel_dropped"`
	StoreDropped  uint64    `json:"store_dropped"`
}

// Dir lists the capture files of a directory vrsniff capture writes
// (*.pcapng and *.pcap, and those still being written, *.part), in the
// order of their names (the ring's sequence numbers), with the packet
// times of their sidecars. A sidecar that does not match its file (name,
// size) is ignored and the file's times are unknown; so are those of a
// file being written. Reading the directory takes no lock and writes
// nothing, so it is safe beside a running capture: a file being written
// is opened under its name without ".part" if it was closed and renamed
// since.
func Dir(dir string) ([]Source, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	var out []Source
	for _, e := range entries {
		name := e.Name()
		base, part := strings.CutSuffix(name, partSuffix)
		if strings.HasPrefix(name, ".") || !e.Type().IsRegular() ||
			!(strings.HasSuffix(base, ".pcapng") || strings.HasSuffix(base, ".pcap")) {
			continue
		}
		s := Source{Name: name, Partial: part}
		if part {
			s.Paths = []string{filepath.Join(dir, name), filepath.Join(dir, base)}
			s.Open = openEither(s.Paths[0], s.Paths[1])
		} else {
			path := filepath.Join(dir, name)
			s.Paths = []string{path}
			s.Open = func() (io.ReadCloser, error) { return os.Open(path) }
			s.First, s.Last, s.Stats = sidecarInfo(path, name)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Source) int {
		return strings.Compare(strings.TrimSuffix(a.Name, partSuffix), strings.TrimSuffix(b.Name, partSuffix))
	})
	return out, nil
}

// openEither opens path, or then alt: a file renamed between the two
// names as it is closed.
func openEither(path, alt string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			f, err = os.Open(alt)
		}
		return f, err
	}
}

// sidecarInfo returns the packet times and drop counts of a closed file's sidecar, zero
// when it has none that matches the file.
func sidecarInfo(path, name string) (first, last time.Time, drops Drops) {
	st, err := os.Stat(path)
	if err != nil {
		return
	}
	f, err := os.Open(path + sidecarSuffix)
	if err != nil {
		return
	}
	defer f.Close()
	var sc sidecar
	if json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&sc) != nil || sc.Name != name || sc.Size != st.Size() {
		return
	}
	drops = Drops{Opened: sc.Opened, Closed: sc.Closed, Received: sc.Received,
		KernelDropped: sc.KernelDropped, StoreDropped: sc.StoreDropped}
	return sc.First, sc.Last, drops
}
