package mirror

import (
	"encoding/binary"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// The vRouter sends mirror datagrams with DF clear, so every mirrored frame
// near the MTU arrives as two outer IP fragments: reassembly is on the hot
// path. gopacket's ip4defrag/ip6defrag need fully decoded gopacket layers
// (microseconds and a dozen allocations per packet) and drop what they
// cannot complete; this one works on the captured bytes, reuses its
// buffers, bounds its memory and hands back every fragment it gives up on.

// ReassemblyConfig bounds outer IP fragment reassembly.
type ReassemblyConfig struct {
	MaxDatagrams int           // incomplete datagrams held at once (default 4096)
	MaxBytes     int           // bytes held for them (default 64 MiB)
	Timeout      time.Duration // packet time a datagram may take to complete (default 30 s)
	// DiscardRaw keeps no copy of the fragments held: a datagram given up
	// is still handed back fragment by fragment, but with no bytes. For
	// callers that keep no rejects, it saves copying every fragment.
	DiscardRaw bool
}

// ReassemblyStats counts reassembly outcomes.
type ReassemblyStats struct {
	Reassembled uint64 // datagrams completed
	Incomplete  uint64 // datagrams given up (timeout, limits, overlap, end of input)
	Pending     int    // datagrams held now
	PendingSize int    // bytes held now
}

type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
	v6       bool
}

type span struct{ from, to int }

type rawFrag struct {
	ts     time.Time
	lt     layers.LinkType
	off, n int
	wire   int
	iface  int
}

type datagram struct {
	key     fragKey
	start   time.Time // packet time of the first fragment seen
	seq     uint64    // arrival order, for eviction
	payload []byte    // indexed by fragment offset
	got     []span
	total   int    // payload length, -1 until the last fragment is seen
	hdr     []byte // link and IP headers of the offset-0 fragment
	haveHdr bool   // the offset-0 fragment was seen
	l3      int    // offset of the IP header in hdr
	nhOff   int    // IPv6: offset in hdr of the next-header byte naming the fragment header
	nextHdr byte   // IPv6: the fragment header's next header
	raws    []rawFrag
	rawBuf  []byte
	size    int
}

type reassembler struct {
	cfg      ReassemblyConfig
	pending  map[fragKey]*datagram
	free     []*datagram
	failed   []*datagram // evicted, waiting for Expire to hand them out
	seq      uint64
	size     int
	lastScan time.Time
	out      []byte // the reassembled packet handed back in Packet.Data
	emit     Packet
	stats    ReassemblyStats
}

func (r *reassembler) init(c ReassemblyConfig) {
	if c.MaxDatagrams <= 0 {
		c.MaxDatagrams = 4096
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	r.cfg = c
	r.pending = make(map[fragKey]*datagram)
}

// add takes one fragment. l3 is the IP header's offset in p.Data; for
// IPv4, hdr is the header length; for IPv6, it is the fragment header's
// offset from l3 and nhOff the absolute offset of the byte that names it.
// total is the IP packet's length from l3.
func (r *reassembler) add(d *Decoder, p *Packet, l3, hdr, nhOff, total int) Status {
	data := p.Data
	cut := len(data) < l3+total
	if cut {
		total = len(data) - l3
	}
	var (
		k         fragKey
		off, from int
		more      bool
		nextHdr   byte
	)
	ip := data[l3:]
	if ip[0]>>4 == 4 {
		copy(k.src[:4], ip[12:16])
		copy(k.dst[:4], ip[16:20])
		k.id, k.proto = uint32(be16(ip[4:])), ip[9]
		fo := be16(ip[6:])
		off, more, from = int(fo&0x1fff)*8, fo&0x2000 != 0, hdr
	} else {
		k.v6 = true
		copy(k.src[:], ip[8:24])
		copy(k.dst[:], ip[24:40])
		fh := ip[hdr:]
		nextHdr = fh[0]
		fo := be16(fh[2:])
		off, more, from = int(fo&^7), fo&1 != 0, hdr+8
		k.id, k.proto = binary.BigEndian.Uint32(fh[4:]), nextHdr
	}
	if total < from {
		return p.fail(ErrTruncated, l3)
	}
	frag := ip[from:total]
	n := len(frag)
	if !cut && ((more && n%8 != 0) || n == 0 || off+n > 65535) {
		return p.fail(ErrIP, l3)
	}

	dg := r.pending[k]
	if dg == nil {
		r.makeRoom()
		dg = r.get()
		dg.key, dg.start, dg.seq = k, p.Timestamp, r.seq
		r.seq++
		r.pending[k] = dg
	}
	if cut {
		// The snap length cut this fragment: the datagram can never be
		// whole. Give it up with every fragment, this one included.
		r.keepRaw(dg, p)
		r.fail(dg)
		return Held
	}
	for _, s := range dg.got {
		if off < s.to && s.from < off+n {
			if s.from == off && s.to == off+n {
				// A duplicate: keep it for the record, it adds nothing.
				r.keepRaw(dg, p)
				return Held
			}
			// Overlapping fragments with other bounds: an evasion trick or
			// a broken sender; give the datagram up.
			r.keepRaw(dg, p)
			r.fail(dg)
			return Held
		}
	}
	if !more {
		if dg.total >= 0 || off+n < maxEnd(dg.got) {
			r.keepRaw(dg, p)
			r.fail(dg)
			return Held
		}
		dg.total = off + n
	} else if dg.total >= 0 && off+n > dg.total {
		r.keepRaw(dg, p)
		r.fail(dg)
		return Held
	}
	if len(dg.payload) < off+n {
		dg.payload = grow(dg.payload, off+n)
	}
	copy(dg.payload[off:], frag)
	dg.got = append(dg.got, span{off, off + n})
	if off == 0 {
		dg.hdr, dg.haveHdr = append(dg.hdr[:0], data[:l3+hdr]...), true
		dg.l3, dg.nextHdr = l3, nextHdr
		dg.nhOff = nhOff
	}
	r.keepRaw(dg, p)
	if dg.total < 0 || !dg.haveHdr || covered(dg.got) != dg.total {
		return Held
	}

	// Complete: rebuild the datagram as if it had never been fragmented
	// and decode it.
	out := append(r.out[:0], dg.hdr...)
	out = append(out, dg.payload[:dg.total]...)
	h := out[dg.l3:]
	if !k.v6 {
		ihl := int(h[0]&0x0f) * 4
		binary.BigEndian.PutUint16(h[2:], uint16(ihl+dg.total))
		binary.BigEndian.PutUint16(h[6:], 0)
		binary.BigEndian.PutUint16(h[10:], 0)
		binary.BigEndian.PutUint16(h[10:], ipChecksum(h[:ihl]))
	} else {
		out[dg.nhOff] = dg.nextHdr
		binary.BigEndian.PutUint16(h[4:], uint16(len(out)-dg.l3-40))
	}
	r.out = out
	p.Data, p.WireLen, p.Fragments = out, len(out), len(dg.raws)
	r.stats.Reassembled++
	delete(r.pending, k)
	r.put(dg)
	return d.decode(p)
}

func (r *reassembler) keepRaw(dg *datagram, p *Packet) {
	off, n := len(dg.rawBuf), 0
	if !r.cfg.DiscardRaw {
		dg.rawBuf = append(dg.rawBuf, p.Data...)
		n = len(p.Data)
	}
	dg.raws = append(dg.raws, rawFrag{ts: p.Timestamp, lt: p.LinkType, off: off, n: n, wire: p.WireLen, iface: p.Interface})
	r.account(dg)
}

func (r *reassembler) account(dg *datagram) {
	s := len(dg.rawBuf) + len(dg.payload)
	r.size += s - dg.size
	dg.size = s
}

// makeRoom evicts the oldest datagrams while a new one would exceed the
// limits.
func (r *reassembler) makeRoom() {
	for len(r.pending) > 0 && (len(r.pending) >= r.cfg.MaxDatagrams || r.size >= r.cfg.MaxBytes) {
		var oldest *datagram
		for _, dg := range r.pending {
			if oldest == nil || dg.seq < oldest.seq {
				oldest = dg
			}
		}
		r.fail(oldest)
	}
}

// fail moves a datagram from pending to the list Expire hands out.
func (r *reassembler) fail(dg *datagram) {
	delete(r.pending, dg.key)
	r.failed = append(r.failed, dg)
}

func (r *reassembler) expire(now time.Time, all bool, fn func(*Packet)) {
	if len(r.failed) == 0 && len(r.pending) == 0 {
		return
	}
	if !all && len(r.failed) == 0 && now.Sub(r.lastScan) < time.Second && !now.Before(r.lastScan) {
		return
	}
	if !all {
		r.lastScan = now
	}
	for _, dg := range r.pending {
		if all || now.Sub(dg.start) > r.cfg.Timeout {
			r.fail(dg)
		}
	}
	for i, dg := range r.failed {
		r.stats.Incomplete++
		for _, f := range dg.raws {
			e := &r.emit
			*e = Packet{Timestamp: f.ts, LinkType: f.lt, Data: dg.rawBuf[f.off : f.off+f.n], WireLen: f.wire, Interface: f.iface}
			e.Err = ErrFragment
			fn(e)
		}
		r.failed[i] = nil
		r.put(dg)
	}
	r.failed = r.failed[:0]
}

func (r *reassembler) get() *datagram {
	if n := len(r.free); n > 0 {
		dg := r.free[n-1]
		r.free = r.free[:n-1]
		return dg
	}
	return &datagram{total: -1}
}

// put recycles a datagram's buffers; a few are kept so that steady
// traffic reassembles without allocating.
func (r *reassembler) put(dg *datagram) {
	r.size -= dg.size
	*dg = datagram{
		payload: dg.payload[:0], got: dg.got[:0], hdr: dg.hdr[:0],
		raws: dg.raws[:0], rawBuf: dg.rawBuf[:0], total: -1,
	}
	if len(r.free) < 64 {
		r.free = append(r.free, dg)
	}
}

func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

func maxEnd(ss []span) int {
	m := 0
	for _, s := range ss {
		m = max(m, s.to)
	}
	return m
}

func covered(ss []span) int {
	n := 0
	for _, s := range ss {
		n += s.to - s.from
	}
	return n
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
