package mirror

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/gopacket/gopacket/layers"
)

var fuzzLinkTypes = []layers.LinkType{layers.LinkTypeEthernet, linkTypeLinuxSLL, linkTypeSLL2, linkTypeRaw, LinkTypeJuniperVN}

// packets splits a fuzz input into packets, each behind a 2-byte length.
func packets(data []byte) [][]byte {
	var ps [][]byte
	for len(data) >= 2 {
		n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
		ps = append(ps, data[2:2+n])
		data = data[2+n:]
	}
	return ps
}

func within(sub, whole []byte) bool {
	if len(sub) == 0 {
		return true
	}
	s, w := uintptr(unsafe.Pointer(unsafe.SliceData(sub))), uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
	return s >= w && s+uintptr(len(sub)) <= w+uintptr(len(whole))
}

// FuzzDecode decodes a sequence of packets with one decoder. Its corpus
// holds a generated case of every kind (testdata/fuzz/FuzzDecode/gen-*,
// written by TestFuzzCorpus).
func FuzzDecode(f *testing.F) {
	inner := innerFrame(f, 200)
	seed := func(lt byte, pkts ...[]byte) {
		var b []byte
		for _, p := range pkts {
			b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
			b = append(b, p...)
		}
		f.Add(lt, uint16(0), b)
	}
	acl := outerUDP4(f, 8099, append(aclTLVs("default-domain:admin:a", "default-domain:admin:b", FlagPass|FlagIngress), inner...))
	seed(0, acl)
	seed(0, outerUDP6(f, 8099, append(tlv(3, []byte("x:y:z")), append([]byte{0xff, 0}, inner...)...)))
	seed(0, outerUDP4(f, 4789, append([]byte{8, 0, 0, 0, 0, 0, 1, 0}, inner...)))
	seed(0, outerUDP4(f, 8099, append(append(legacyHeader(1475000000, 1, uint32(len(inner)), uint32(len(inner))), aclTLVs("a", "b", 0)...), inner...)))
	big := outerUDP4(f, 8099, append(aclTLVs("a:b:c", "a:b:d", FlagPass), innerFrame(f, 1514)...))
	seed(0, fragment4(big, 1000)...)
	seed(3, acl[14:])
	seed(4, acl[42:])
	f.Fuzz(func(t *testing.T, lt byte, vlan uint16, data []byte) {
		d := NewDecoder(Config{Traffic: Traffic{MirrorVLAN: vlan & 0x0fff}, PassThrough: lt&0x80 != 0, Reassembly: ReassemblyConfig{MaxDatagrams: 4, MaxBytes: 1 << 16}})
		held, absorbed, returned := 0, 0, 0
		back := func(p *Packet) {
			if p.Err != ErrFragment {
				t.Fatalf("fragment handed back with %v", p.Err)
			}
			returned++
		}
		for _, raw := range packets(data) {
			buf := append([]byte(nil), raw...)
			p := &Packet{LinkType: fuzzLinkTypes[int(lt&0x7f)%len(fuzzLinkTypes)], Data: buf, WireLen: len(buf) + int(lt>>4)}
			switch st := d.Decode(p); st {
			case Held:
				held++
				continue
			case Decoded:
				if p.Err != OK || p.Mode == ModeNone || int(p.Mode) >= NumModes {
					t.Fatalf("decoded with err %v mode %v", p.Err, p.Mode)
				}
				// A rewritten frame (a stripped tag, a relabelled EtherType)
				// lives in the decoder's scratch buffer, never in the input.
				if !(within(p.Frame, p.Data) || within(p.Frame, d.scratch)) || p.FrameLen < len(p.Frame) || p.Truncated != (len(p.Frame) < p.FrameLen) {
					t.Fatalf("frame %d/%d outside data %d", len(p.Frame), p.FrameLen, len(p.Data))
				}
				for _, vn := range [][]byte{p.Meta.SrcVN, p.Meta.DstVN, p.Meta.TLVs} {
					if !within(vn, p.Data) {
						t.Fatalf("metadata outside data")
					}
				}
				_ = AppendComment(nil, p)
			case Failed:
				if p.Err == OK || int(p.Err) >= NumReasons || p.ErrOffset < 0 || p.ErrOffset > len(p.Data) {
					t.Fatalf("failed with %v at %d", p.Err, p.ErrOffset)
				}
			case Merged, Duplicate:
				// An outer fragment counted, with nothing to deliver.
				if p.Err != OK || p.Frame != nil {
					t.Fatalf("status %d with err %v, frame of %d bytes", st, p.Err, len(p.Frame))
				}
				continue
			default:
				t.Fatalf("status %d", st)
			}
			if p.Fragments > 0 {
				absorbed += p.Fragments - 1
			}
			d.Expire(p.Timestamp, back)
		}
		d.Flush(back)
		if held != absorbed+returned {
			t.Fatalf("held %d fragments, %d reassembled and %d handed back", held, absorbed, returned)
		}
		if s := d.ReassemblyStats(); s.Pending != 0 || s.PendingSize != 0 {
			t.Fatalf("after flush: %+v", s)
		}
	})
}

func FuzzTLV(f *testing.F) {
	f.Add(aclTLVs("default-domain:admin:a", "default-domain:admin:b", FlagPass), 0)
	f.Add([]byte{0xff, 0}, 0)
	f.Add(append(tlv(9, []byte{1, 2}), 0xff, 0), 3)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		end := len(data)
		if cut > 0 && cut < len(data) {
			data = data[:len(data)-cut] // captured less than the datagram holds
		}
		var m Meta
		n, r, off := parseTLVs(&m, data, 0, end)
		if r != OK {
			if off < 0 || off > end {
				t.Fatalf("error offset %d of %d", off, end)
			}
			return
		}
		if n < 2 || n > len(data) || data[n-2] != 0xff || data[n-1] != 0 {
			t.Fatalf("end %d of %d", n, len(data))
		}
	})
}

func FuzzAppendName(f *testing.F) {
	f.Add([]byte("default-domain:admin:vn-left"))
	f.Add([]byte("default-domain:admin:vn web"))
	f.Add([]byte("default-domain:admin:r\xc3\xa9seau-prod"))
	f.Add([]byte("abcdefg\x7f\xff\"\\"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := string(AppendName(nil, b))
		if !strings.HasPrefix(got, `"`) {
			if got != string(b) || strings.ContainsAny(got, " \t\n") || !utf8.ValidString(got) {
				t.Fatalf("bare %q for %q", got, b)
			}
			return
		}
		back, err := strconv.Unquote(got)
		if err != nil || back != string(b) {
			t.Fatalf("AppendName(%q) = %s: unquotes to %q, %v", b, got, back, err)
		}
	})
}
