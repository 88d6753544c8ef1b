// Package gen writes synthetic vRouter mirror captures for tests, demos and
// benchmarks.
//
// A Generator produces Cases: one mirrored inner frame, the outer packets a
// sniffer would capture for it (several when the outer datagram is IP
// fragmented), and everything a decoder is expected to report for it. The
// encoder follows the wire format of the Contrail / Tungsten Fabric vRouter
// (Juniper-header UDP datagrams with metadata TLVs, legacy record headers,
// static next-hop VXLAN, NIC-assisted VLAN) and the malformed variants a
// decoder must reject. Output is deterministic for a given seed and options.
//
// Expectations follow the decoder's rules: the Juniper payload ends where
// the UDP length says (Ethernet padding excluded); a record cut by the snap
// length inside the inner frame decodes with Truncated set when at least the
// inner Ethernet header was captured, and fails with "truncated" otherwise;
// a fragmented datagram with a missing or cut fragment fails with
// "fragment-incomplete". Malformed cases are built to fail for their own
// reason with the default snap length; a snap length that cuts them may turn
// that into "truncated".
package gen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Kind is the kind of case the generator builds.
type Kind uint8

// Case kinds. The ones from KindTruncated on are malformed: every case of
// them fails (Case.Reason is not empty). Kinds before it decode, except
// where the case says otherwise (a wrapped name that cannot be recovered,
// a snap length that cuts the metadata).
const (
	KindACL         Kind = iota // policy mirroring: TLVs 1,2,3,4,255
	KindPort                    // port mirroring: 03 or 04 VN, FF 00
	KindEndOnly                 // no metadata: FF 00
	KindUnknownTLV              // ACL or port TLVs with an unknown TLV type among them
	KindLegacy1                 // 16-byte record header, incl_len counts the TLVs (R1.06-R3.0)
	KindLegacy2                 // 16-byte record header, incl_len is the frame only (2016 master)
	KindVXLAN                   // static next hop: VXLAN
	KindVLAN                    // NIC-assisted: mirror VLAN tag added to the frame
	KindOther                   // not mirror traffic (ARP, UDP, TCP)
	KindDPDKIPv6                // inner IPv6 labelled with ethertype 0x0800
	KindSnapCut                 // the capture snap length cuts the inner frame
	KindPadding                 // outer Ethernet frame padded to 60 bytes
	KindSeed114                 // ACL mirror whose inner frame starts at byte 114
	KindFragmented              // outer datagram over the MTU, IP fragmented
	KindNames                   // VN names as free bytes: UTF-8, spaces, '/', '../', empty, control bytes
	KindOddTLV                  // 16-byte host, 2-byte flags, other odd lengths of the known types
	KindWrapped                 // a VN name over 255 bytes, its length byte wrapped, one consistent reading
	KindIDReuse                 // a datagram lost its first fragment; a later one reuses its IP ID
	KindDupFragment             // a fragment captured twice, before or after its datagram completed
	KindFragSnap                // a fragmented datagram captured with a snap length
	KindOverlay                 // the mirror datagram inside MPLSoUDP, MPLSoGRE or VXLAN
	KindOuterTags               // three or four outer VLAN tags
	KindDPDKTagged              // inner 802.1Q frame whose EtherType says IPv4 over an IPv6 packet
	KindOtherPort               // mirror datagrams to a UDP port the decoder is not told about
	KindTruncated               // outer headers or TLVs cut by the snap length
	KindBadIP                   // bad outer IPv4 header
	KindBadUDP                  // bad UDP length
	KindBadTLV                  // inconsistent TLV list
	KindBadVXLAN                // VXLAN I flag clear or header short
	KindBadInner                // fewer than 14 bytes after the TLVs
	KindFragMissing             // a fragment of the outer datagram is missing
	KindBadLinkType             // a record with an unsupported link type
	KindBadWrapped              // a wrapped VN name with no or several consistent readings
	KindFragSnapTLV             // fragmented datagram whose first fragment is cut inside the TLVs
	numKinds
)

var kindNames = [...]string{
	"acl", "port", "end-only", "unknown-tlv", "legacy1", "legacy2", "vxlan", "vlan", "other",
	"dpdk-ipv6", "snap-cut", "padding", "seed114", "fragmented",
	"vn-bytes", "odd-tlv", "wrapped-name", "id-reuse", "dup-fragment", "frag-snap", "overlay",
	"outer-tags", "dpdk-ipv6-tagged", "other-port",
	"truncated", "bad-ip", "bad-udp", "bad-tlv", "bad-vxlan", "bad-inner-frame",
	"fragment-incomplete", "link-type", "bad-wrapped-name", "frag-snap-tlv",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind" + strconv.Itoa(int(k))
}

// Malformed reports whether cases of kind k fail to decode.
func (k Kind) Malformed() bool { return k >= KindTruncated && k < numKinds }

// Reason is the failure reason of every case of a malformed kind, "" for
// the others.
func (k Kind) Reason() string {
	switch {
	case !k.Malformed():
		return ""
	case k == KindBadWrapped:
		return "bad-tlv"
	case k == KindFragSnapTLV:
		return "truncated"
	}
	return k.String()
}

// Kinds lists every kind.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown case kind %q (known: %s)", s, strings.Join(kindNames[:], ", "))
}

// Mix weighs the kinds a generator picks from. Kinds the options rule out
// (NIC-assisted VLAN, padding and seed114 need Ethernet; an unsupported
// link-type record needs mixed link types; fragments need MaxFrame >= MTU)
// are left out.
type Mix map[Kind]int

// ParseMix parses "acl=3,port=1,vxlan=1".
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, w, ok := strings.Cut(f, "=")
		weight := 1
		if ok {
			n, err := strconv.Atoi(w)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("mix %q: weight %q is not a non-negative integer", f, w)
			}
			weight = n
		}
		k, err := ParseKind(name)
		if err != nil {
			return nil, fmt.Errorf("mix: %w", err)
		}
		m[k] = weight
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("mix %q: empty", s)
	}
	return m, nil
}

// ParseFrameSizes parses Options.FrameSizes written as comma-separated
// SIZE or SIZE=N items, N the number of cases in a row of that size:
// "64=9,1514" is nine 64-byte inner frames, then a full-size one, in turn.
func ParseFrameSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		size, rep, ok := strings.Cut(strings.TrimSpace(f), "=")
		n, err := strconv.Atoi(size)
		if err != nil || n < 14 || n > 9000 {
			return nil, fmt.Errorf("frame sizes %q: size %q is not a number of bytes in 14..9000", s, size)
		}
		k := 1
		if ok {
			if k, err = strconv.Atoi(rep); err != nil || k < 1 || k > 1000 {
				return nil, fmt.Errorf("frame sizes %q: count %q is not in 1..1000", s, rep)
			}
		}
		for range k {
			sizes = append(sizes, n)
		}
	}
	return sizes, nil
}

// Profiles are the named mixes.
var Profiles = map[string]Mix{
	"mixed": {KindACL: 40, KindPort: 20, KindEndOnly: 3, KindUnknownTLV: 3, KindLegacy1: 1,
		KindLegacy2: 1, KindVXLAN: 5, KindVLAN: 5, KindOther: 8, KindDPDKIPv6: 2, KindSnapCut: 2,
		KindPadding: 2, KindSeed114: 2, KindFragmented: 6},
	"acl":     {KindACL: 1},
	"port":    {KindPort: 1},
	"seed114": {KindSeed114: 1},
	"bench":   {KindACL: 60, KindPort: 30, KindVXLAN: 5, KindVLAN: 5},
	"malformed": {KindTruncated: 1, KindBadIP: 1, KindBadUDP: 1, KindBadTLV: 1, KindBadVXLAN: 1,
		KindBadInner: 1, KindFragMissing: 1, KindBadLinkType: 1},
	// What mirror traffic looks like in the field beyond the documented
	// format (docs/gen.md).
	"field": {KindNames: 3, KindOddTLV: 3, KindWrapped: 2, KindIDReuse: 1, KindDupFragment: 1,
		KindFragSnap: 2, KindOverlay: 3, KindOuterTags: 1, KindDPDKTagged: 1, KindOtherPort: 1,
		KindBadWrapped: 1, KindFragSnapTLV: 1},
	"all": allMix(),
}

func allMix() Mix {
	m := Mix{}
	for _, k := range Kinds() {
		m[k] = 1
	}
	return m
}

// ProfileNames lists the profile names, sorted.
func ProfileNames() []string {
	var ns []string
	for n := range Profiles {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// DefaultMirrorVLAN is the VLAN of NIC-assisted cases when Options.Traffic
// has none.
const DefaultMirrorVLAN = 999

// Options configure a Generator. The zero value of a field selects its default.
type Options struct {
	Seed uint64
	// Mix weighs the case kinds; nil means Profiles["mixed"].
	Mix Mix
	// Malformed is the fraction of cases (0..1) replaced by malformed kinds
	// drawn evenly from Profiles["malformed"].
	Malformed float64
	// Snaplen is the capture snap length (default 262144).
	Snaplen int
	// MTU is the outer IP MTU; larger datagrams are fragmented (default 1500).
	MTU int
	// Traffic is where the mirror datagrams go: to its one Juniper-header
	// port and its one VXLAN port (defaults mirror.DefaultPort and
	// mirror.DefaultVXLANPort), NIC-assisted cases on its mirror VLAN
	// (default DefaultMirrorVLAN). It must be valid (mirror.Traffic.Validate)
	// and without AutoPorts. A decoder configured with it decodes every
	// case but those sent to a port of their own (Case.Port).
	Traffic mirror.Traffic
	// LinkType fixes the outer link type of every record (Ethernet, Linux
	// SLL, SLL2 or raw IP). Zero mixes them, which classic pcap cannot hold.
	LinkType layers.LinkType
	// MinFrame and MaxFrame bound the inner frame sizes (defaults 64 and
	// 9000); frames over 1514 bytes are drawn rarely.
	MinFrame, MaxFrame int
	// MaxVN bounds the VN name lengths (default 255), but for the names
	// of the wrapped-name kinds, over 255 bytes by design.
	MaxVN int
	// VarySeedNames lets the seed114 case use other VN names whose lengths
	// still add up to 54.
	VarySeedNames bool
	// MaxDist is the reassembly distance the id-reuse and dup-fragment
	// cases are built around (default 4, as the decoder's): an IP ID is
	// reused after more than MaxDist other datagrams from the source, a
	// fragment is repeated within fewer.
	MaxDist int
	// Start is the timestamp of the first packet (default 2024-03-01 UTC).
	Start time.Time
	// FrameSizes, when set, fixes the inner frame sizes in turn: case i's
	// inner frames are FrameSizes[i%len(FrameSizes)] bytes long, or as
	// long as their headers when that is longer (14..9000 bytes each;
	// MinFrame and MaxFrame then do not apply). Benchmarks use it for a
	// known share of full-size frames.
	FrameSizes []int
	// VNs, when set, replaces the pool of VN names the metadata draws
	// from (names of at most MaxVN bytes); one name makes one VN pair.
	VNs []string
	// Scenario, when set, names one of Scenarios: the cases are its mirror
	// datagrams, in order, rather than draws from Mix; Malformed, frame
	// sizes, VN pools and Numbered do not apply. Its records are Ethernet
	// and IP fragmented at MTU; the snap length must hold them whole.
	Scenario string
	// Numbered writes case i's number in its inner frames' source MAC,
	// 02:4e:ii:ii:ii:ii (i mod 2^32, big-endian), so that what reached a
	// capture can be told apart and counted (bench/genhostile count).
	Numbered bool
	// Flows, when positive, draws the inner addresses and ports of the
	// TCP and UDP frames from that many flows, the busiest first
	// (Zipf-distributed, as real traffic is): a flow index sees rows of
	// many packets, not one row per packet.
	Flows int
}

// Wire is one outer packet as captured.
type Wire struct {
	Timestamp time.Time
	LinkType  layers.LinkType
	Data      []byte // captured bytes
	WireLen   int    // length on the wire (>= len(Data))
}

// Expect is one result a decoder must produce: a mirrored frame and its
// metadata (mirror.Meta, field by field), or a failure.
//
// Reason is "" when the result decodes, else the decoder's failure reason
// name. Non-mirror traffic has Mode ModeOther and Reason "not-mirror": a
// decoder passing such traffic through reports ModeOther and Frame (the
// whole packet), one that drops it reports the reason.
type Expect struct {
	Mode      mirror.Mode
	Frame     []byte // inner frame as the decoder must output it (maybe cut)
	FrameLen  int    // original inner frame length
	Truncated bool
	SrcVN     *string // any bytes; nil when the TLV is absent, "" when sent empty
	DstVN     *string
	Host      netip.Addr // IPv4 or IPv6 router id; invalid when absent
	Flags     uint32
	FlagBits  uint8 // 32, 16 (a 2-byte flags TLV) or 0 (absent)
	OddTLVs   int   // host or flags TLVs of another length, kept raw
	// NameRecovered: a VN name over 255 bytes was sent with its length
	// byte wrapped and read back whole from the one consistent reading.
	NameRecovered bool
	Direction     mirror.Direction
	VNI           uint32
	HasVNI        bool
	VLAN          uint16
	Overlay       mirror.Overlay
	// Legacy is 0 without a record header, 1 for the R1.06-R3.0 variant
	// (incl_len counts the TLVs), 2 for the 2016 one (incl_len is the frame).
	Legacy     int
	RecordTime time.Time // legacy header timestamp
	// Fragments is how many outer IP fragments the result is made of:
	// the ones reassembled, or a cut first fragment and those held before
	// it; 0 for a datagram that was not fragmented.
	Fragments int
	Reason    string
}

// Meta returns the metadata the decoder must report (mirror.Meta without
// the raw TLVs).
func (e *Expect) Meta() mirror.Meta {
	m := mirror.Meta{
		Host: e.Host, Flags: e.Flags, FlagBits: e.FlagBits, OddTLVs: uint8(e.OddTLVs),
		NameRecovered: e.NameRecovered, Direction: e.Direction, VNI: e.VNI, HasVNI: e.HasVNI,
		Overlay: e.Overlay, Legacy: e.Legacy != 0,
	}
	if e.SrcVN != nil {
		m.SrcVN = []byte(*e.SrcVN)
	}
	if e.DstVN != nil {
		m.DstVN = []byte(*e.DstVN)
	}
	if e.Mode == mirror.ModeVLAN {
		m.VLAN = e.VLAN
	}
	if e.Legacy != 0 {
		m.RecordTime = e.RecordTime
	}
	return m
}

// Decodes reports whether a decoder passing non-mirror traffic through
// delivers the result (rather than failing it).
func (e *Expect) Decodes() bool { return e.Reason == "" || e.Reason == "not-mirror" }

// Step is what a decoder must do with one outer packet of a case.
type Step struct {
	// Status is what Decode returns. Decoded or Failed complete a result:
	// Result 0 is the case's own, i > 0 is Others[i-1].
	Status mirror.Status
	Result int
	// Returned marks a Held fragment whose datagram never completes: the
	// decoder hands it back (Expire, Flush) failed as fragment-incomplete.
	Returned bool
}

// Case is one mirrored frame, the outer packets a sniffer captures for it,
// and what a decoder must make of each of them.
//
// Most cases are one outer datagram (one packet, or its IP fragments).
// Some are a short scene: other datagrams of the same source around the
// case's own (their results in Others), a fragment captured twice, the
// tail of a datagram that lost its first fragment.
type Case struct {
	Index   int
	Kind    Kind
	Packet  int    // index of Packets[0] among all packets generated so far
	Packets []Wire // outer packets, in capture order
	Steps   []Step // what the decoder does with each of Packets

	Expect          // the case's own result
	Others []Expect // further results, in the order they complete

	// Port, when set, is the UDP port the case's mirror datagram was sent
	// to instead of the generator's: a decoder that is not told about it
	// passes the packet through (ModeOther, the whole packet, or fails it
	// not-mirror) and counts Port as a candidate mirror port; one told
	// about it decodes Expect.
	Port uint16
}

// Clone returns a deep copy of c that stays valid after the next Generator.Next.
func (c *Case) Clone() *Case {
	d := *c
	d.Packets = slices.Clone(c.Packets)
	for i := range d.Packets {
		d.Packets[i].Data = slices.Clone(d.Packets[i].Data)
	}
	d.Steps = slices.Clone(c.Steps)
	d.Expect = c.Expect.clone()
	d.Others = slices.Clone(c.Others)
	for i := range d.Others {
		d.Others[i] = c.Others[i].clone()
	}
	return &d
}

func (e Expect) clone() Expect {
	e.Frame = slices.Clone(e.Frame)
	if e.SrcVN != nil {
		s := *e.SrcVN
		e.SrcVN = &s
	}
	if e.DstVN != nil {
		s := *e.DstVN
		e.DstVN = &s
	}
	return e
}

// Result returns the result a Decoded or Failed step completes.
func (c *Case) Result(s Step) *Expect {
	if s.Result == 0 {
		return &c.Expect
	}
	return &c.Others[s.Result-1]
}

// Generator produces cases. It is not safe for concurrent use.
type Generator struct {
	opts Options
	// The destinations of opts.Traffic.
	port, vxlanPort, mirrorVLAN uint16
	rng                         *rand.Rand
	flows                       *rand.Zipf // Options.Flows; nil without
	kinds                       []Kind     // cumulative weight table
	weights                     []int
	total                       int
	bad                         []Kind

	vns       []string    // VN name pool: realistic names first, then extremes
	realVNs   int         // how many of vns are realistic
	fieldVNs  []string    // names as clouds send them: UTF-8, spaces, '/', control bytes
	longVNs   []string    // names over 255 bytes
	seedNames [][2]string // source and destination VN names 54 bytes long together
	hosts     [][4]byte
	noise     []byte // random bytes for payloads
	now       time.Time
	index     int
	packets   int

	sc *scene // Options.Scenario's cases

	c       Case
	wires   []Wire
	steps   []Step
	others  []Expect
	sent    []sent // records of the datagram last sent
	arena   []byte // records and frames a case keeps while it builds more
	payload []byte // UDP payload being built
	frame   []byte // inner frame
	pkt     []byte // whole outer packet
	frags   []byte // fragment records
	ovl     []byte // a fabric tunnel's payload
}

// New returns a generator. It fails on inconsistent options.
func New(opts Options) (*Generator, error) {
	if opts.Mix == nil {
		opts.Mix = Profiles["mixed"]
	}
	if opts.Snaplen == 0 {
		opts.Snaplen = 262144
	}
	if opts.MTU == 0 {
		opts.MTU = 1500
	}
	opts.Traffic = opts.Traffic.WithDefaults()
	if opts.Traffic.MirrorVLAN == 0 {
		opts.Traffic.MirrorVLAN = DefaultMirrorVLAN
	}
	if err := opts.Traffic.Validate(); err != nil {
		return nil, err
	}
	if t := opts.Traffic; len(t.Ports) != 1 || len(t.VXLANPorts) != 1 || t.AutoPorts {
		return nil, fmt.Errorf("%s %s, %s %s: the generator sends to one port of each", mirror.Flags.Ports,
			mirror.FormatPorts(t.Ports, t.AutoPorts), mirror.Flags.VXLANPorts, mirror.FormatPorts(t.VXLANPorts, false))
	}
	if opts.MinFrame == 0 {
		opts.MinFrame = 64
	}
	if opts.MaxFrame == 0 {
		opts.MaxFrame = 9000
	}
	if opts.MaxVN == 0 {
		opts.MaxVN = 255
	}
	if opts.MaxDist == 0 {
		opts.MaxDist = 4
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	}
	switch {
	case opts.Snaplen < 64:
		return nil, fmt.Errorf("snap length %d: below 64", opts.Snaplen)
	case opts.MTU < 576 || opts.MTU > 65535:
		return nil, fmt.Errorf("MTU %d: outside 576..65535", opts.MTU)
	case opts.MinFrame < 14 || opts.MaxFrame > 9000 || opts.MinFrame > opts.MaxFrame:
		return nil, fmt.Errorf("frame sizes %d..%d: want 14 <= min <= max <= 9000", opts.MinFrame, opts.MaxFrame)
	case opts.MaxVN < 1 || opts.MaxVN > 255:
		return nil, fmt.Errorf("VN length %d: outside 1..255", opts.MaxVN)
	case opts.Malformed < 0 || opts.Malformed > 1:
		return nil, fmt.Errorf("malformed fraction %g: outside 0..1", opts.Malformed)
	case opts.MaxDist < 1 || opts.MaxDist > 64:
		return nil, fmt.Errorf("reassembly distance %d: outside 1..64", opts.MaxDist)
	}
	for _, n := range opts.FrameSizes {
		if n < 14 || n > 9000 {
			return nil, fmt.Errorf("frame size %d: outside 14..9000", n)
		}
	}
	for _, vn := range opts.VNs {
		if len(vn) > opts.MaxVN {
			return nil, fmt.Errorf("VN %q: longer than %d bytes", vn, opts.MaxVN)
		}
	}
	switch opts.LinkType {
	case 0, layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2, layers.LinkTypeRaw:
	default:
		return nil, fmt.Errorf("outer link type %d: want Ethernet, Linux SLL, SLL2 or raw IP", opts.LinkType)
	}
	g := &Generator{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), now: opts.Start,
		port: opts.Traffic.Ports[0], vxlanPort: opts.Traffic.VXLANPorts[0], mirrorVLAN: opts.Traffic.MirrorVLAN}
	if opts.Flows < 0 {
		return nil, fmt.Errorf("flows %d: must not be negative", opts.Flows)
	}
	if opts.Flows > 0 {
		// Flows are their own stream: the cases stay those of the seed.
		g.flows = rand.NewZipf(rand.New(rand.NewPCG(opts.Seed, 0x666c6f7773)), 1.1, 1, uint64(opts.Flows-1))
	}
	for _, k := range Kinds() {
		w := opts.Mix[k]
		if w <= 0 || !g.possible(k) {
			continue
		}
		g.total += w
		g.kinds = append(g.kinds, k)
		g.weights = append(g.weights, g.total)
	}
	for k := range Profiles["malformed"] {
		if g.possible(k) {
			g.bad = append(g.bad, k)
		}
	}
	slices.Sort(g.bad)
	if g.total == 0 {
		return nil, fmt.Errorf("mix selects no case kind possible with these options")
	}
	g.initPools()
	if len(opts.VNs) > 0 {
		g.vns, g.realVNs = slices.Clone(opts.VNs), len(opts.VNs)
	}
	if opts.Scenario != "" {
		switch {
		case opts.LinkType != layers.LinkTypeEthernet && opts.LinkType != 0:
			return nil, fmt.Errorf("scenario %s: its records are Ethernet, not %s", opts.Scenario, opts.LinkType)
		case opts.Snaplen < opts.MTU+14:
			return nil, fmt.Errorf("scenario %s: snap length %d cuts records of up to %d bytes", opts.Scenario, opts.Snaplen, opts.MTU+14)
		}
		g.opts.LinkType = layers.LinkTypeEthernet
		var err error
		if g.sc, err = g.newScene(); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// possible reports whether kind k can be built with the generator's options.
func (g *Generator) possible(k Kind) bool {
	lt := g.opts.LinkType
	switch k {
	case KindBadLinkType:
		return lt == 0 // a fixed link type holds only supported records
	case KindVLAN, KindPadding, KindSeed114, KindOuterTags:
		return lt == 0 || lt == layers.LinkTypeEthernet
	case KindFragmented, KindFragMissing, KindIDReuse, KindDupFragment, KindFragSnap, KindFragSnapTLV:
		return g.opts.MaxFrame >= g.opts.MTU
	}
	return true
}

func (g *Generator) initPools() {
	g.noise = make([]byte, 16384)
	for i := range g.noise {
		g.noise[i] = byte(g.rng.Uint32())
	}
	projects := []string{"admin", "demo", "prod", "tenant-42", "k8s-default", "finance", "web"}
	vns := []string{"vn-left", "vn-right", "left", "right", "mgmt", "private-net", "public",
		"k8s-default-pod-network", "ip-fabric", "svc-vn-1"}
	add := func(s string) {
		if len(s) <= g.opts.MaxVN {
			g.vns = append(g.vns, s)
		}
	}
	add("__UNKNOWN__")
	add("default-domain:default-project:ip-fabric")
	for i := 0; i < 24; i++ {
		add("default-domain:" + projects[g.rng.IntN(len(projects))] + ":" + vns[g.rng.IntN(len(vns))])
	}
	g.realVNs = len(g.vns)
	// Length extremes: empty, one byte, and long names up to the limit.
	for _, n := range []int{0, 1, 2, 5, 64, 100, 128, 200, 254, 255} {
		if n <= g.opts.MaxVN {
			add(vnOfLen(g.rng, n))
		}
	}
	for i := 0; i < 8; i++ {
		add(vnOfLen(g.rng, 1+g.rng.IntN(g.opts.MaxVN)))
	}
	g.seedNames = append(g.seedNames, [2]string{"default-domain:demo:vn-left", "default-domain:demo:vn-east"})
	for i := 0; i < 7; i++ {
		n := 1 + g.rng.IntN(53)
		g.seedNames = append(g.seedNames, [2]string{vnOfLen(g.rng, n), vnOfLen(g.rng, 54-n)})
	}
	for i := 0; i < 16; i++ {
		var h [4]byte
		h[0], h[1], h[2], h[3] = 10, byte(g.rng.IntN(4)), byte(g.rng.IntN(256)), byte(1+g.rng.IntN(250))
		g.hosts = append(g.hosts, h)
	}
	// The pools below draw from their own source, so that the ones above
	// (and every case of the kinds they serve) stay as they were.
	r := rand.New(rand.NewPCG(g.opts.Seed, 0x6c6f6e67))
	for _, n := range fieldVNs {
		if len(n) <= g.opts.MaxVN {
			g.fieldVNs = append(g.fieldVNs, n)
		}
	}
	for i := 0; i < 16; i++ {
		g.longVNs = append(g.longVNs, vnOfLen(r, 256+r.IntN(128<<(i%4))))
	}
}

// fieldVNs are VN names as clouds in the field send them: OpenStack names
// are free UTF-8 text (f12, f13, f16), and nothing stops a control byte.
var fieldVNs = []string{
	"default-domain:admin:réseau-prod",
	"default-domain:admin:web tier",
	"default-domain:admin:vn web",
	"default-domain:admin:prod/web",
	"default-domain:admin:../../../../tmp/escape-test",
	"../../etc/passwd",
	"..",
	"/",
	"",
	"__UNKNOWN__",
	"default-domain:admin:データ-net",
	"default-domain:admin:vn-🚀",
	"default-domain:admin:quote\"d",
	"default-domain:admin:back\\slash",
	"default-domain:admin:tab\there",
	"default-domain:admin:new\nline",
	"default-domain:admin:nul\x00byte",
	"\x01\x02\x03\x04\xff\x00",
	"default-domain:admin:latin1-r\xe9seau",
	" default-domain:admin:leading-space",
	"default-domain:k8s-" + strings.Repeat("team-payments-", 4) + "ns:k8s-" + strings.Repeat("team-payments-", 4) + "ns-pod-network",
	"default-domain:admin:" + strings.Repeat("é", 117),
}

const vnChars = "abcdefghijklmnopqrstuvwxyz0123456789-_"

// vnOfLen returns a printable VN name of exactly n bytes, shaped like a fully
// qualified name when there is room for it.
func vnOfLen(r *rand.Rand, n int) string {
	const prefix = "default-domain:"
	var b []byte
	if n >= len(prefix)+3 {
		b = append(b, prefix...)
		rest := n - len(prefix) - 1
		proj := 1 + r.IntN(min(rest-1, 20))
		for range proj {
			b = append(b, vnChars[r.IntN(26)])
		}
		b = append(b, ':')
	}
	for len(b) < n {
		b = append(b, vnChars[r.IntN(len(vnChars))])
	}
	return string(b)
}

// Next builds the next case. The Case and every slice in it are owned by
// the generator and valid until the next call; use Case.Clone to keep one.
func (g *Generator) Next() *Case {
	if g.sc != nil {
		return g.nextScene()
	}
	k := g.pickKind()
	c := &g.c
	*c = Case{Index: g.index, Kind: k, Packet: g.packets}
	g.wires, g.steps, g.others, g.arena = g.wires[:0], g.steps[:0], g.others[:0], g.arena[:0]
	g.build(c, k)
	c.Packets, c.Steps, c.Others = g.wires, g.steps, g.others
	g.index++
	g.packets += len(c.Packets)
	return c
}

func (g *Generator) pickKind() Kind {
	if g.opts.Malformed > 0 && len(g.bad) > 0 && g.rng.Float64() < g.opts.Malformed {
		return g.bad[g.rng.IntN(len(g.bad))]
	}
	x := g.rng.IntN(g.total)
	i, _ := slices.BinarySearch(g.weights, x+1)
	return g.kinds[i]
}

// tick advances the capture clock by a few microseconds to milliseconds.
func (g *Generator) tick() time.Time {
	g.now = g.now.Add(time.Duration(1000 + g.rng.IntN(2_000_000)))
	return g.now
}
