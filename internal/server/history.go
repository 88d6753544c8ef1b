package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// Defaults of the rate history: a sample every 10 s for an hour.
const (
	DefaultHistoryEvery = 10 * time.Second
	DefaultHistoryLen   = 360
)

// Sample is one reading of the cumulative counters the rate history is
// made of.
type Sample struct {
	Time    time.Time
	Packets uint64 // packets read from the source
	Bytes   uint64 // their captured bytes
	Drops   uint64 // packets lost: dropped by the kernel or not written to the store
}

// History keeps the last n samples in a ring fixed at New: its memory does
// not grow with uptime. It is safe for concurrent use.
type History struct {
	mu    sync.Mutex
	buf   []Sample
	next  int // where the next sample goes
	count int // samples held, at most len(buf)
	// lastDrop is when the drops last grew, zero if they never did.
	lastDrop time.Time
}

// NewHistory returns a history of at most n samples (n >= 2: a rate needs
// two).
func NewHistory(n int) *History {
	return &History{buf: make([]Sample, max(n, 2))}
}

// Add records s, pushing out the oldest sample when full.
func (h *History) Add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count > 0 {
		prev := h.buf[(h.next+len(h.buf)-1)%len(h.buf)]
		if s.Drops > prev.Drops {
			h.lastDrop = s.Time
		}
	}
	h.buf[h.next] = s
	h.next = (h.next + 1) % len(h.buf)
	h.count = min(h.count+1, len(h.buf))
}

// Samples returns the samples held, oldest first.
func (h *History) Samples() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Sample, 0, h.count)
	for i := range h.count {
		out = append(out, h.buf[(h.next-h.count+i+len(h.buf))%len(h.buf)])
	}
	return out
}

// LastDrop is when the drops last grew between two samples; zero if never.
func (h *History) LastDrop() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastDrop
}

// Rate is the traffic between two samples, per second.
type Rate struct {
	Time    time.Time `json:"t"` // end of the interval
	Packets float64   `json:"packets_per_s"`
	Bits    float64   `json:"bits_per_s"`
	Drops   float64   `json:"drops_per_s"`
	// DropPercent is the share of packets lost in the interval:
	// drops / (packets + drops) * 100.
	DropPercent float64 `json:"drop_percent"`
}

// Rates turns consecutive samples into rates; a counter that went back
// (a restart of its source) counts as zero for that interval.
func Rates(ss []Sample) []Rate {
	out := make([]Rate, 0, max(len(ss)-1, 0))
	for i := 1; i < len(ss); i++ {
		a, b := ss[i-1], ss[i]
		secs := b.Time.Sub(a.Time).Seconds()
		if secs <= 0 {
			continue
		}
		dp, db, dd := delta(a.Packets, b.Packets), delta(a.Bytes, b.Bytes), delta(a.Drops, b.Drops)
		r := Rate{Time: b.Time, Packets: float64(dp) / secs, Bits: float64(db) * 8 / secs, Drops: float64(dd) / secs}
		if dp+dd > 0 {
			r.DropPercent = float64(dd) / float64(dp+dd) * 100
		}
		out = append(out, r)
	}
	return out
}

func delta(a, b uint64) uint64 {
	if b < a {
		return 0
	}
	return b - a
}

// pairSeen is what the sampler remembers of a VN pair.
type pairSeen struct {
	packets  uint64
	lastSeen time.Time
	rate     float64 // packets/s over the last interval
}

// pairRates follows the VN pairs from sample to sample, for their rate and
// when they last had a packet. It holds only the pairs of the pipeline's
// table, which is bounded.
type pairRates struct {
	mu    sync.Mutex
	at    time.Time
	pairs map[[2]string]pairSeen
}

func (p *pairRates) update(now time.Time, ps []vnpair.Pair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make(map[[2]string]pairSeen, len(ps))
	secs := now.Sub(p.at).Seconds()
	for _, pr := range ps {
		k := [2]string{pr.SrcVN, pr.DstVN}
		old, known := p.pairs[k]
		cur := pairSeen{packets: pr.Packets, lastSeen: old.lastSeen}
		if !known || pr.Packets > old.packets {
			cur.lastSeen = now
		}
		if known && secs > 0 {
			cur.rate = float64(delta(old.packets, pr.Packets)) / secs
		}
		next[k] = cur
	}
	p.pairs, p.at = next, now
}

func (p *pairRates) get(src, dst string) (pairSeen, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.pairs[[2]string{src, dst}]
	return v, ok
}

// sample reads the counters into the history.
func (s *Server) sample() {
	now := s.now()
	sum := s.opts.Stats.Summary()
	st := Sample{Time: now, Packets: sum.Read, Bytes: sum.ReadBytes}
	if s.opts.Source != nil {
		st.Drops += s.opts.Source().KernelDrops
	}
	if c, ok := s.opts.Store.(StoreCounters); ok {
		st.Drops += c.StoreStats().Dropped
	}
	s.history.Add(st)
	s.pairRates.update(now, sum.Pairs)
}

// sampleHistory samples every HistoryEvery until ctx is done.
func (s *Server) sampleHistory(ctx context.Context) {
	s.sample()
	t := time.NewTicker(s.opts.HistoryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample()
		}
	}
}

// HistoryReport is the JSON of /api/history.
type HistoryReport struct {
	Every    float64   `json:"interval_s"` // seconds between samples
	Len      int       `json:"samples_max"`
	Rates    []Rate    `json:"rates"` // oldest first
	LastDrop time.Time `json:"last_drop,omitzero"`
	// Drops and Packets are the totals at the last sample.
	Drops   uint64 `json:"drops_total"`
	Packets uint64 `json:"packets_total"`
}

func (s *Server) historyHandler(w http.ResponseWriter, _ *http.Request) {
	ss := s.history.Samples()
	rep := HistoryReport{Every: s.opts.HistoryEvery.Seconds(), Len: s.opts.HistoryLen, Rates: Rates(ss),
		LastDrop: s.history.LastDrop()}
	if n := len(ss); n > 0 {
		rep.Drops, rep.Packets = ss[n-1].Drops, ss[n-1].Packets
	}
	writeJSON(w, rep)
}
