package gen

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

func FuzzParseMix(f *testing.F) {
	for _, s := range []string{"acl=3,port=1", "all", "vxlan", "bad-tlv=0,acl", "=", ",,", "acl=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMix(s)
		if err != nil {
			return
		}
		for k, w := range m {
			if k >= numKinds || w < 0 {
				t.Fatalf("ParseMix(%q) = %v", s, m)
			}
		}
	})
}

// FuzzGenerate drives the generator with arbitrary options: it either
// rejects them or produces consistent cases.
func FuzzGenerate(f *testing.F) {
	f.Add(uint64(1), uint16(1500), uint16(262144&0xffff), uint8(0), uint8(64), uint16(9000), uint8(255), 0.1)
	f.Add(uint64(2), uint16(576), uint16(64), uint8(1), uint8(14), uint16(200), uint8(1), 1.0)
	f.Fuzz(func(t *testing.T, seed uint64, mtu, snap uint16, lt, minFrame uint8, maxFrame uint16, maxVN uint8, bad float64) {
		lts := []uint8{0, 1, 113, 20, 101}
		g, err := New(Options{Seed: seed, Mix: Profiles["all"], MTU: int(mtu), Snaplen: int(snap),
			LinkType: linkTypeOf(lts[int(lt)%len(lts)]), MinFrame: int(minFrame), MaxFrame: int(maxFrame),
			MaxVN: int(maxVN), Malformed: bad})
		if err != nil {
			return
		}
		for range 50 {
			c := g.Next()
			if err := consistent(c, g.opts.Snaplen); err != nil {
				t.Fatalf("case %d (%s): %v", c.Index, c.Kind, err)
			}
		}
	})
}

// FuzzKind drives each kind with arbitrary seeds, MTUs and snap lengths.
func FuzzKind(f *testing.F) {
	for _, k := range Kinds() {
		f.Add(uint8(k), uint64(k), uint16(1500), uint16(0), uint8(0))
	}
	f.Add(uint8(KindFragSnap), uint64(7), uint16(576), uint16(200), uint8(1))
	f.Add(uint8(KindIDReuse), uint64(8), uint16(9000), uint16(0), uint8(4))
	f.Fuzz(func(t *testing.T, kind uint8, seed uint64, mtu, snap uint16, lt uint8) {
		lts := []layers.LinkType{0, layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2, layers.LinkTypeRaw}
		g, err := New(Options{Seed: seed, Mix: Mix{Kind(kind % uint8(numKinds)): 1}, MTU: int(mtu), Snaplen: int(snap),
			LinkType: lts[int(lt)%len(lts)]})
		if err != nil {
			return
		}
		for range 20 {
			c := g.Next()
			if err := consistent(c, g.opts.Snaplen); err != nil {
				t.Fatalf("case %d (%s): %v", c.Index, c.Kind, err)
			}
			if _, err := json.Marshal(c.Truth()); err != nil {
				t.Fatalf("case %d: truth: %v", c.Index, err)
			}
		}
	})
}

// consistent checks what every case must satisfy: records within their
// wire length and the snap length, a step per packet, every result
// completed by one step, and an account that adds up.
func consistent(c *Case, snaplen int) error {
	if len(c.Packets) == 0 || len(c.Steps) != len(c.Packets) {
		return fmt.Errorf("%d packets, %d steps", len(c.Packets), len(c.Steps))
	}
	for _, w := range c.Packets {
		if len(w.Data) > w.WireLen || len(w.Data) > snaplen {
			return fmt.Errorf("captured %d of %d", len(w.Data), w.WireLen)
		}
	}
	done := make([]int, 1+len(c.Others))
	read := 0
	for _, s := range c.Steps {
		switch s.Status {
		case mirror.Decoded, mirror.Failed:
			if s.Result < 0 || s.Result > len(c.Others) || s.Returned || status(c.Result(s)) != s.Status {
				return fmt.Errorf("step %+v", s)
			}
			done[s.Result]++
			read += max(c.Result(s).Fragments, 1)
		case mirror.Held:
			if s.Returned {
				read++
			}
		case mirror.Merged, mirror.Duplicate:
			read++
		default:
			return fmt.Errorf("step %+v", s)
		}
	}
	if read != len(c.Packets) {
		return fmt.Errorf("the steps account for %d of %d packets", read, len(c.Packets))
	}
	for r, n := range done {
		e := &c.Expect
		if r > 0 {
			e = &c.Others[r-1]
		}
		if n != 1 && (r > 0 || e.Reason != "fragment-incomplete") {
			return fmt.Errorf("result %d completed %d times", r, n)
		}
		if e.Reason == "" && e.Mode != mirror.ModeOther &&
			(len(e.Frame) < 14 || len(e.Frame) > e.FrameLen || e.Truncated != (len(e.Frame) < e.FrameLen)) {
			return fmt.Errorf("result %d: frame %d of %d, truncated %v", r, len(e.Frame), e.FrameLen, e.Truncated)
		}
	}
	return nil
}

// FuzzReadTLVs holds the generator's reading of a TLV list to the brute
// force count of the consistent readings wherever the generator is sure.
func FuzzReadTLVs(f *testing.F) {
	f.Add([]byte{3, 1, 'a', 255, 0})
	f.Add([]byte{3, 200, 'a'})
	f.Add([]byte{})
	f.Add([]byte{7, 0, 7, 0, 7})
	g, err := New(Options{Seed: 1, Mix: Mix{KindWrapped: 1, KindBadWrapped: 1, KindUnknownTLV: 1, KindOddTLV: 1}})
	if err != nil {
		f.Fatal(err)
	}
	for range 12 {
		g.Next()
		f.Add(slices.Clone(g.payload))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		v := readTLVs(p)
		if end, ok := asWritten(p); ok {
			if !v.ok || !v.sure || v.end != end || v.recovered {
				t.Fatalf("%x: as written to %d, read %+v", p, end, v)
			}
			return
		}
		if !v.sure {
			return
		}
		rs, complete := readings(p)
		if complete && v.ok != (len(rs) == 1) || v.ok && rs[0].end != v.end {
			t.Fatalf("%x: read %+v, brute force %v", p, v, rs)
		}
	})
}

func linkTypeOf(v uint8) layers.LinkType {
	if v == 20 { // 276 does not fit a byte
		return layers.LinkTypeLinuxSLL2
	}
	return layers.LinkType(v)
}
