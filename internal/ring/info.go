// Package ring keeps decoded traffic in a ring of rotating capture files, as
// dumpcap's ring buffer does for raw traffic.
package ring

import (
	"time"

	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// Info describes one capture file, as its sidecar records it.
type Info struct {
	Name string `json:"name"` // base name, no directory
	// Seq is the file's sequence number in the ring (the one in its name).
	Seq  int   `json:"seq"`
	Size int64 `json:"size"`
	// HeaderLen is the length in bytes of the blocks before the first
	// packet record: the file header (pcapng: section header and the
	// interface descriptions that come before it).
	HeaderLen int64 `json:"header_len,omitempty"`
	// IndexSize is the size of the file's flow index (IndexName), 0
	// without one; for a file being written, 0.
	IndexSize int64     `json:"index_size,omitempty"`
	First     time.Time `json:"first_packet,omitzero"`
	Last      time.Time `json:"last_packet,omitzero"`
	Packets   uint64    `json:"packets"`
	// Pairs lists the busiest VN pairs of the file (Options.MaxPairs at
	// most), most packets first; PairsOther counts the packets of the
	// others.
	Pairs      []vnpair.Pair `json:"vn_pairs"`
	PairsOther uint64        `json:"vn_pairs_other_packets,omitempty"`
	Open       bool          `json:"open"` // still being written (name ends in .part)
	// What was lost while the file was open, from its opening (at its
	// first packet) to its closing, which Opened and Closed give; for a
	// file being written, so far, and Closed is zero (docs/capture.md,
	// "Drops"). Received counts the
	// packets the capture source read and KernelDropped those the kernel
	// dropped before it could (Options.SourceStats); StoreDropped the
	// packets the store lost (Stats.Dropped), in this file or another.
	Opened        time.Time `json:"opened,omitzero"`
	Closed        time.Time `json:"closed,omitzero"`
	Received      uint64    `json:"source_received,omitempty"`
	KernelDropped uint64    `json:"kernel_dropped,omitempty"`
	StoreDropped  uint64    `json:"store_dropped,omitempty"`
}
