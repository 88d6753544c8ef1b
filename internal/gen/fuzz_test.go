package gen

import (
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
			if len(c.Packets) == 0 {
				t.Fatalf("case %d (%s): no packets", c.Index, c.Kind)
			}
			for _, w := range c.Packets {
				if len(w.Data) > w.WireLen || len(w.Data) > g.opts.Snaplen {
					t.Fatalf("case %d: captured %d of %d", c.Index, len(w.Data), w.WireLen)
				}
			}
			if c.Reason == "" && c.Mode != mirror.ModeOther &&
				(len(c.Frame) < 14 || len(c.Frame) > c.FrameLen || c.Truncated != (len(c.Frame) < c.FrameLen)) {
				t.Fatalf("case %d (%s): frame %d of %d, truncated %v", c.Index, c.Kind, len(c.Frame), c.FrameLen, c.Truncated)
			}
		}
	})
}

func linkTypeOf(v uint8) layers.LinkType {
	if v == 20 { // 276 does not fit a byte
		return layers.LinkTypeLinuxSLL2
	}
	return layers.LinkType(v)
}
