package pipeline

import (
	"cmp"
	"sync"
	"sync/atomic"
	"time"

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
	// LastPacket is the capture time of the last packet read, in Unix
	// nanoseconds; 0 before the first.
	LastPacket atomic.Int64

	// MaxPairs bounds the VN pairs counted one by one (default
	// DefaultMaxPairs): packets of pairs past it are counted together
	// (Summary.PairsOther), so spoofed names cannot grow the table. Set it
	// before the first packet.
	MaxPairs int

	pairs vnpair.Counter
	mu    sync.Mutex // guards hints
	hints mirror.Hints
}

// DefaultMaxPairs is the default of Stats.MaxPairs.
const DefaultMaxPairs = 4096

// CountPair counts one decoded packet for its VN pair. It must be called
// from one goroutine only.
func (s *Stats) CountPair(src, dst []byte) { s.CountPairBytes(src, dst, 0) }

// CountPairBytes counts one decoded packet of n bytes (its inner frame's
// original length) for its VN pair, as CountPair does.
func (s *Stats) CountPairBytes(src, dst []byte, n int) {
	if s.pairs.Max == 0 {
		s.pairs.Max = cmp.Or(s.MaxPairs, DefaultMaxPairs)
	}
	s.pairs.AddBytes(src, dst, n)
}

// SetHints records what the decoder noticed about the input.
func (s *Stats) SetHints(h mirror.Hints) {
	s.mu.Lock()
	s.hints = h
	s.mu.Unlock()
}

// Pairs returns the VN pairs, most packets first (ties by name).
func (s *Stats) Pairs() []vnpair.Pair {
	ps, _ := s.pairs.Pairs()
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
	TimeClamped uint64        `json:"time_clamped"`
	Pairs       []vnpair.Pair `json:"vn_pairs"`
	// PairsOther counts packets of VN pairs no longer or never in the
	// table (Stats.MaxPairs); PairsEvicted the pairs that left it.
	PairsOther   uint64 `json:"vn_pairs_other_packets,omitempty"`
	PairsEvicted uint64 `json:"vn_pairs_evicted,omitempty"`
	// LastPacket is the capture time of the last packet read (Stats.LastPacket),
	// zero before the first.
	LastPacket time.Time `json:"-"`
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
		Written: s.Written.Load(), SinkErrs: s.SinkErrs.Load(), TimeClamped: s.TimeClamped.Load(),
		PairsEvicted: s.pairs.Evicted(),
	}
	if ns := s.LastPacket.Load(); ns != 0 {
		sum.LastPacket = time.Unix(0, ns)
	}
	sum.Pairs, sum.PairsOther = s.pairs.Pairs()
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

// Sum adds up the counters of pipelines that share one input between them
// (a capture's workers, each with a part of the traffic): the counts are
// summed, the VN pairs merged by name, at most the first Stats' MaxPairs
// of them kept one by one (the others' packets go to PairsOther), and
// LastPacket is the latest. It reads each Stats once, as Summary does.
func Sum(ss []*Stats) Summary {
	if len(ss) == 1 {
		return ss[0].Summary()
	}
	sum := Summary{Decoded: map[string]uint64{}, Malformed: map[string]uint64{}}
	if len(ss) == 0 {
		return sum
	}
	pairs := map[[2]string]*vnpair.Pair{}
	ports := map[uint16]int{} // index in sum.CandidatePorts
	for _, st := range ss {
		o := st.Summary()
		sum.Read += o.Read
		sum.ReadBytes += o.ReadBytes
		sum.Merged += o.Merged
		sum.Duplicates += o.Duplicates
		sum.ShortSnap += o.ShortSnap
		sum.Truncated += o.Truncated
		sum.Filtered += o.Filtered
		sum.Written += o.Written
		sum.SinkErrs += o.SinkErrs
		sum.TimeClamped += o.TimeClamped
		sum.PairsOther += o.PairsOther
		sum.PairsEvicted += o.PairsEvicted
		addCounts(&sum.Decoded, o.Decoded)
		addCounts(&sum.Malformed, o.Malformed)
		if len(o.Overlays) > 0 {
			if sum.Overlays == nil {
				sum.Overlays = map[string]uint64{}
			}
			addCounts(&sum.Overlays, o.Overlays)
		}
		for _, c := range o.CandidatePorts {
			if i, ok := ports[c.Port]; ok {
				sum.CandidatePorts[i].Count += c.Count
			} else {
				ports[c.Port] = len(sum.CandidatePorts)
				sum.CandidatePorts = append(sum.CandidatePorts, c)
			}
		}
		for _, p := range o.Pairs {
			k := [2]string{p.SrcVN, p.DstVN}
			if q := pairs[k]; q != nil {
				q.Packets += p.Packets
				q.Bytes += p.Bytes
			} else {
				pairs[k] = &p
			}
		}
		if o.LastPacket.After(sum.LastPacket) {
			sum.LastPacket = o.LastPacket
		}
	}
	sum.Pairs = make([]vnpair.Pair, 0, len(pairs))
	for _, p := range pairs {
		sum.Pairs = append(sum.Pairs, *p)
	}
	var other uint64
	sum.Pairs, other = vnpair.Top(sum.Pairs, cmp.Or(ss[0].MaxPairs, DefaultMaxPairs))
	sum.PairsOther += other
	return sum
}

func addCounts(dst *map[string]uint64, src map[string]uint64) {
	for k, v := range src {
		(*dst)[k] += v
	}
}
