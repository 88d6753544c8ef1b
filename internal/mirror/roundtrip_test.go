package mirror_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// The generator encodes from the wire-format description on its own; every
// case it makes must decode to exactly what it says it put in.
func TestRoundTripGenerated(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		g, err := gen.New(gen.Options{Seed: seed, Mix: gen.Profiles["all"], MirrorVLAN: 999})
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[gen.Kind]int{}
		for range 4000 {
			c := g.Next()
			kinds[c.Kind]++
			checkCase(t, seed, c)
		}
		if len(kinds) < 20 {
			t.Fatalf("seed %d: only %d case kinds generated: %v", seed, len(kinds), kinds)
		}
	}
}

func checkCase(t *testing.T, seed uint64, c *gen.Case) {
	t.Helper()
	d := mirror.NewDecoder(mirror.Config{MirrorVLAN: 999, PassThrough: true})
	var decoded []*mirror.Packet
	var failed []mirror.Reason
	for _, w := range c.Packets {
		p := &mirror.Packet{Timestamp: w.Timestamp, LinkType: w.LinkType, Data: bytes.Clone(w.Data), WireLen: w.WireLen}
		switch d.Decode(p) {
		case mirror.Decoded:
			q := *p
			q.Frame = bytes.Clone(p.Frame)
			decoded = append(decoded, &q)
		case mirror.Failed:
			failed = append(failed, p.Err)
		}
	}
	d.Flush(func(p *mirror.Packet) { failed = append(failed, p.Err) })
	where := func() string { return fmt.Sprintf("seed %d case %d (%s)", seed, c.Index, c.Kind) }

	reason := c.Reason
	if reason == "not-mirror" {
		reason = "" // passed through
	}
	if reason != "" {
		if len(decoded) != 0 || len(failed) == 0 {
			t.Fatalf("%s: want %s, got %d decoded, failures %v", where(), reason, len(decoded), failed)
		}
		for _, r := range failed {
			if r.String() != reason {
				t.Fatalf("%s: want %s, got %v", where(), reason, failed)
			}
		}
		if reason == "fragment-incomplete" && len(failed) != len(c.Packets) {
			t.Fatalf("%s: %d of %d fragments handed back", where(), len(failed), len(c.Packets))
		}
		return
	}
	if len(decoded) != 1 || len(failed) != 0 {
		t.Fatalf("%s: %d decoded, failures %v", where(), len(decoded), failed)
	}
	p := decoded[0]
	m := p.Meta
	switch {
	case p.Mode != c.Mode:
		t.Fatalf("%s: mode %v, want %v", where(), p.Mode, c.Mode)
	case !bytes.Equal(p.Frame, c.Frame):
		t.Fatalf("%s: frame differs: got %d bytes, want %d", where(), len(p.Frame), len(c.Frame))
	case p.FrameLen != c.FrameLen || p.Truncated != c.Truncated:
		t.Fatalf("%s: frame length %d truncated %v, want %d %v", where(), p.FrameLen, p.Truncated, c.FrameLen, c.Truncated)
	case !sameVN(m.SrcVN, c.SrcVN) || !sameVN(m.DstVN, c.DstVN):
		t.Fatalf("%s: VNs %q %q", where(), m.SrcVN, m.DstVN)
	case m.Host.IsValid() != (c.Host != nil) || (c.Host != nil && m.Host != netip.AddrFrom4(*c.Host)):
		t.Fatalf("%s: host %v", where(), m.Host)
	case m.HasFlags() != (c.Flags != nil) || (c.Flags != nil && m.Flags != *c.Flags):
		t.Fatalf("%s: flags %#x", where(), m.Flags)
	case m.Direction != c.Direction:
		t.Fatalf("%s: direction %v, want %v", where(), m.Direction, c.Direction)
	case m.HasVNI != (c.VNI != nil) || (c.VNI != nil && m.VNI != *c.VNI):
		t.Fatalf("%s: VNI %d", where(), m.VNI)
	case c.Mode == mirror.ModeVLAN && m.VLAN != c.VLAN:
		t.Fatalf("%s: VLAN %d", where(), m.VLAN)
	case m.Legacy != (c.Legacy != 0) || (c.Legacy != 0 && !m.RecordTime.Equal(c.RecordTime)):
		t.Fatalf("%s: legacy %v %v", where(), m.Legacy, m.RecordTime)
	case len(c.Packets) > 1 && p.Fragments != len(c.Packets):
		t.Fatalf("%s: reassembled from %d of %d fragments", where(), p.Fragments, len(c.Packets))
	}
}

func sameVN(got []byte, want *string) bool {
	if want == nil {
		return got == nil
	}
	return got != nil && string(got) == *want
}
