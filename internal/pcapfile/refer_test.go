package pcapfile

import (
	"bytes"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// vecSink is a VectorWriter that concatenates what it is given.
type vecSink struct {
	bytes.Buffer
	vectors int
}

func (v *vecSink) WriteVector(buf []byte, vec [][]byte) ([]byte, [][]byte, error) {
	for _, b := range vec {
		v.Buffer.Write(b)
	}
	v.vectors++
	clear(vec)
	return buf[:0], vec[:0], nil
}

// Frames written by reference give the same file, byte for byte, as frames
// copied, in every format, across many flushes.
func TestReferSameBytes(t *testing.T) {
	src := testPackets(t)
	// Put every frame into one region, as a mapped input file holds them.
	var region []byte
	var offs [][2]int
	for range 600 {
		for _, p := range src {
			data := p.Frame
			if data == nil {
				data = p.Data
			}
			offs = append(offs, [2]int{len(region), len(data)})
			region = append(region, data...)
		}
	}
	region = append(region, bytes.Repeat([]byte{0xee}, 3)...) // nothing ends exactly at the region's end
	pkts := make([]*mirror.Packet, len(offs))
	for i, o := range offs {
		q := *src[i%len(src)]
		b := region[o[0] : o[0]+o[1] : o[0]+o[1]]
		if q.Frame != nil {
			q.Frame = b
		} else {
			q.Data = b
		}
		pkts[i] = &q
	}
	for _, o := range []Options{{Format: FormatPcapNG}, {Format: FormatPcap}, {Format: FormatPcap, Nanosecond: true, SnapLen: 200},
		{Format: FormatJuniperVN}, {Format: FormatRaw}, {Format: FormatPcapNG, SnapLen: 150}} {
		pkts := pkts
		if o.Format == FormatPcap { // classic pcap holds Ethernet only
			var eth []*mirror.Packet
			for _, p := range pkts {
				if (p.Frame != nil && p.Mode != mirror.ModeOther && p.Mode != mirror.ModeNone) || p.LinkType == layers.LinkTypeEthernet {
					eth = append(eth, p)
				}
			}
			pkts = eth
		}
		want := writeAll(t, o, pkts)
		var sink vecSink
		w, err := NewRefWriter(&sink, o)
		if err != nil {
			t.Fatal(err)
		}
		w.Refer(region)
		for _, p := range pkts {
			if err := w.WritePacket(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sink.Bytes(), want) {
			t.Fatalf("%+v: %d bytes by reference, %d copied", o, sink.Len(), len(want))
		}
		if o.Format != FormatRaw && sink.vectors < 2 { // raw writes p.Data, which is outside the region here
			t.Errorf("%+v: %d vector writes; the references were not used", o, sink.vectors)
		}
	}
}

// smallSink is a vecSink that hands back small buffers, which records
// outgrow while they are encoded.
type smallSink struct{ vecSink }

func (v *smallSink) WriteVector(buf []byte, vec [][]byte) ([]byte, [][]byte, error) {
	v.vecSink.WriteVector(buf, vec)
	return make([]byte, 0, 200), vec[:0], nil
}

// A record whose comment outgrows the buffer after its frame was referred
// to is written whole: its block length, patched in last, is not lost with
// the buffer it outgrew.
func TestReferOutgrownBuffer(t *testing.T) {
	var region []byte
	for i := range 50 {
		region = append(region, udpFrame(t, i, 300)...)
	}
	n := len(region) / 50
	var pkts []*mirror.Packet
	for i := range 50 {
		p := juniperPacket(t, i, time.Unix(int64(1700000000+i), 0), mirror.DirEgress)
		p.Frame = region[i*n : (i+1)*n : (i+1)*n]
		p.FrameLen = n
		p.Meta.SrcVN = bytes.Repeat([]byte{'a' + byte(i%26)}, 100+40*i) // comments of up to 2 KB
		pkts = append(pkts, p)
	}
	for _, f := range []Format{FormatPcapNG, FormatJuniperVN} {
		o := Options{Format: f}
		want := writeAll(t, o, pkts)
		var sink smallSink
		w, err := NewRefWriter(&sink, o)
		if err != nil {
			t.Fatal(err)
		}
		w.Refer(region)
		if err := w.Flush(); err != nil { // the header; small buffers from now on
			t.Fatal(err)
		}
		for _, p := range pkts {
			if err := w.WritePacket(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sink.Bytes(), want) {
			t.Errorf("%v: %d bytes by reference differ from the %d copied", f, sink.Len(), len(want))
		}
		if sink.vectors < 10 {
			t.Errorf("%v: %d vector writes; the buffer was never outgrown", f, sink.vectors)
		}
	}
}
