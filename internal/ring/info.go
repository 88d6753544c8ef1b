// Package ring keeps decoded traffic in a ring of rotating capture files, as
// dumpcap's ring buffer does for raw traffic.
package ring

import (
	"time"

	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// Info describes one capture file, as its sidecar records it.
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
