package mirror

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// feed decodes packets in order and returns the statuses, the decoded
// frames (copied) and the packets handed back as failed.
type feed struct {
	d        *Decoder
	statuses []Status
	frames   []*Packet
	failed   []Reason
}

func (f *feed) add(t *testing.T, data []byte, ts time.Time) Status {
	t.Helper()
	p := &Packet{Timestamp: ts, LinkType: layers.LinkTypeEthernet, Data: data, WireLen: len(data)}
	st := f.d.Decode(p)
	f.statuses = append(f.statuses, st)
	if st == Decoded {
		q := *p
		q.Frame, q.Meta.SrcVN = bytes.Clone(p.Frame), bytes.Clone(p.Meta.SrcVN)
		f.frames = append(f.frames, &q)
	}
	if st == Failed {
		f.failed = append(f.failed, p.Err)
	}
	f.d.Expire(ts, func(p *Packet) { f.failed = append(f.failed, p.Err) })
	return st
}

func withID4(pkt []byte, id uint16) []byte {
	pkt = bytes.Clone(pkt)
	binary.BigEndian.PutUint16(pkt[18:], id)
	return pkt
}

func bigDatagram(t *testing.T, fill byte) ([]byte, []byte) {
	inner := innerFrame(t, 1514)
	for i := 42; i < len(inner); i++ {
		inner[i] = fill
	}
	return outerUDP4(t, 8099, append(aclTLVs("d:p:a", "d:p:b", FlagPass|FlagMirror), inner...)), inner
}

// An IP ID the vRouter reuses after a lost first fragment must not join
// the stale tail to the new datagram's head (the distance rule); a head
// that is merely late, within the distance, still joins its tail.
func TestReassemblyIDReuse(t *testing.T) {
	pktA, innerA := bigDatagram(t, 0xaa)
	pktB, innerB := bigDatagram(t, 0xbb)
	fa, fb := fragment4(withID4(pktA, 7), 1480), fragment4(withID4(pktB, 7), 1480)
	small := outerUDP4(t, 8099, append(aclTLVs("d:p:a", "d:p:b", FlagPass), innerFrame(t, 60)...))
	ts := time.Unix(1000, 0)
	run := func(between int, head []byte, tail []byte) *feed {
		f := &feed{d: NewDecoder(Config{})}
		f.add(t, fa[1], ts)
		for i := range between {
			f.add(t, withID4(small, uint16(100+i)), ts)
		}
		f.add(t, head, ts)
		if tail != nil {
			f.add(t, tail, ts)
		}
		f.d.Flush(func(p *Packet) { f.failed = append(f.failed, p.Err) })
		return f
	}
	for _, between := range []int{5, 50} {
		f := run(between, fb[0], fb[1])
		last := f.frames[len(f.frames)-1]
		if len(f.frames) != between+1 || !bytes.Equal(last.Frame, innerB) {
			t.Errorf("%d datagrams between: B not decoded exactly", between)
		}
		if len(f.failed) != 1 || f.failed[0] != ErrFragment || f.d.ReassemblyStats().Stale != 1 {
			t.Errorf("%d datagrams between: failures %v, %+v", between, f.failed, f.d.ReassemblyStats())
		}
	}
	for _, between := range []int{0, 4} {
		f := run(between, fa[0], nil)
		last := f.frames[len(f.frames)-1]
		if len(f.frames) != between+1 || !bytes.Equal(last.Frame, innerA) || len(f.failed) != 0 {
			t.Errorf("%d datagrams between: A's late head not joined (failures %v)", between, f.failed)
		}
	}
}

// Different sources do not count towards each other's distance.
func TestReassemblyDistancePerSource(t *testing.T) {
	pkt, inner := bigDatagram(t, 0xcc)
	frags := fragment4(withID4(pkt, 9), 1480)
	other := outerUDP4(t, 8099, append(aclTLVs("d:p:a", "d:p:b", FlagPass), innerFrame(t, 60)...))
	f := &feed{d: NewDecoder(Config{})}
	ts := time.Unix(1000, 0)
	f.add(t, frags[1], ts)
	for i := range 20 {
		o := withID4(other, uint16(i))
		o[14+12+3] = 99 // another source: 10.0.0.99
		f.add(t, o, ts)
	}
	f.add(t, frags[0], ts)
	if n := len(f.frames); n != 21 || !bytes.Equal(f.frames[20].Frame, inner) {
		t.Fatalf("%d frames; the late head was not joined to its tail", n)
	}
}

func TestReassemblyDuplicates(t *testing.T) {
	pkt, inner := bigDatagram(t, 0xdd)
	frags := fragment4(withID4(pkt, 5), 1480)
	f := &feed{d: NewDecoder(Config{})}
	ts := time.Unix(1000, 0)
	f.add(t, frags[0], ts)
	for range 1000 {
		if st := f.add(t, frags[0], ts); st != Duplicate {
			t.Fatalf("a copy of a held fragment: %v", st)
		}
	}
	if s := f.d.ReassemblyStats(); s.PendingSize > 2*len(pkt)+1024 {
		t.Fatalf("1000 copies of one fragment hold %d bytes", s.PendingSize)
	}
	f.add(t, frags[1], ts)
	if len(f.frames) != 1 || !bytes.Equal(f.frames[0].Frame, inner) || f.frames[0].Fragments != 2 {
		t.Fatalf("frames %d", len(f.frames))
	}
	// After completion: a copy of either fragment is a duplicate, not an
	// error and not the start of a new datagram.
	for _, c := range frags {
		if st := f.add(t, c, ts); st != Duplicate {
			t.Fatalf("a copy after completion: %v", st)
		}
	}
	// The same offsets with other bytes are a new datagram.
	pkt2, _ := bigDatagram(t, 0xee)
	if st := f.add(t, fragment4(withID4(pkt2, 5), 1480)[0], ts); st != Held {
		t.Fatalf("another datagram with a completed one's ID: %v", st)
	}
	f.d.Flush(func(p *Packet) { f.failed = append(f.failed, p.Err) })
	if len(f.failed) != 1 || f.failed[0] != ErrFragment {
		t.Fatalf("failures %v", f.failed)
	}
}

// A first fragment cut by the snap length gives the frame, truncated, with
// its metadata; the other fragments are merged into it, before or after.
func TestReassemblyCutHead(t *testing.T) {
	pkt4, inner := bigDatagram(t, 0x11)
	pkt6 := outerUDP6(t, 8099, append(aclTLVs("d:p:a", "d:p:b", FlagPass|FlagMirror), inner...))
	for _, c := range []struct {
		name  string
		frags [][]byte
	}{{"ipv4", fragment4(pkt4, 1480)}, {"ipv6", fragment6(pkt6, 1232, 42)}} {
		for _, tailFirst := range []bool{false, true} {
			f := &feed{d: NewDecoder(Config{})}
			head, tail := c.frags[0][:200], c.frags[1]
			ts := time.Unix(1000, 0)
			order := [][]byte{head, tail}
			if tailFirst {
				order = [][]byte{tail, head}
			}
			var sts []Status
			for _, b := range order {
				p := &Packet{Timestamp: ts, LinkType: layers.LinkTypeEthernet, Data: b, WireLen: len(c.frags[0])}
				if bytes.Equal(b, tail) {
					p.WireLen = len(b)
				}
				st := f.d.Decode(p)
				sts = append(sts, st)
				if st == Decoded {
					if !p.Truncated || p.FrameLen != len(inner) || string(p.Meta.SrcVN) != "d:p:a" || !bytes.Equal(p.Frame, inner[:len(p.Frame)]) {
						t.Fatalf("%s: %d of %d bytes, truncated %v, %q", c.name, len(p.Frame), p.FrameLen, p.Truncated, p.Meta.SrcVN)
					}
					if tailFirst && p.Fragments != 2 {
						t.Fatalf("%s: the held tail is not merged: fragments %d", c.name, p.Fragments)
					}
				}
			}
			want := []Status{Decoded, Merged}
			if tailFirst {
				want = []Status{Held, Decoded}
			}
			if sts[0] != want[0] || sts[1] != want[1] {
				t.Fatalf("%s, tail first %v: statuses %v, want %v", c.name, tailFirst, sts, want)
			}
			f.d.Flush(func(p *Packet) { t.Fatalf("%s: %v handed back", c.name, p.Err) })
			if s := f.d.ReassemblyStats(); s.Pending != 0 || s.PendingSize != 0 || s.CutHeads != 1 {
				t.Fatalf("%s: %+v", c.name, s)
			}
		}
	}
}

// The reassembly bounds hold for every input, with and without raw
// copies, and a fragment that never completes costs a constant amount of
// work: the table is never scanned (see BenchmarkReassemblyFlood).
func TestReassemblyBoundedUnderFlood(t *testing.T) {
	pkt, _ := bigDatagram(t, 0x22)
	head := fragment4(pkt, 1480)[0]
	for _, discard := range []bool{false, true} {
		cfg := ReassemblyConfig{MaxDatagrams: 256, MaxBytes: 1 << 20, DiscardRaw: discard}
		d := NewDecoder(Config{Reassembly: cfg})
		var back int
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapInuse
		ts := time.Unix(1000, 0)
		for i := range 200000 {
			f := withID4(head, uint16(i))
			f[14+12+2] = byte(i >> 16) // vary the source past 16 bits of IDs
			p := &Packet{Timestamp: ts, LinkType: layers.LinkTypeEthernet, Data: f, WireLen: len(f)}
			d.Decode(p)
			d.Expire(ts, func(*Packet) { back++ })
			if s := d.ReassemblyStats(); s.Pending > cfg.MaxDatagrams || s.PendingSize > cfg.MaxBytes+2*len(f) {
				t.Fatalf("discard %v: %+v", discard, s)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if grown := int64(ms.HeapInuse) - int64(before); grown > 8<<20 {
			t.Errorf("discard %v: heap grew by %d bytes", discard, grown)
		}
		d.Flush(func(*Packet) { back++ })
		if back != 200000 {
			t.Errorf("discard %v: %d of 200000 fragments handed back", discard, back)
		}
	}
}

func BenchmarkReassemblyFlood(b *testing.B) {
	t := &testing.T{}
	pkt, _ := bigDatagram(t, 0x33)
	head := fragment4(pkt, 1480)[0]
	d := NewDecoder(Config{Reassembly: ReassemblyConfig{DiscardRaw: true}})
	f := bytes.Clone(head)
	p := &Packet{LinkType: layers.LinkTypeEthernet}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint16(f[18:], uint16(i))
		f[14+12+2] = byte(i >> 16)
		p.Data, p.WireLen = f, len(f)
		d.Decode(p)
		d.Expire(p.Timestamp, func(*Packet) {})
	}
}

// Two readings of a wrapped name list that both hold are ambiguous:
// malformed, never a guess.
func TestWrappedNameAmbiguous(t *testing.T) {
	frame := innerFrame(t, 60)
	name := bytes.Repeat([]byte("n"), 300)
	var list []byte
	list = append(list, 3, byte(len(name)))
	list = append(list, name...)
	list = append(list, 0xff, 0)
	good := outerUDP4(t, 8099, append(bytes.Clone(list), frame...))
	d := NewDecoder(Config{})
	p, st := decodeOne(t, d, layers.LinkTypeEthernet, good)
	if st != Decoded || !bytes.Equal(p.Meta.SrcVN, name) || !p.Meta.NameRecovered || !bytes.Equal(p.Frame, frame) {
		t.Fatalf("one reading: %v %v, %d-byte name", st, p.Err, len(p.Meta.SrcVN))
	}
	// Make the reading with the length as written hold too: after 44
	// bytes, an unknown TLV, the end marker and an LLDP frame.
	amb := bytes.Clone(list)
	n := 2 + len(name)%256
	copy(amb[n:], []byte{5, 0, 0xff, 0})
	amb[n+4+12], amb[n+4+13] = 0x88, 0xcc
	p, st = decodeOne(t, d, layers.LinkTypeEthernet, outerUDP4(t, 8099, append(amb, frame...)))
	if st != Failed || p.Err != ErrTLV {
		t.Fatalf("two readings: %v %v, %d-byte name", st, p.Err, len(p.Meta.SrcVN))
	}
}

func TestPlausibleFrame(t *testing.T) {
	ip := innerFrame(t, 100)
	padded := innerFrame(t, 50) // serialised with padding to 60 bytes
	for _, c := range []struct {
		f    []byte
		n    int
		want bool
	}{
		{ip, len(ip), true},
		{ip, len(ip) + 1, false},    // IPv4 length does not match
		{padded, len(padded), true}, // padded to 60
		{append(padded, make([]byte, 10)...), len(padded) + 10, false}, // more than padding
		{ip[:30], len(ip), true}, // cut by the snap length: what is there holds
		{ip[:13], 13, false},
		{[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xcc}, 60, true}, // LLDP
		{[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x00, 0x26}, 60, true}, // 802.3 length
		{[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x05, 0xdc}, 60, false},
	} {
		if got := plausibleFrame(c.f, c.n); got != c.want {
			t.Errorf("plausibleFrame(% x..., %d) = %v", c.f[:min(16, len(c.f))], c.n, got)
		}
	}
}
