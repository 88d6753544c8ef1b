package pipeline

import (
	"bytes"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Stats counts what went through a pipeline. It is safe for one writer (the
// pipeline) and any number of concurrent readers (HTTP metrics, progress).
type Stats struct {
	Read      atomic.Uint64 // packets from the source
	ReadBytes atomic.Uint64 // their captured bytes
	Merged    atomic.Uint64 // outer fragments merged into a reassembled datagram they did not end
	Decoded   [mirror.NumModes]atomic.Uint64
	Malformed [mirror.NumReasons]atomic.Uint64
	Truncated atomic.Uint64 // decoded, but the inner frame was cut by the snap length
	Filtered  atomic.Uint64 // decoded, then dropped by the filter
	Written   atomic.Uint64 // handed to the sinks
	SinkErrs  atomic.Uint64 // sink write failures (e.g. a link type a pcap file cannot hold)
	// TimeClamped counts packets whose source time was out of range and
	// was clamped (mirror.Packet.TimeClamped).
	TimeClamped atomic.Uint64

	// VN pairs: the pipeline goroutine finds a pair's counter in pairIdx
	// without a lock (one look-up of both names joined in key); a new
	// pair is also appended to pairs, which readers see under mu.
	mu      sync.Mutex
	pairs   []*pairCount
	pairIdx map[string]*pairCount
	key     []byte
	lastKey []byte
	last    *pairCount
}

type pairCount struct {
	src, dst string
	n        atomic.Uint64
}

// CountPair counts one decoded packet for its VN pair. It must be called
// from one goroutine only.
func (s *Stats) CountPair(src, dst []byte) {
	// 0xff cannot occur in a VN name: the decoder accepts printable ASCII.
	s.key = append(append(append(s.key[:0], src...), 0xff), dst...)
	if s.last != nil && bytes.Equal(s.key, s.lastKey) {
		s.last.n.Add(1)
		return
	}
	c := s.pairIdx[string(s.key)]
	if c == nil {
		if s.pairIdx == nil {
			s.pairIdx = make(map[string]*pairCount)
		}
		c = &pairCount{src: string(src), dst: string(dst)}
		s.pairIdx[string(s.key)] = c
		s.mu.Lock()
		s.pairs = append(s.pairs, c)
		s.mu.Unlock()
	}
	s.lastKey, s.last = append(s.lastKey[:0], s.key...), c
	c.n.Add(1)
}

// Pair is a VN pair and its packet count.
type Pair struct {
	SrcVN   string `json:"src_vn"`
	DstVN   string `json:"dst_vn"`
	Packets uint64 `json:"packets"`
}

// Pairs returns the VN pairs, most packets first (ties by name).
func (s *Stats) Pairs() []Pair {
	s.mu.Lock()
	ps := make([]Pair, len(s.pairs))
	for i, c := range s.pairs {
		ps[i] = Pair{c.src, c.dst, c.n.Load()}
	}
	s.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Packets != ps[j].Packets {
			return ps[i].Packets > ps[j].Packets
		}
		if ps[i].SrcVN != ps[j].SrcVN {
			return ps[i].SrcVN < ps[j].SrcVN
		}
		return ps[i].DstVN < ps[j].DstVN
	})
	return ps
}

// Summary is a point-in-time copy of Stats, in the form printed by --json.
type Summary struct {
	Read      uint64            `json:"packets_read"`
	ReadBytes uint64            `json:"bytes_read"`
	Merged    uint64            `json:"fragments_merged"`
	Decoded   map[string]uint64 `json:"decoded"`
	Malformed map[string]uint64 `json:"malformed"`
	Truncated uint64            `json:"truncated"`
	Filtered  uint64            `json:"filtered"`
	Written   uint64            `json:"written"`
	SinkErrs  uint64            `json:"sink_errors"`
	// TimeClamped counts source times out of range, clamped.
	TimeClamped uint64 `json:"time_clamped"`
	Pairs       []Pair `json:"vn_pairs"`
}

// TotalMalformed is the number of packets that failed to decode.
func (s *Summary) TotalMalformed() uint64 {
	var n uint64
	for _, v := range s.Malformed {
		n += v
	}
	return n
}

// Summary copies the counters.
func (s *Stats) Summary() Summary {
	sum := Summary{
		Read: s.Read.Load(), ReadBytes: s.ReadBytes.Load(), Merged: s.Merged.Load(),
		Decoded: map[string]uint64{}, Malformed: map[string]uint64{},
		Truncated: s.Truncated.Load(), Filtered: s.Filtered.Load(),
		Written: s.Written.Load(), SinkErrs: s.SinkErrs.Load(), TimeClamped: s.TimeClamped.Load(), Pairs: s.Pairs(),
	}
	for _, m := range mirror.Modes() {
		sum.Decoded[m.String()] = s.Decoded[m].Load()
	}
	for _, r := range mirror.Reasons() {
		if n := s.Malformed[r].Load(); n > 0 {
			sum.Malformed[r.String()] = n
		}
	}
	return sum
}
