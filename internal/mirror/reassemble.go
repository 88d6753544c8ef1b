package mirror

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// The vRouter sends mirror datagrams with DF clear, so every mirrored frame
// near the MTU arrives as two outer IP fragments: reassembly is on the hot
// path. gopacket's ip4defrag/ip6defrag need fully decoded gopacket layers
// (microseconds and a dozen allocations per packet) and drop what they
// cannot complete; this one works on the captured bytes, reuses its
// buffers, bounds its memory and time per fragment, and hands back every
// fragment it gives up on.
//
// The rules (docs/decoding.md, "Outer IP reassembly"):
//   - pending datagrams are kept in arrival order: the oldest is evicted in
//     O(1) when a bound is reached, and timeouts are found from the front;
//   - the distance rule of Linux's ipfrag_max_dist: every outer IP packet
//     from a source advances that source's counter; a pending datagram
//     that saw no fragment while more than MaxDist later packets from its
//     source passed is stale and given up when its ID shows up again, so
//     an ID the vRouter's 16-bit counter reuses never joins two datagrams;
//   - a fragment identical to one already held, or to one of a datagram
//     completed within MaxDist packets of its source, is a Duplicate;
//     same offsets with other bytes, or a partial overlap, give the
//     datagram up;
//   - a first fragment cut by the snap length is decoded at once as a
//     truncated frame (its UDP length gives the full length), and the
//     datagram's other fragments are merged into it.

// ReassemblyConfig bounds outer IP fragment reassembly.
type ReassemblyConfig struct {
	MaxDatagrams int           // incomplete datagrams held at once (default 4096)
	MaxBytes     int           // bytes held for them (default 64 MiB)
	Timeout      time.Duration // packet time a datagram may take to complete (default 30 s)
	// MaxDist is how many later IP packets from the same source a pending
	// datagram may miss before it is stale (default 4; negative: no limit).
	MaxDist int
	// MaxFragments is the most fragments one datagram may have (default 64;
	// a 64 KiB datagram over a 1500-byte MTU has 45). It bounds the work per
	// fragment.
	MaxFragments int
	// DiscardRaw keeps no copy of the fragments held: a datagram given up
	// is still handed back fragment by fragment, but with no bytes. For
	// callers that keep no rejects, it saves copying every fragment.
	DiscardRaw bool
}

// ReassemblyStats counts reassembly outcomes.
type ReassemblyStats struct {
	Reassembled uint64 // datagrams completed
	Incomplete  uint64 // datagrams given up (timeout, limits, overlap, distance, end of input)
	Stale       uint64 // of those, given up by the distance rule
	Duplicates  uint64 // fragments that repeated one already seen
	CutHeads    uint64 // datagrams decoded from a first fragment cut by the snap length
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
	key        fragKey
	prev, next *datagram // arrival order
	start      time.Time // packet time of the first fragment seen
	slot       uint16    // the source's counter slot
	last       uint32    // the source's counter at the last fragment
	payload    []byte    // indexed by fragment offset
	got        []span    // claimed spans of the fragments seen
	total      int       // payload length, -1 until the last fragment is seen
	capEnd     int       // payload bytes captured contiguously are [0, capEnd) once complete
	hdr        []byte    // link and IP headers of the offset-0 fragment
	haveHdr    bool      // the offset-0 fragment was seen
	emitted    bool      // decoded from a cut first fragment: later ones are merged
	l3         int       // offset of the IP header in hdr
	nhOff      int       // IPv6: offset in hdr of the next-header byte naming the fragment header
	nextHdr    byte      // IPv6: the fragment header's next header
	raws       []rawFrag
	rawBuf     []byte
	size       int
}

// A recently completed datagram, remembered so that a late copy of one of
// its fragments is recognised as a duplicate, not the start of a new one.
type doneEntry struct {
	key   fragKey
	slot  uint16
	last  uint32
	n     int
	spans [4]span
	sums  [4]uint64
}

const (
	srcSlots  = 1024
	doneSlots = 256
)

type reassembler struct {
	cfg        ReassemblyConfig
	pending    map[fragKey]*datagram
	head, tail *datagram // oldest, newest
	free       []*datagram
	failed     []*datagram // given up, waiting for Expire to hand them out
	size       int
	lastScan   time.Time
	out        []byte // the reassembled packet handed back in Packet.Data
	emit       Packet
	stats      ReassemblyStats
	// srcSeq counts IP packets per source, hashed into slots; two sources
	// sharing a slot only make the distance rule stricter for both.
	srcSeq [srcSlots]uint32
	done   [doneSlots]doneEntry
	seed   maphash.Seed
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
	if c.MaxDist == 0 {
		c.MaxDist = 4
	}
	if c.MaxFragments <= 0 {
		c.MaxFragments = 64
	}
	r.cfg = c
	r.pending = make(map[fragKey]*datagram)
	r.seed = maphash.MakeSeed()
}

// sourceSlot hashes an IPv4 (4 bytes) or IPv6 (16 bytes) source address.
func sourceSlot(src []byte) uint16 {
	var x uint64
	for len(src) >= 8 {
		x ^= binary.LittleEndian.Uint64(src)
		src = src[8:]
	}
	if len(src) >= 4 {
		x ^= uint64(binary.LittleEndian.Uint32(src))
	}
	x ^= x >> 32
	return uint16((x * 0x9e3779b97f4a7c15) >> (64 - 10))
}

// count advances the counter of the source of an IP packet. It matters
// only while datagrams are pending, so it costs nothing otherwise.
func (r *reassembler) count(src []byte) {
	if r.head != nil {
		r.srcSeq[sourceSlot(src)]++
	}
}

// stale reports whether more than MaxDist packets from the source passed
// since seq, not counting the packet being handled.
func (r *reassembler) stale(slot uint16, last uint32) bool {
	return r.cfg.MaxDist > 0 && int64(r.srcSeq[slot]-last)-1 > int64(r.cfg.MaxDist)
}

func (r *reassembler) doneSlot(k *fragKey) *doneEntry {
	h := k.id*0x9e3779b1 ^ uint32(sourceSlot(k.src[:]))<<3 ^ uint32(k.dst[0]^k.dst[3]^k.dst[15])
	return &r.done[h%doneSlots]
}

// add takes one fragment. l3 is the IP header's offset in p.Data; for
// IPv4, hdr is the header length; for IPv6, it is the fragment header's
// offset from l3 and nhOff the absolute offset of the byte that names it.
// total is the IP packet's length from l3 as its header says.
func (r *reassembler) add(d *Decoder, p *Packet, l3, hdr, nhOff, total int) Status {
	data := p.Data
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
		return p.fail(ErrIP, l3)
	}
	n := total - from                        // the fragment's length as claimed
	capN := max(0, min(len(ip), total)-from) // and as captured
	if (more && n%8 != 0) || n == 0 || off+n > 65535 {
		return p.fail(ErrIP, l3)
	}
	frag := ip[from : from+capN]
	slot := sourceSlot(k.src[:])

	dg := r.pending[k]
	if dg != nil && r.stale(dg.slot, dg.last) {
		r.stats.Stale++
		r.fail(dg)
		dg = nil
	}
	if dg == nil {
		if e := r.doneSlot(&k); e.key == k && !r.stale(e.slot, e.last) && e.duplicate(off, n, frag, r.seed) {
			r.stats.Duplicates++
			return Duplicate
		}
		r.makeRoom(nil)
		dg = r.get()
		dg.key, dg.start, dg.slot = k, p.Timestamp, slot
		r.pending[k] = dg
		r.link(dg)
	}
	dg.last = r.srcSeq[slot]
	if dg.emitted {
		return r.absorb(dg, off, n, more)
	}
	for _, s := range dg.got {
		if off < s.to && s.from < off+n {
			if s.from == off && s.to == off+n && capN <= len(dg.payload)-off && bytes.Equal(dg.payload[off:off+capN], frag) {
				r.stats.Duplicates++
				return Duplicate
			}
			// Overlapping fragments with other bounds or other bytes: an
			// evasion trick or a broken sender; give the datagram up.
			r.keepRaw(dg, p)
			r.fail(dg)
			return Held
		}
	}
	if len(dg.got) >= r.cfg.MaxFragments {
		r.keepRaw(dg, p)
		r.fail(dg)
		return Held
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
	if len(dg.payload) < off+capN {
		dg.payload = grow(dg.payload, off+capN)
	}
	copy(dg.payload[off:], frag)
	dg.got = append(dg.got, span{off, off + n})
	if capN < n {
		dg.capEnd = min(dg.capEnd, off+capN)
	}
	if off == 0 {
		dg.hdr, dg.haveHdr = append(dg.hdr[:0], data[:l3+hdr]...), true
		dg.l3, dg.nextHdr = l3, nextHdr
		dg.nhOff = nhOff
	}
	r.keepRaw(dg, p)
	r.makeRoom(dg)
	if off == 0 && capN < n {
		// The snap length cut the first fragment: what follows it can
		// never be read, but this one holds the metadata and the inner
		// headers. Decode it now; the rest of the datagram is merged.
		return r.decodeCutHead(d, p, dg, frag)
	}
	if dg.total < 0 || !dg.haveHdr || covered(dg.got) != dg.total {
		return Held
	}
	return r.complete(d, p, dg)
}

// complete rebuilds a datagram whose fragments are all there as if it had
// never been fragmented, and decodes it.
func (r *reassembler) complete(d *Decoder, p *Packet, dg *datagram) Status {
	have := min(dg.total, dg.capEnd)
	out := append(r.out[:0], dg.hdr...)
	out = append(out, dg.payload[:have]...)
	r.fixHeader(out, dg, dg.total)
	r.out = out
	p.Data, p.WireLen, p.Fragments = out, len(dg.hdr)+dg.total, len(dg.raws)
	r.stats.Reassembled++
	r.remember(dg)
	r.release(dg)
	return d.decode(p)
}

// decodeCutHead decodes a first fragment cut by the snap length as the
// start of the whole datagram, whose length the UDP header gives.
func (r *reassembler) decodeCutHead(d *Decoder, p *Packet, dg *datagram, frag []byte) Status {
	total := len(frag) // unknown: the UDP header, when captured, says
	if dg.key.proto == 17 && len(frag) >= 8 {
		total = max(len(frag), int(be16(frag[4:])))
	}
	out := append(r.out[:0], dg.hdr...)
	out = append(out, frag...)
	r.fixHeader(out, dg, total)
	r.out = out
	p.Data, p.WireLen, p.Fragments = out, len(dg.hdr)+total, len(dg.raws)
	r.stats.CutHeads++
	dg.emitted = true
	// The fragments already held are merged into this packet; keep only
	// their spans, to know when the datagram is over.
	r.size -= len(dg.rawBuf)
	dg.size -= len(dg.rawBuf)
	dg.raws, dg.rawBuf = dg.raws[:0], dg.rawBuf[:0]
	if dg.total >= 0 && covered(dg.got) == dg.total {
		r.release(dg)
	}
	return d.decode(p)
}

// absorb takes a fragment of a datagram already decoded from its cut
// first fragment.
func (r *reassembler) absorb(dg *datagram, off, n int, more bool) Status {
	for _, s := range dg.got {
		if off < s.to && s.from < off+n {
			r.stats.Duplicates++
			return Duplicate
		}
	}
	if len(dg.got) < r.cfg.MaxFragments {
		dg.got = append(dg.got, span{off, off + n})
	}
	if !more {
		dg.total = off + n
	}
	if dg.total >= 0 && covered(dg.got) >= dg.total {
		r.release(dg)
	}
	return Merged
}

// fixHeader rewrites the IP header of a rebuilt datagram in out as
// unfragmented, with payload length total.
func (r *reassembler) fixHeader(out []byte, dg *datagram, total int) {
	h := out[dg.l3:]
	if !dg.key.v6 {
		ihl := int(h[0]&0x0f) * 4
		binary.BigEndian.PutUint16(h[2:], uint16(min(ihl+total, 0xffff)))
		binary.BigEndian.PutUint16(h[6:], 0)
		binary.BigEndian.PutUint16(h[10:], 0)
		binary.BigEndian.PutUint16(h[10:], ipChecksum(h[:ihl]))
		return
	}
	// The fragment header stays, unlinked: the next-header chain skips it.
	out[dg.nhOff] = dg.nextHdr
	binary.BigEndian.PutUint16(h[4:], uint16(min(len(dg.hdr)-dg.l3-40+total, 0xffff)))
}

// remember records a completed datagram's fragments for duplicate checks.
func (r *reassembler) remember(dg *datagram) {
	e := r.doneSlot(&dg.key)
	e.key, e.slot, e.last, e.n = dg.key, dg.slot, dg.last, 0
	for _, s := range dg.got {
		if e.n == len(e.spans) {
			break
		}
		to := min(s.to, dg.capEnd, len(dg.payload))
		if to < s.from {
			continue
		}
		e.spans[e.n] = s
		e.sums[e.n] = fingerprint(r.seed, dg.payload[s.from:to])
		e.n++
	}
}

func (e *doneEntry) duplicate(off, n int, frag []byte, seed maphash.Seed) bool {
	for i := range e.n {
		if e.spans[i] == (span{off, off + n}) {
			return e.sums[i] == fingerprint(seed, frag)
		}
	}
	return false
}

// fingerprint sums the length and the first and last 16 bytes of a
// fragment: enough to tell a copy from another datagram reusing the ID and
// offsets within the distance (its UDP header, metadata and frame end
// differ), at a fixed cost per fragment.
func fingerprint(seed maphash.Seed, b []byte) uint64 {
	if len(b) < 32 {
		return maphash.Bytes(seed, b)
	}
	le := binary.LittleEndian
	n := len(b)
	x := le.Uint64(b) ^ le.Uint64(b[8:])*0x9e3779b97f4a7c15
	y := le.Uint64(b[n-16:])*0xc2b2ae3d27d4eb4f ^ le.Uint64(b[n-8:])*0x165667b19e3779f9
	return (x ^ y ^ uint64(n)) * 0xff51afd7ed558ccd
}

func (r *reassembler) keepRaw(dg *datagram, p *Packet) {
	off, n := len(dg.rawBuf), 0
	if !r.cfg.DiscardRaw {
		dg.rawBuf = append(dg.rawBuf, p.Data...)
		n = len(p.Data)
	}
	dg.raws = append(dg.raws, rawFrag{ts: p.Timestamp, lt: p.LinkType, off: off, n: n, wire: p.WireLen, iface: p.Interface})
	s := len(dg.rawBuf) + len(dg.payload)
	r.size += s - dg.size
	dg.size = s
}

// makeRoom gives up the oldest datagrams other than keep while the
// limits are exceeded, or would be by one more datagram.
func (r *reassembler) makeRoom(keep *datagram) {
	for r.head != nil && r.head != keep {
		n := len(r.pending)
		if keep == nil {
			n++
		}
		if n <= r.cfg.MaxDatagrams && r.size <= r.cfg.MaxBytes {
			return
		}
		r.fail(r.head)
	}
}

func (r *reassembler) link(dg *datagram) {
	dg.prev, dg.next = r.tail, nil
	if r.tail != nil {
		r.tail.next = dg
	} else {
		r.head = dg
	}
	r.tail = dg
}

func (r *reassembler) unlink(dg *datagram) {
	if dg.prev != nil {
		dg.prev.next = dg.next
	} else {
		r.head = dg.next
	}
	if dg.next != nil {
		dg.next.prev = dg.prev
	} else {
		r.tail = dg.prev
	}
	dg.prev, dg.next = nil, nil
	delete(r.pending, dg.key)
}

// fail moves a datagram from pending to the list Expire hands out; one
// already decoded from its cut first fragment has nothing to hand out.
func (r *reassembler) fail(dg *datagram) {
	if dg.emitted {
		r.release(dg)
		return
	}
	r.unlink(dg)
	r.failed = append(r.failed, dg)
}

// release ends a datagram that needs no reporting.
func (r *reassembler) release(dg *datagram) {
	r.unlink(dg)
	r.put(dg)
}

func (r *reassembler) expire(now time.Time, all bool, fn func(*Packet)) {
	if len(r.failed) == 0 && r.head == nil {
		return
	}
	if !all && len(r.failed) == 0 && now.Sub(r.lastScan) < time.Second && !now.Before(r.lastScan) {
		return
	}
	if !all {
		r.lastScan = now
	}
	// Arrival order is start order as long as packet time runs forward,
	// so the timed-out datagrams are at the front.
	for dg := r.head; dg != nil; {
		next := dg.next
		if !all && now.Sub(dg.start) <= r.cfg.Timeout {
			break
		}
		r.fail(dg)
		dg = next
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
	return &datagram{total: -1, capEnd: 1 << 30}
}

// put recycles a datagram's buffers; a few are kept so that steady
// traffic reassembles without allocating.
func (r *reassembler) put(dg *datagram) {
	r.size -= dg.size
	*dg = datagram{
		payload: dg.payload[:0], got: dg.got[:0], hdr: dg.hdr[:0],
		raws: dg.raws[:0], rawBuf: dg.rawBuf[:0], total: -1, capEnd: 1 << 30,
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
