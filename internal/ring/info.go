// Package ring keeps decoded traffic in a ring of rotating capture files, as
// dumpcap's ring buffer does for raw traffic.
package ring

import (
	"io"
	"time"

	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// Info describes one capture file.
type Info struct {
	Name    string    `json:"name"` // base name, no directory
	Size    int64     `json:"size"`
	First   time.Time `json:"first_packet,omitzero"`
	Last    time.Time `json:"last_packet,omitzero"`
	Packets uint64    `json:"packets"`
	// Pairs lists the busiest VN pairs of the file (Options.MaxPairs at
	// most), most packets first; PairsOther counts the packets of the
	// others.
	Pairs      []vnpair.Pair `json:"vn_pairs"`
	PairsOther uint64        `json:"vn_pairs_other_packets,omitempty"`
	Open       bool          `json:"open"` // still being written (name ends in .part)
}

// Store is what the HTTP server needs of a capture directory.
type Store interface {
	// List returns the files, oldest first.
	List() ([]Info, error)
	// Open opens a file by base name for reading. Names that are not a
	// plain file of the store (separators, "..", unknown) give an error
	// satisfying errors.Is(err, fs.ErrNotExist).
	Open(name string) (io.ReadSeekCloser, Info, error)
	// Delete removes a closed file; deleting the file being written is
	// refused.
	Delete(name string) error
	// DiskUsage is the bytes used by the store's files.
	DiskUsage() int64
}
