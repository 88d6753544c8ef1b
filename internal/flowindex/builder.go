package flowindex

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"net/netip"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Options bound a Builder. Zero fields take the defaults.
type Options struct {
	// MaxFlows is the most flows one file's index holds (default 1<<16);
	// the packets of further flows go to the overflow row.
	MaxFlows int
	// MaxRecords is the most record offsets held (default 1<<20, 16 bytes
	// each); further packets are counted in their flow but their records
	// go to the overflow row.
	MaxRecords int
	// MaxNameBytes bounds the VN names held (default 4 MiB); a new flow
	// whose names do not fit goes to the overflow row.
	MaxNameBytes int
	// RowGroupRows is the number of rows in a Parquet row group (default
	// 1024, at most 65536): smaller groups prune finer and cost more
	// footer.
	RowGroupRows int
}

func (o Options) withDefaults() Options {
	if o.MaxFlows <= 0 {
		o.MaxFlows = 1 << 16
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = 1 << 20
	}
	if o.MaxNameBytes <= 0 {
		o.MaxNameBytes = 4 << 20
	}
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = 1024
	}
	o.RowGroupRows = min(o.RowGroupRows, maxGroupRows)
	return o
}

// Full reports that the next packet may not fit as a new flow with its
// record: the flows, the records or the names are at their limits (the
// names with room for two more of the longest a TLV holds). A writer that
// starts a new file then keeps the overflow row empty.
func (b *Builder) Full() bool {
	return len(b.flows) >= b.o.MaxFlows || len(b.recs) >= b.o.MaxRecords || len(b.names)+2*255 > b.o.MaxNameBytes
}

// maxSpans bounds the overflow row's byte ranges: past it the last range
// grows to take in the next record, so that a query reads more of the file
// rather than the index growing without bound.
const maxSpans = 4096

// key is what tells one flow from another, but for the VN names, which
// are compared in the builder's name arena.
type key struct {
	tuple
	dir     mirror.Direction
	hostLen uint8 // 0 (no host), 4 or 16
	host    [16]byte
	hasVNI  bool
	vni     uint32
}

// flow is one flow being built: its key, where its names lie in the
// arena, its counts, and the chain of its records in Builder.recs.
type flow struct {
	key          key
	hash         uint64
	srcVN, dstVN nameRef
	first, last  int64 // Unix nanoseconds
	packets      int64
	bytes        int64
	head, tail   int32 // first and last record in recs; -1: none
	nrec         int32
	tcpFlags     uint8 // OR of the TCP flags seen
}

type nameRef struct{ off, len int32 }

// rec is one record of a flow, chained to the flow's next one.
type rec struct {
	off  int64
	len  int32
	next int32
}

type span struct {
	off int64
	len int32
}

// Builder builds the flow index of one capture file from the packets
// written to it. Add does not allocate once the builder's tables have
// grown to a file's size; Reset keeps them for the next file. A Builder is
// not safe for concurrent use.
type Builder struct {
	o     Options
	seed  maphash.Seed
	hseed uint64
	slots []int32 // open addressing: index+1 into flows, 0 empty
	flows []flow
	names []byte
	recs  []rec

	// The overflow row.
	ovPackets, ovBytes int64
	ovFirst, ovLast    int64
	spans              []span

	// Reused by WriteTo.
	out     bytes.Buffer
	rows    []Row
	offsets []int64
	lengths []int32
}

// NewBuilder returns a Builder bounded by o.
func NewBuilder(o Options) *Builder {
	seed := maphash.MakeSeed()
	b := &Builder{o: o.withDefaults(), seed: seed, hseed: maphash.Comparable(seed, 0)}
	b.slots = make([]int32, 1024)
	return b
}

// Reset forgets the flows, keeping the memory for the next file.
func (b *Builder) Reset() {
	clear(b.slots)
	b.flows, b.names, b.recs, b.spans = b.flows[:0], b.names[:0], b.recs[:0], b.spans[:0]
	b.ovPackets, b.ovBytes, b.ovFirst, b.ovLast = 0, 0, 0, 0
}

// Flows is the number of flows indexed so far, the overflow row aside.
func (b *Builder) Flows() int { return len(b.flows) }

// Add indexes p, whose record (a whole pcapng block) lies at byte off of
// the capture file and is length bytes long. Records must be added in the
// order they are written. Add keeps none of p's memory.
func (b *Builder) Add(p *mirror.Packet, off int64, length int) {
	var k key
	frame, n := innerFrame(p)
	tcpFlags := parseFrame(frame, &k.tuple)
	m := &p.Meta
	k.dir = m.Direction
	switch h := m.Host; {
	case h.Is4():
		a := h.As4()
		k.hostLen = 4
		copy(k.host[:], a[:])
	case h.IsValid():
		k.hostLen, k.host = 16, h.As16()
	}
	k.hasVNI, k.vni = m.HasVNI, m.VNI
	t := p.Timestamp.UnixNano()
	length32 := int32(min(length, math.MaxInt32))

	h := b.hash(&k, m.SrcVN, m.DstVN)
	fi, ok := b.find(h, &k, m.SrcVN, m.DstVN)
	if !ok {
		fi = b.insert(h, &k, m.SrcVN, m.DstVN, t)
		if fi < 0 {
			b.overflow(t, int64(n), off, length32)
			return
		}
	}
	f := &b.flows[fi]
	if t < f.first {
		f.first = t
	}
	if t > f.last {
		f.last = t
	}
	f.packets++
	f.bytes += int64(n)
	f.tcpFlags |= tcpFlags
	if len(b.recs) >= b.o.MaxRecords {
		b.overflowSpan(t, off, length32)
		return
	}
	r := int32(len(b.recs))
	b.recs = append(b.recs, rec{off: off, len: length32, next: -1})
	if f.tail >= 0 {
		b.recs[f.tail].next = r
	} else {
		f.head = r
	}
	f.tail = r
	f.nrec++
}

// hash mixes the key's words by multiplication and the names with
// maphash: hashing the key through a maphash.Hash costs more than the rest
// of Add together.
func (b *Builder) hash(k *key, src, dst []byte) uint64 {
	t := &k.tuple
	le := binary.LittleEndian
	h := b.hseed
	h = mix(h, le.Uint64(t.src[:]))
	h = mix(h, le.Uint64(t.src[8:]))
	h = mix(h, le.Uint64(t.dst[:]))
	h = mix(h, le.Uint64(t.dst[8:]))
	h = mix(h, le.Uint64(k.host[:]))
	h = mix(h, le.Uint64(k.host[8:]))
	h = mix(h, uint64(t.family)|uint64(t.proto)<<8|uint64(k.dir)<<16|uint64(k.hostLen)<<24|uint64(t.sport)<<32|uint64(t.dport)<<48)
	v := uint64(k.vni)
	if k.hasVNI {
		v |= 1 << 32
	}
	if t.hasL4 {
		v |= 1 << 33
	}
	h = mix(h, v)
	if len(src) > 0 {
		h = mix(h, maphash.Bytes(b.seed, src))
	}
	h = mix(h, uint64(len(src))<<32|uint64(len(dst)))
	if len(dst) > 0 {
		h = mix(h, maphash.Bytes(b.seed, dst))
	}
	// Finish so that the low bits, which index the table, depend on all.
	h ^= h >> 32
	h *= 0xd6e8feb86659fd93
	return h ^ h>>32
}

func mix(h, v uint64) uint64 {
	h = (h ^ v) * 0x9e3779b97f4a7c15
	return h ^ h>>29
}

func (b *Builder) name(r nameRef) []byte { return b.names[r.off : r.off+r.len] }

func (b *Builder) find(h uint64, k *key, src, dst []byte) (int, bool) {
	mask := uint64(len(b.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := b.slots[i]
		if s == 0 {
			return int(i), false
		}
		f := &b.flows[s-1]
		if f.hash == h && f.key == *k && bytes.Equal(b.name(f.srcVN), src) && bytes.Equal(b.name(f.dstVN), dst) {
			return int(s - 1), true
		}
	}
}

// insert adds a new flow and returns its index, or -1 when the bounds
// leave no room for it.
func (b *Builder) insert(h uint64, k *key, src, dst []byte, t int64) int {
	if len(b.flows) >= b.o.MaxFlows || len(b.names)+len(src)+len(dst) > b.o.MaxNameBytes {
		return -1
	}
	if 2*(len(b.flows)+1) > len(b.slots) {
		b.grow()
	}
	f := flow{key: *k, hash: h, first: t, last: t, head: -1, tail: -1}
	f.srcVN = nameRef{int32(len(b.names)), int32(len(src))}
	b.names = append(b.names, src...)
	f.dstVN = nameRef{int32(len(b.names)), int32(len(dst))}
	b.names = append(b.names, dst...)
	b.flows = append(b.flows, f)
	mask := uint64(len(b.slots) - 1)
	i := h & mask
	for b.slots[i] != 0 {
		i = (i + 1) & mask
	}
	b.slots[i] = int32(len(b.flows))
	return len(b.flows) - 1
}

// grow doubles the slot table; it is kept across Reset, so that a builder
// grows only for the largest file it has seen.
func (b *Builder) grow() {
	b.slots = make([]int32, 2*len(b.slots))
	mask := uint64(len(b.slots) - 1)
	for fi := range b.flows {
		i := b.flows[fi].hash & mask
		for b.slots[i] != 0 {
			i = (i + 1) & mask
		}
		b.slots[i] = int32(fi + 1)
	}
}

// overflow counts a packet that found no flow in the overflow row.
func (b *Builder) overflow(t, n, off int64, length int32) {
	b.ovPackets++
	b.ovBytes += n
	b.overflowSpan(t, off, length)
}

// overflowSpan puts a record into the overflow row's ranges: it extends
// the last range when it follows it, and starts a new one otherwise.
func (b *Builder) overflowSpan(t, off int64, length int32) {
	if len(b.spans) == 0 || t < b.ovFirst {
		b.ovFirst = t
	}
	if len(b.spans) == 0 || t > b.ovLast {
		b.ovLast = t
	}
	if len(b.spans) >= maxSpans {
		b.compactSpans()
	}
	if i := len(b.spans) - 1; i >= 0 {
		s := &b.spans[i]
		if end := off + int64(length); off == s.off+int64(s.len) && end-s.off <= math.MaxInt32 {
			s.len = int32(end - s.off)
			return
		}
	}
	b.spans = append(b.spans, span{off, length})
}

// compactSpans halves the overflow ranges by merging neighbours into one
// range covering both (and the records between them, which a query reads
// for nothing), as long as the result fits a length.
func (b *Builder) compactSpans() {
	out := b.spans[:0]
	for i := 0; i < len(b.spans); i++ {
		s := b.spans[i]
		if i+1 < len(b.spans) {
			n := b.spans[i+1]
			if end := n.off + int64(n.len); end-s.off <= math.MaxInt32 {
				s.len = int32(end - s.off)
				i++
			}
		}
		out = append(out, s)
	}
	b.spans = out
}

// addrString is the netip text of the address of t's family.
func addrString(family uint8, a *[16]byte) string {
	switch family {
	case 4:
		return netip.AddrFrom4([4]byte(a[:4])).String()
	case 6:
		return netip.AddrFrom16(*a).String()
	}
	return ""
}
