// Package mirror decodes the encapsulations a Contrail / Tungsten Fabric
// vRouter uses to mirror traffic to an analyzer: the Juniper-header UDP
// datagram (metadata TLVs, optionally behind a legacy 16-byte record header,
// then the original frame), static next-hop VXLAN, and NIC-assisted VLAN
// mirroring.
//
// A Packet is the one value that flows through vrsniff: a source fills in the
// captured bytes, the Decoder fills in the inner frame and its metadata, a
// filter looks at it and a sink writes it. Every slice in a Packet refers to
// memory owned by the source or the Decoder and is valid only until the next
// packet is read or decoded; a sink that keeps bytes must copy them.
package mirror

import (
	"net/netip"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Mode says how a frame reached the analyzer.
type Mode uint8

const (
	ModeNone    Mode = iota // not (yet) decoded
	ModeJuniper             // UDP datagram: metadata TLVs, then the frame
	ModeVXLAN               // static next hop: VXLAN to a VTEP
	ModeVLAN                // NIC-assisted: the frame with the mirror VLAN tag
	ModeOther               // not mirror traffic: passed through untouched
	numModes
)

// NumModes bounds the Mode values, for arrays indexed by mode.
const NumModes = int(numModes)

var modeNames = [...]string{"none", "juniper", "vxlan", "vlan", "other"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "mode?"
}

// Modes lists the modes a decoded packet can have, for counters.
func Modes() []Mode { return []Mode{ModeJuniper, ModeVXLAN, ModeVLAN, ModeOther} }

// Direction is the direction the vRouter reports for a mirrored packet.
type Direction uint8

const (
	DirUnknown Direction = iota
	DirIngress           // the packet entered the vRouter from a VM interface
	DirEgress            // the packet left the vRouter towards a VM interface
)

func (d Direction) String() string {
	switch d {
	case DirIngress:
		return "ingress"
	case DirEgress:
		return "egress"
	}
	return "unknown"
}

// ParseDirection is the inverse of Direction.String.
func ParseDirection(s string) (Direction, bool) {
	switch s {
	case "ingress":
		return DirIngress, true
	case "egress":
		return DirEgress, true
	}
	return DirUnknown, false
}

// Action flag bits of the flags TLV (type 2): bit n is the flow action n of
// the vRouter agent, bit 30 is the direction.
const (
	FlagAlert        = 1 << 1
	FlagDrop         = 1 << 2
	FlagDeny         = 1 << 3
	FlagLog          = 1 << 4
	FlagPass         = 1 << 5
	FlagReject       = 1 << 6
	FlagMirror       = 1 << 7
	FlagVRFTranslate = 1 << 8
	FlagApplyQoS     = 1 << 9
	FlagHBS          = 1 << 10
	FlagTrap         = 1 << 28
	FlagImplicitDeny = 1 << 29
	FlagIngress      = 1 << 30
)

// ActionNames names the action bits in the order they are printed.
var ActionNames = []struct {
	Bit  uint32
	Name string
}{
	{FlagAlert, "alert"}, {FlagDrop, "drop"}, {FlagDeny, "deny"}, {FlagLog, "log"},
	{FlagPass, "pass"}, {FlagReject, "reject"}, {FlagMirror, "mirror"},
	{FlagVRFTranslate, "vrf-translate"}, {FlagApplyQoS, "apply-qos"}, {FlagHBS, "hbs"},
	{FlagTrap, "trap"}, {FlagImplicitDeny, "implicit-deny"},
}

// Reason classifies why a packet could not be decoded.
type Reason uint8

const (
	OK              Reason = iota
	ErrTruncated           // headers claim more bytes than were captured
	ErrLinkType            // unsupported link type or outer header
	ErrIP                  // bad outer IPv4/IPv6 header
	ErrUDP                 // bad outer UDP header
	ErrTLV                 // metadata TLV list inconsistent or unterminated
	ErrLegacyHeader        // legacy record header inconsistent
	ErrVXLAN               // bad VXLAN header
	ErrInnerFrame          // inner frame missing or too short for Ethernet
	ErrFragment            // outer fragment that could not be reassembled
	ErrNotMirror           // not mirror traffic, and passthrough is off
	numReasons
)

// NumReasons bounds the Reason values, for arrays indexed by reason.
const NumReasons = int(numReasons)

var reasonNames = [...]string{
	"ok", "truncated", "link-type", "bad-ip", "bad-udp", "bad-tlv", "bad-legacy-header",
	"bad-vxlan", "bad-inner-frame", "fragment-incomplete", "not-mirror",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason?"
}

// Reasons lists every failure reason, for counters.
func Reasons() []Reason {
	rs := make([]Reason, 0, numReasons-1)
	for r := ErrTruncated; r < numReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Meta is the metadata the vRouter attached to a mirrored frame
// (spec: vrouter-mirror.md, "Mode 1").
type Meta struct {
	// TLVs is the raw metadata block, end marker included (Juniper mode).
	TLVs []byte
	// SrcVN and DstVN are the fully qualified VN names as sent: any bytes
	// (OpenStack names are free UTF-8); nil when absent, empty when sent
	// with length 0. AppendName shows them safely.
	SrcVN, DstVN []byte
	// Host is the router id of the mirroring compute node: IPv4 from the
	// documented 4-byte TLV, IPv6 from a 16-byte one; invalid when absent.
	Host netip.Addr
	// Flags is the flags TLV; FlagBits is its width: 32 (the documented
	// u32, bit 30 = ingress), 16 (a 2-byte TLV: action bits only, no
	// direction) or 0 when absent.
	Flags    uint32
	FlagBits uint8
	// OddTLVs counts known TLV types whose length does not fit their type
	// (e.g. a 7-byte host): kept raw in TLVs, not decoded.
	OddTLVs uint8
	// NameRecovered is set when a VN name over 255 bytes had its length
	// byte wrapped and the one consistent reading was taken
	// (docs/decoding.md, "Wrapped name lengths").
	NameRecovered bool
	Direction     Direction
	VNI           uint32 // VXLAN mode
	HasVNI        bool
	VLAN          uint16 // NIC-assisted mode: the mirror VLAN that was stripped
	// Overlay is the fabric tunnel the mirror datagram was found in.
	Overlay Overlay
	// Legacy is set when a 16-byte record header preceded the TLVs;
	// RecordTime is the vRouter's timestamp from it.
	Legacy     bool
	RecordTime time.Time
}

// HasFlags reports whether the packet carried a flags TLV.
func (m *Meta) HasFlags() bool { return m.FlagBits != 0 }

// Overlay is a fabric tunnel around a mirror datagram: a sniffer on the
// fabric sees the datagram still inside the overlay that carried it
// between compute nodes (spec: vrouter-mirror.md, "How a mirrored frame
// reaches the sniffer").
type Overlay uint8

const (
	OverlayNone     Overlay = iota
	OverlayMPLSoUDP         // MPLS over UDP 6635 (or 51234 on old releases)
	OverlayMPLSoGRE         // MPLS over GRE (IP protocol 47)
	OverlayVXLAN            // VXLAN (UDP 4789)
)

// NumOverlays bounds the Overlay values, for arrays indexed by overlay.
const NumOverlays = 4

var overlayNames = [NumOverlays]string{"", "mplsoudp", "mplsogre", "vxlan"}

func (o Overlay) String() string {
	if int(o) < len(overlayNames) {
		return overlayNames[o]
	}
	return "overlay?"
}

// Packet is a captured packet and, once decoded, the mirrored frame in it.
type Packet struct {
	// Filled by the source.
	Timestamp time.Time
	LinkType  layers.LinkType
	Data      []byte // bytes as captured
	WireLen   int    // length on the wire (>= len(Data))
	Interface int    // index of the capture interface in the source
	// TimeClamped is set when the source's timestamp was outside what
	// Timestamp may hold (1970 to 2262, see pcapfile.Reader.Next) and was
	// clamped to that range.
	TimeClamped bool
	// Comments are the comments the source record carried (pcapng
	// opt_comment), each as it was written.
	Comments [][]byte

	// Filled by the Decoder.
	Mode Mode
	// Frame is the inner frame: a sub-slice of Data, or of the Decoder's
	// own buffer when it had to be rewritten (a stripped mirror VLAN tag, a
	// relabelled EtherType), so that Data is never written to.
	Frame     []byte
	FrameLen  int  // the inner frame's original length (> len(Frame) when truncated)
	Truncated bool // the capture snap length cut the inner frame
	Meta      Meta
	Err       Reason // OK, or why decoding failed
	ErrOffset int    // offset in Data where decoding failed
	// Fragments is the number of outer IP fragments the Decoder
	// reassembled into Data; 0 when the datagram was not fragmented.
	Fragments int
}

// Reset clears what the Decoder filled in, keeping the source's fields.
func (p *Packet) Reset() {
	p.Mode, p.Frame, p.FrameLen, p.Truncated = ModeNone, nil, 0, false
	p.Meta = Meta{}
	p.Err, p.ErrOffset, p.Fragments = OK, 0, 0
}
