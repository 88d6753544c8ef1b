package mirror_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// The generator encodes from the wire-format description and the decoder
// contract on its own; every case it makes must decode to exactly what it
// says: each packet's status, the frame byte for byte, every metadata
// field, the failures, and an account in which every packet read is
// decoded, failed, merged or a duplicate.

const roundTripCases = 400

// TestRoundTrip checks every case kind on its own, with a decoder per
// case: go test -run 'TestRoundTrip/overlay' names the kind.
func TestRoundTrip(t *testing.T) {
	for _, k := range gen.Kinds() {
		t.Run(k.String(), func(t *testing.T) {
			t.Parallel()
			made := 0
			for _, seed := range []uint64{1, 2} {
				g, err := gen.New(gen.Options{Seed: seed, Mix: gen.Mix{k: 1}, Traffic: mirror.Traffic{MirrorVLAN: 999}})
				if err != nil {
					t.Fatal(err)
				}
				var bad []string
				wrong := 0
				for range roundTripCases {
					c := g.Next()
					made++
					if err := checkCase(c); err != nil {
						if wrong++; len(bad) < 3 {
							bad = append(bad, fmt.Sprintf("case %d: %v", c.Index, err))
						}
					}
				}
				if wrong > 0 {
					t.Errorf("seed %d: %d of %d cases wrong, e.g.\n%s", seed, wrong, roundTripCases, joinLines(bad))
				}
			}
			if made == 0 {
				t.Fatal("no case generated")
			}
		})
	}
}

// TestRoundTripStream decodes the cases of every kind one after another
// with one decoder, as a capture holds them: held fragments, the
// reassembler's memory of recent datagrams and its distance counters
// carry from case to case, and must not change any case's result.
func TestRoundTripStream(t *testing.T) {
	g, err := gen.New(gen.Options{Seed: 4, Mix: gen.Profiles["all"], Traffic: mirror.Traffic{MirrorVLAN: 999}})
	if err != nil {
		t.Fatal(err)
	}
	d := mirror.NewDecoder(mirror.Config{Traffic: mirror.Traffic{MirrorVLAN: 999}, PassThrough: true})
	var cases []*gen.Case
	for range 3000 {
		c := g.Next()
		if c.Port != 0 {
			continue // decoded with another configuration
		}
		cases = append(cases, c.Clone())
	}
	var a account
	back := handedBack{}
	collect := back.collector(&a)
	wrong := 0
	var bad []string
	for _, c := range cases {
		err := decodeCase(d, c, &a, collect)
		if err == nil {
			continue
		}
		if wrong++; len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("case %d (%s): %v", c.Index, c.Kind, err))
		}
	}
	d.Flush(collect)
	for _, c := range cases {
		if err := back.check(c); err != nil {
			if wrong++; len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("case %d (%s): %v", c.Index, c.Kind, err))
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d cases wrong, e.g.\n%s", wrong, len(cases), joinLines(bad))
	}
	read := 0
	for _, c := range cases {
		read += len(c.Packets)
	}
	if err := a.check(read); err != nil {
		t.Error(err)
	}
}

// TestRoundTripScenarios decodes every scenario (gen.Scenarios), three
// runs of it, case by case and as one stream with one decoder.
func TestRoundTripScenarios(t *testing.T) {
	for _, name := range gen.ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			g, err := gen.New(gen.Options{Scenario: name})
			if err != nil {
				t.Fatal(err)
			}
			d := mirror.NewDecoder(mirror.Config{})
			var a account
			back := handedBack{}
			collect := back.collector(&a)
			var cases []*gen.Case
			read := 0
			for range 3 * g.SceneLen() {
				c := g.Next().Clone()
				if err := checkCase(c); err != nil {
					t.Fatalf("case %d (%s) on its own: %v", c.Index, c.Kind, err)
				}
				if err := decodeCase(d, c, &a, collect); err != nil {
					t.Fatalf("case %d (%s) in the stream: %v", c.Index, c.Kind, err)
				}
				cases = append(cases, c)
				read += len(c.Packets)
			}
			d.Flush(collect)
			for _, c := range cases {
				if err := back.check(c); err != nil {
					t.Fatalf("case %d: %v", c.Index, err)
				}
			}
			if err := a.check(read); err != nil {
				t.Fatal(err)
			}
			if len(cases) == 0 {
				t.Fatal("no case generated")
			}
		})
	}
}

// FuzzRoundTrip generates cases of any kind with any seed, MTU and outer
// link type: each must decode as the generator says.
func FuzzRoundTrip(f *testing.F) {
	for _, k := range gen.Kinds() {
		f.Add(uint8(k), uint64(k), uint16(1500), uint8(0))
	}
	f.Add(uint8(gen.KindFragSnap), uint64(1), uint16(576), uint8(1))
	f.Add(uint8(gen.KindOverlay), uint64(2), uint16(9000), uint8(4))
	lts := []layers.LinkType{0, layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2, layers.LinkTypeRaw}
	f.Fuzz(func(t *testing.T, kind uint8, seed uint64, mtu uint16, lt uint8) {
		k := gen.Kind(int(kind) % len(gen.Kinds()))
		g, err := gen.New(gen.Options{Seed: seed, Mix: gen.Mix{k: 1}, MTU: int(mtu), LinkType: lts[int(lt)%len(lts)], Traffic: mirror.Traffic{MirrorVLAN: 999}})
		if err != nil {
			return
		}
		for range 10 {
			c := g.Next()
			if err := checkCase(c); err != nil {
				t.Fatalf("case %d (%s): %v", c.Index, c.Kind, err)
			}
		}
	})
}

var writeCorpus = flag.Bool("write-corpus", false, "rewrite the generated seeds in testdata/fuzz")

// TestFuzzCorpus keeps a generated case of every kind in the corpus of
// FuzzDecode, and the metadata of every kind that has some in FuzzTLV's:
// go test -run TestFuzzCorpus -write-corpus rewrites them after the
// generator changed.
func TestFuzzCorpus(t *testing.T) {
	for _, k := range gen.Kinds() {
		if k == gen.KindBadLinkType {
			continue // FuzzDecode draws link types from its own list
		}
		g, err := gen.New(gen.Options{Seed: 1, Mix: gen.Mix{k: 1}, LinkType: layers.LinkTypeEthernet, MTU: 1000, MaxFrame: 1600, Traffic: mirror.Traffic{MirrorVLAN: 999}})
		if err != nil {
			t.Fatal(err)
		}
		c := g.Next()
		var pkts []byte
		for _, w := range c.Packets {
			pkts = binary.BigEndian.AppendUint16(pkts, uint16(len(w.Data)))
			pkts = append(pkts, w.Data...)
		}
		// FuzzDecode(lt byte, vlan uint16, data []byte): Ethernet, the
		// generator's mirror VLAN.
		corpusFile(t, "FuzzDecode", "gen-"+k.String(), fmt.Sprintf("byte(%q)\nuint16(999)\n[]byte(%q)\n", byte(0), pkts))
		for range 20 {
			if p := juniperPayload(c); p != nil {
				corpusFile(t, "FuzzTLV", "gen-"+k.String(), fmt.Sprintf("[]byte(%q)\nint(0)\n", p))
				break
			}
			c = g.Next()
		}
	}
}

// juniperPayload returns the UDP payload of a case of one whole Ethernet
// record to a Juniper-header port, or nil.
func juniperPayload(c *gen.Case) []byte {
	w := c.Packets[0]
	if len(c.Packets) != 1 || len(w.Data) < w.WireLen || c.Mode != mirror.ModeJuniper && c.Reason != "bad-tlv" ||
		c.Legacy != 0 || c.Overlay != 0 {
		return nil
	}
	pkt := gopacket.NewPacket(w.Data, layers.LayerTypeEthernet, gopacket.NoCopy)
	if u, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && (u.DstPort == mirror.DefaultPort || u.DstPort == layers.UDPPort(c.Port)) {
		return u.Payload
	}
	return nil
}

func corpusFile(t *testing.T, target, name, values string) {
	t.Helper()
	file := filepath.Join("testdata", "fuzz", target, name)
	want := []byte("go test fuzz v1\n" + values)
	if *writeCorpus {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s is missing or was made by another generator: go test -run TestFuzzCorpus -write-corpus", file)
	}
}

// account counts what the decoder did with the packets read.
type account struct {
	decoded, failed, merged, duplicates int
	absorbed                            int // fragments reassembled into a result they did not complete
}

func (a *account) check(read int) error {
	if n := a.decoded + a.failed + a.merged + a.duplicates + a.absorbed; n != read {
		return fmt.Errorf("%d packets read, but %d decoded + %d failed + %d merged + %d duplicates + %d reassembled = %d",
			read, a.decoded, a.failed, a.merged, a.duplicates, a.absorbed, n)
	}
	return nil
}

// handedBack holds the packets a decoder handed back (Expire, Flush), by
// timestamp: every packet of a case has its own.
type handedBack map[time.Time]*mirror.Packet

func (h handedBack) collector(a *account) func(*mirror.Packet) {
	return func(p *mirror.Packet) {
		a.failed++
		q := *p
		q.Data = bytes.Clone(p.Data)
		if h[p.Timestamp] != nil {
			q.Err = mirror.Reason(mirror.NumReasons) // handed back twice: check reports it
		}
		h[p.Timestamp] = &q
	}
}

// checkCase decodes c with a decoder of its own and compares everything.
func checkCase(c *gen.Case) error {
	var a account
	back := handedBack{}
	collect := back.collector(&a)
	cfg := mirror.Config{Traffic: mirror.Traffic{MirrorVLAN: 999}, PassThrough: true}
	if c.Port != 0 {
		if err := checkUnconfiguredPort(c, cfg); err != nil {
			return fmt.Errorf("without port %d: %w", c.Port, err)
		}
		cfg.Traffic.Ports = []uint16{mirror.DefaultPort, c.Port}
	}
	d := mirror.NewDecoder(cfg)
	if err := decodeCase(d, c, &a, collect); err != nil {
		return err
	}
	d.Flush(collect)
	if err := back.check(c); err != nil {
		return err
	}
	return a.check(len(c.Packets))
}

// decodeCase decodes the packets of c with d and compares each status and
// result; packets d hands back go to collect.
func decodeCase(d *mirror.Decoder, c *gen.Case, a *account, collect func(*mirror.Packet)) error {
	if len(c.Steps) != len(c.Packets) {
		return fmt.Errorf("%d steps for %d packets", len(c.Steps), len(c.Packets))
	}
	for i, w := range c.Packets {
		p := &mirror.Packet{Timestamp: w.Timestamp, LinkType: w.LinkType, Data: bytes.Clone(w.Data), WireLen: w.WireLen}
		st := d.Decode(p)
		want := c.Steps[i]
		switch st {
		case mirror.Decoded:
			a.decoded++
		case mirror.Failed:
			a.failed++
		case mirror.Merged:
			a.merged++
		case mirror.Duplicate:
			a.duplicates++
		}
		if st == mirror.Decoded || st == mirror.Failed {
			a.absorbed += max(p.Fragments-1, 0)
		}
		if st != want.Status {
			return fmt.Errorf("packet %d of %d: %s (%v), want %s", i+1, len(c.Packets),
				gen.StatusName(st), p.Err, gen.StatusName(want.Status))
		}
		if st == mirror.Decoded || st == mirror.Failed {
			if err := compare(p, c.Result(want)); err != nil {
				return fmt.Errorf("packet %d of %d: %w", i+1, len(c.Packets), err)
			}
		}
		d.Expire(p.Timestamp, collect)
	}
	return nil
}

// check checks that exactly the fragments of c that never make a result
// were handed back, once, as they were captured, failed as incomplete.
func (h handedBack) check(c *gen.Case) error {
	for i, w := range c.Packets {
		p := h[w.Timestamp]
		switch {
		case c.Steps[i].Returned && p == nil:
			return fmt.Errorf("packet %d of %d was never handed back", i+1, len(c.Packets))
		case !c.Steps[i].Returned && p != nil:
			return fmt.Errorf("packet %d of %d handed back (%v), want %s", i+1, len(c.Packets), p.Err, gen.StatusName(c.Steps[i].Status))
		case p == nil:
		case p.Err != mirror.ErrFragment || !bytes.Equal(p.Data, w.Data) || p.WireLen != w.WireLen || p.LinkType != w.LinkType:
			return fmt.Errorf("packet %d of %d handed back as %v, %d of %d bytes, changed: %v",
				i+1, len(c.Packets), p.Err, len(p.Data), p.WireLen, !bytes.Equal(p.Data, w.Data))
		}
	}
	return nil
}

// checkUnconfiguredPort decodes c without its port: the mirror datagrams
// pass through whole, and the decoder names the port as a candidate.
func checkUnconfiguredPort(c *gen.Case, cfg mirror.Config) error {
	d := mirror.NewDecoder(cfg)
	for i, w := range c.Packets {
		p := &mirror.Packet{Timestamp: w.Timestamp, LinkType: w.LinkType, Data: bytes.Clone(w.Data), WireLen: w.WireLen}
		if st := d.Decode(p); st != mirror.Decoded || p.Mode != mirror.ModeOther ||
			!bytes.Equal(p.Frame, w.Data) || p.FrameLen != w.WireLen {
			return fmt.Errorf("packet %d: %s %v mode %v, want it passed through", i+1, gen.StatusName(st), p.Err, p.Mode)
		}
	}
	ports, err := candidatePorts(d)
	if err != nil {
		return err
	}
	if n := ports[c.Port]; n != uint64(len(c.Packets)) {
		return fmt.Errorf("candidate ports %v, want %d datagrams to %d", ports, len(c.Packets), c.Port)
	}
	return nil
}

// candidatePorts returns Decoder.Hints().CandidatePorts as port -> count.
func candidatePorts(d *mirror.Decoder) (map[uint16]uint64, error) {
	ports := map[uint16]uint64{}
	for _, c := range d.Hints().CandidatePorts {
		ports[c.Port] += c.Count
	}
	return ports, nil
}

// compare checks a decoded or failed packet against the expected result.
func compare(p *mirror.Packet, e *gen.Expect) error {
	if !e.Decodes() {
		if p.Err.String() != e.Reason {
			return fmt.Errorf("failed %v, want %s", p.Err, e.Reason)
		}
		return fragments(p, e)
	}
	m, w := p.Meta, e.Meta()
	switch {
	case p.Mode != e.Mode:
		return fmt.Errorf("mode %v, want %v", p.Mode, e.Mode)
	case !bytes.Equal(p.Frame, e.Frame):
		return fmt.Errorf("frame differs: got %d bytes, want %d\n got %x\nwant %x", len(p.Frame), len(e.Frame), head(p.Frame), head(e.Frame))
	case p.FrameLen != e.FrameLen || p.Truncated != e.Truncated:
		return fmt.Errorf("frame length %d truncated %v, want %d %v", p.FrameLen, p.Truncated, e.FrameLen, e.Truncated)
	case !sameName(m.SrcVN, w.SrcVN) || !sameName(m.DstVN, w.DstVN):
		return fmt.Errorf("VNs %s %s, want %s %s", name(m.SrcVN), name(m.DstVN), name(w.SrcVN), name(w.DstVN))
	case m.Host != w.Host:
		return fmt.Errorf("host %v, want %v", m.Host, w.Host)
	case m.FlagBits != w.FlagBits || m.Flags != w.Flags:
		return fmt.Errorf("flags %#x (%d bits), want %#x (%d bits)", m.Flags, m.FlagBits, w.Flags, w.FlagBits)
	case m.OddTLVs != w.OddTLVs:
		return fmt.Errorf("%d odd TLVs, want %d", m.OddTLVs, w.OddTLVs)
	case m.NameRecovered != w.NameRecovered:
		return fmt.Errorf("name recovered %v, want %v", m.NameRecovered, w.NameRecovered)
	case m.Direction != w.Direction:
		return fmt.Errorf("direction %v, want %v", m.Direction, w.Direction)
	case m.HasVNI != w.HasVNI || m.VNI != w.VNI:
		return fmt.Errorf("VNI %d (%v), want %d (%v)", m.VNI, m.HasVNI, w.VNI, w.HasVNI)
	case p.Mode == mirror.ModeVLAN && m.VLAN != w.VLAN:
		return fmt.Errorf("VLAN %d, want %d", m.VLAN, w.VLAN)
	case m.Overlay != w.Overlay:
		return fmt.Errorf("overlay %q, want %q", m.Overlay, w.Overlay)
	case m.Legacy != w.Legacy || !m.RecordTime.Equal(w.RecordTime):
		return fmt.Errorf("legacy %v %v, want %v %v", m.Legacy, m.RecordTime, w.Legacy, w.RecordTime)
	}
	return fragments(p, e)
}

// fragments checks how many outer fragments a result was made of. A first
// fragment decoded on its own may count as one or as none.
func fragments(p *mirror.Packet, e *gen.Expect) error {
	if p.Fragments == e.Fragments || e.Fragments == 1 && p.Fragments == 0 {
		return nil
	}
	return fmt.Errorf("made of %d fragments, want %d", p.Fragments, e.Fragments)
}

func sameName(got, want []byte) bool {
	return (got == nil) == (want == nil) && bytes.Equal(got, want)
}

func name(b []byte) string {
	if b == nil {
		return "(none)"
	}
	return fmt.Sprintf("%q", b)
}

func head(b []byte) []byte { return b[:min(len(b), 48)] }

func joinLines(ls []string) string {
	var b bytes.Buffer
	for _, l := range ls {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
