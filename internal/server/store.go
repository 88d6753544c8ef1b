package server

import (
	"errors"
	"io"
	"time"

	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// Store is what the server needs of the capture files.
type Store interface {
	// List returns the files, oldest first.
	List() ([]FileInfo, error)
	// Open opens a file by base name for reading. A file listed while
	// being written (its name ends in ".part") is found by either name,
	// with or without ".part", before and after it is closed. Names that
	// are not a plain file of the store (separators, "..", unknown) give
	// an error satisfying errors.Is(err, fs.ErrNotExist).
	Open(name string) (io.ReadSeekCloser, FileInfo, error)
	// Delete removes a closed file. The file being written is refused
	// with an error satisfying errors.Is(err, ErrBusy), an unknown one
	// with one satisfying errors.Is(err, fs.ErrNotExist).
	Delete(name string) error
	// DiskUsage is the bytes used by the store's files.
	DiskUsage() int64
}

// ErrBusy is what a Store's Delete wraps when it refuses to delete the
// file being written; the API answers 409.
var ErrBusy = errors.New("capture is still being written")

// FileInfo describes one capture file as GET /api/captures lists it.
type FileInfo struct {
	Name    string    `json:"name"` // base name, no directory
	Size    int64     `json:"size"` // bytes
	First   time.Time `json:"first_packet,omitzero"`
	Last    time.Time `json:"last_packet,omitzero"`
	Packets uint64    `json:"packets"`
	// Pairs lists the busiest VN pairs of the file, most packets first;
	// PairsOther counts the packets of the others.
	Pairs      []vnpair.Pair `json:"vn_pairs"`
	PairsOther uint64        `json:"vn_pairs_other_packets,omitempty"`
	Open       bool          `json:"open"` // still being written (name ends in .part)
	// What was lost while the file was open, from Opened to Closed (so
	// far, and Closed zero, while it is written; docs/capture.md,
	// "Drops"): packets the capture source read, those the kernel dropped
	// before it could, and those the capture files lost.
	Opened        time.Time `json:"opened,omitzero"`
	Closed        time.Time `json:"closed,omitzero"`
	Received      uint64    `json:"source_received,omitempty"`
	KernelDropped uint64    `json:"kernel_dropped,omitempty"`
	StoreDropped  uint64    `json:"store_dropped,omitempty"`
}

// StoreHealth is a Store that says whether it can write; /healthz and
// vrsniff_store_writing report it. A Store without it is taken as able.
type StoreHealth interface {
	// Healthy returns nil while packets reach the files, else why they
	// do not (a full disk, a directory removed or unwritable).
	Healthy() error
}

// StoreCounters is a Store that counts the packets it lost and the files it
// rotated and removed; vrsniff_store_dropped_total, vrsniff_store_disk_full,
// vrsniff_files_rotated_total and vrsniff_files_removed_total report them.
type StoreCounters interface {
	StoreStats() StoreStats
}

// StoreStats are the counters of a StoreCounters.
type StoreStats struct {
	Dropped  uint64 // packets not written, whatever the reason
	DiskFull bool   // writing is paused until space is available
	// Rotated counts the files closed and kept; the Removed counts the
	// closed files deleted, by reason: the file count limit, the size
	// limit, a DELETE request.
	Rotated, RemovedMaxFiles, RemovedMaxBytes, Deleted uint64
}

// UploadCounters is a Store whose files are uploaded to object storage
// (a spool); vrsniff_upload_* and vrsniff_spool_* report them.
type UploadCounters interface {
	UploadStats() UploadStats
}

// UploadStats are the counters of an UploadCounters.
type UploadStats struct {
	// Files and Bytes count the capture files stored and their bytes,
	// flow indexes included; Failures the failed attempts, each retried.
	Files, Bytes, Failures uint64
	// Lag is the age of the oldest file waiting for upload, 0 when none
	// waits; SpoolFiles and SpoolBytes what waits.
	Lag        time.Duration
	SpoolFiles int
	SpoolBytes int64
}
