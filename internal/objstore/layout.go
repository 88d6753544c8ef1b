// Package objstore keeps a fleet's capture files in an S3 bucket: the
// client (the S3 subset every engine serves: PUT and multipart upload,
// Range GET, ListObjectsV2 by prefix, HEAD, DELETE), the key layout, and the
// manifests and sniffer records written beside the files. docs/fleet.md
// describes the design.
package objstore

import (
	"fmt"
	"regexp"
	"time"

	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// LayoutVersion is the first element of every key the layout makes.
const LayoutVersion = "v1"

// Suffixes of a stored capture's three objects. They share one base
// (FileBase); the manifest is written last, and a capture without its
// manifest is invisible to readers.
const (
	SuffixPcap     = ".pcapng"
	SuffixIndex    = ".flows.parquet"
	SuffixManifest = ".json"
)

// MaxFileSpan is the longest time one stored file may cover: a capture
// that uploads rotates its files at least this often, so a reader looking
// for packets at time T finds them under the hour prefixes of
// [T-MaxFileSpan, T].
const MaxFileSpan = time.Hour

// stampLayout is the file start time in a key: UTC, sortable, nanoseconds.
const stampLayout = "20060102T150405.000000000Z"

var snifferID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckSniffer reports whether id can name a sniffer in keys: 1 to 64
// letters, digits, '.', '_' or '-', starting with a letter or digit.
func CheckSniffer(id string) error {
	if !snifferID.MatchString(id) {
		return fmt.Errorf("sniffer id %q: want 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit", id)
	}
	return nil
}

// HourPrefix is the key prefix of the hour holding t (UTC):
// "v1/dt=YYYY-MM-DD/hour=HH/".
func HourPrefix(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%s/dt=%s/hour=%02d/", LayoutVersion, t.Format(time.DateOnly), t.Hour())
}

// FileBase is the key of a stored capture without its suffix:
// "v1/dt=YYYY-MM-DD/hour=HH/sniffer=ID/<start>_<seq>", where start is
// the time of the file's first packet (UTC, nanoseconds) and seq the
// capture's sequence number of the file, zero-padded to 6 digits.
func FileBase(sniffer string, start time.Time, seq uint64) string {
	start = start.UTC()
	return fmt.Sprintf("%ssniffer=%s/%s_%06d", HourPrefix(start), sniffer, start.Format(stampLayout), seq)
}

// SnifferKey is the key of a sniffer's record: "v1/_sniffers/ID.json".
func SnifferKey(id string) string { return LayoutVersion + "/_sniffers/" + id + ".json" }

// Manifest describes one stored capture file. It is the object written
// last: a reader lists manifests, and only what a manifest names exists
// for it. Keys are relative to the store's prefix.
type Manifest struct {
	Version int    `json:"version"` // 1
	Sniffer string `json:"sniffer"`
	Seq     uint64 `json:"seq"`
	// Pcap is the key of the capture file (pcapng), PcapSize its size in
	// bytes and PcapSHA256 the hex SHA-256 of its content.
	Pcap       string `json:"pcap"`
	PcapSize   int64  `json:"pcap_size"`
	PcapSHA256 string `json:"pcap_sha256"`
	// HeaderLen is the length of the blocks before the first packet (the
	// section header and interface descriptions): a reader that range-reads
	// packets reads these bytes first.
	HeaderLen int64 `json:"header_len"`
	// Index is the key of the flow index (Parquet, internal/flowindex),
	// IndexSize its size; "" when the file has none.
	Index     string `json:"index,omitempty"`
	IndexSize int64  `json:"index_size,omitempty"`
	// First and Last are the times of the first and last packets.
	First   time.Time `json:"first_packet"`
	Last    time.Time `json:"last_packet"`
	Packets uint64    `json:"packets"`
	// Pairs are the file's busiest VN pairs; PairsOther counts the packets
	// of the others (a reader filtering by VN must read the file when it is
	// not zero).
	Pairs      []vnpair.Pair `json:"vn_pairs"`
	PairsOther uint64        `json:"vn_pairs_other_packets,omitempty"`
	// What was lost while the file was written (docs/capture.md, "Drops").
	Received      uint64    `json:"source_received,omitempty"`
	KernelDropped uint64    `json:"kernel_dropped,omitempty"`
	StoreDropped  uint64    `json:"store_dropped,omitempty"`
	Uploaded      time.Time `json:"uploaded"`
}

// Sniffer is a sniffer's record (SnifferKey), rewritten every minute
// while it captures: who it is, where its API answers, when it was last
// seen.
type Sniffer struct {
	ID        string    `json:"id"`
	API       string    `json:"api,omitempty"` // base URL of its HTTP API, "" without one
	Version   string    `json:"version"`
	Interface string    `json:"interface,omitempty"` // what it captures: interface, UDP address or file
	Started   time.Time `json:"started"`
	LastSeen  time.Time `json:"last_seen"`
}
