package pipeline

import (
	"bytes"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// Stats counts what went through a pipeline. It is safe for one writer (the
// pipeline) and any number of concurrent readers (HTTP metrics, progress).
type Stats struct {
	Read      atomic.Uint64 // packets from the source
	ReadBytes atomic.Uint64 // their captured bytes
	Merged    atomic.Uint64 // outer fragments merged into a reassembled datagram they did not end
	// Duplicates counts outer fragments that repeated one already seen.
	Duplicates atomic.Uint64
	Decoded    [mirror.NumModes]atomic.Uint64
	// Overlays counts decoded mirror datagrams found inside a fabric
	// tunnel, by tunnel (index mirror.Overlay; 0 unused).
	Overlays  [mirror.NumOverlays]atomic.Uint64
	Malformed [mirror.NumReasons]atomic.Uint64
	Truncated atomic.Uint64 // decoded, but the inner frame was cut by the snap length
	Filtered  atomic.Uint64 // decoded, then dropped by the filter
	Written   atomic.Uint64 // handed to the sinks
	SinkErrs  atomic.Uint64 // sink write failures (e.g. a link type a pcap file cannot hold)
	// TimeClamped counts packets whose source time was out of range and
	// was clamped (mirror.Packet.TimeClamped).
	TimeClamped atomic.Uint64

	// MaxPairs bounds the VN pairs counted one by one (default
	// DefaultMaxPairs): packets of pairs past it are counted in
	// PairsOther, so spoofed names cannot grow the table. Set it before
	// the first packet.
	MaxPairs int
	// PairsOther counts packets of VN pairs not in the table; PairsEvicted
	// counts pairs that left it to make room.
	PairsOther, PairsEvicted atomic.Uint64

	// VN pairs: the pipeline goroutine finds a pair's counter in pairIdx
	// without a lock (one look-up of both names joined in key); a new
	// pair is also put into pairs, which readers see under mu.
	mu      sync.Mutex
	hints   mirror.Hints
	pairs   []*pairCount
	pairIdx map[string]*pairCount
	key     []byte
	lastKey []byte
	last    *pairCount
}

type pairCount struct {
	key      string
	src, dst string
	n        atomic.Uint64
	i        int // index in pairs
}

// DefaultMaxPairs is the default of Stats.MaxPairs.
const DefaultMaxPairs = 4096

// evictSample is how many pairs are looked at to find one with few
// packets when the table is full: the quiet pairs of a spoofing flood
// leave, the busy ones stay, at a constant cost per new pair.
const evictSample = 8

// CountPair counts one decoded packet for its VN pair. It must be called
// from one goroutine only.
func (s *Stats) CountPair(src, dst []byte) {
	s.key = vnpair.AppendKey(s.key[:0], src, dst, vnpair.Directed)
	if s.last != nil && bytes.Equal(s.key, s.lastKey) {
		s.last.n.Add(1)
		return
	}
	c := s.pairIdx[string(s.key)]
	if c == nil {
		if s.pairIdx == nil {
			s.pairIdx = make(map[string]*pairCount)
		}
		c = &pairCount{key: string(s.key), src: string(src), dst: string(dst)}
		s.mu.Lock()
		if max := s.maxPairs(); len(s.pairs) < max {
			c.i = len(s.pairs)
			s.pairs = append(s.pairs, c)
		} else {
			s.evict(c)
		}
		s.mu.Unlock()
		s.pairIdx[c.key] = c
	}
	s.lastKey, s.last = append(s.lastKey[:0], s.key...), c
	c.n.Add(1)
}

func (s *Stats) maxPairs() int {
	if s.MaxPairs > 0 {
		return s.MaxPairs
	}
	return DefaultMaxPairs
}

// evict puts c in the place of the pair with the fewest packets of a
// sample, whose packets go to PairsOther. Called with mu held.
func (s *Stats) evict(c *pairCount) {
	var out *pairCount
	n := len(s.pairs)
	for j := range evictSample {
		// A multiplicative sequence over the table: no random source
		// needed, and successive evictions look at other pairs.
		cand := s.pairs[int((s.PairsEvicted.Load()*evictSample+uint64(j))*0x9e3779b97f4a7c15>>32)%n]
		if out == nil || cand.n.Load() < out.n.Load() {
			out = cand
		}
	}
	delete(s.pairIdx, out.key)
	if s.last == out {
		s.last = nil
	}
	s.PairsOther.Add(out.n.Load())
	s.PairsEvicted.Add(1)
	c.i = out.i
	s.pairs[c.i] = c
}

// SetHints records what the decoder noticed about the input.
func (s *Stats) SetHints(h mirror.Hints) {
	s.mu.Lock()
	s.hints = h
	s.mu.Unlock()
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
	Read       uint64            `json:"packets_read"`
	ReadBytes  uint64            `json:"bytes_read"`
	Merged     uint64            `json:"fragments_merged"`
	Duplicates uint64            `json:"fragments_duplicate"`
	Decoded    map[string]uint64 `json:"decoded"`
	// Overlays counts decoded datagrams by the fabric tunnel they were in.
	Overlays map[string]uint64 `json:"decoded_in_overlay,omitempty"`
	// CandidatePorts are unconfigured UDP ports carrying mirror metadata.
	CandidatePorts []mirror.PortCount `json:"candidate_ports,omitempty"`
	// ShortSnap counts mirror datagrams cut inside their metadata.
	ShortSnap uint64            `json:"cut_in_metadata,omitempty"`
	Malformed map[string]uint64 `json:"malformed"`
	Truncated uint64            `json:"truncated"`
	Filtered  uint64            `json:"filtered"`
	Written   uint64            `json:"written"`
	SinkErrs  uint64            `json:"sink_errors"`
	// TimeClamped counts source times out of range, clamped.
	TimeClamped uint64 `json:"time_clamped"`
	Pairs       []Pair `json:"vn_pairs"`
	// PairsOther counts packets of VN pairs no longer or never in the
	// table (Stats.MaxPairs); PairsEvicted the pairs that left it.
	PairsOther   uint64 `json:"vn_pairs_other_packets,omitempty"`
	PairsEvicted uint64 `json:"vn_pairs_evicted,omitempty"`
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
		Read: s.Read.Load(), ReadBytes: s.ReadBytes.Load(), Merged: s.Merged.Load(), Duplicates: s.Duplicates.Load(),
		Decoded: map[string]uint64{}, Malformed: map[string]uint64{},
		Truncated: s.Truncated.Load(), Filtered: s.Filtered.Load(),
		Written: s.Written.Load(), SinkErrs: s.SinkErrs.Load(), TimeClamped: s.TimeClamped.Load(), Pairs: s.Pairs(),
		PairsOther: s.PairsOther.Load(), PairsEvicted: s.PairsEvicted.Load(),
	}
	for _, m := range mirror.Modes() {
		sum.Decoded[m.String()] = s.Decoded[m].Load()
	}
	for o := mirror.OverlayNone + 1; int(o) < mirror.NumOverlays; o++ {
		if n := s.Overlays[o].Load(); n > 0 {
			if sum.Overlays == nil {
				sum.Overlays = map[string]uint64{}
			}
			sum.Overlays[o.String()] = n
		}
	}
	s.mu.Lock()
	sum.CandidatePorts, sum.ShortSnap = s.hints.CandidatePorts, s.hints.ShortSnap
	s.mu.Unlock()
	for _, r := range mirror.Reasons() {
		if n := s.Malformed[r].Load(); n > 0 {
			sum.Malformed[r.String()] = n
		}
	}
	return sum
}
