package gen

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Format is a capture file format.
type Format uint8

const (
	FormatPcap      Format = iota // classic pcap, microsecond timestamps
	FormatPcapNanos               // classic pcap, nanosecond timestamps
	FormatPcapNG                  // pcapng, one interface per link type
)

func (f Format) String() string {
	switch f {
	case FormatPcap:
		return "pcap"
	case FormatPcapNanos:
		return "pcap-ns"
	case FormatPcapNG:
		return "pcapng"
	}
	return "format?"
}

// Writer writes the packets of cases into a capture file.
type Writer struct {
	pcap    *pcapgo.Writer
	ng      *pcapgo.NgWriter
	bw      *bufio.Writer
	lt      layers.LinkType
	snaplen int
	ifaces  []layers.LinkType // pcapng interface index -> link type
}

// NewWriter writes a capture file header to w. A classic pcap file holds a
// single link type, lt (Ethernet when zero); pcapng starts with an lt
// interface and adds one for every other link type it meets.
func NewWriter(w io.Writer, f Format, snaplen int, lt layers.LinkType) (*Writer, error) {
	if lt == 0 {
		lt = layers.LinkTypeEthernet
	}
	wr := &Writer{lt: lt, snaplen: snaplen}
	switch f {
	case FormatPcap, FormatPcapNanos:
		wr.bw = bufio.NewWriterSize(w, 1<<16)
		if f == FormatPcapNanos {
			wr.pcap = pcapgo.NewWriterNanos(wr.bw)
		} else {
			wr.pcap = pcapgo.NewWriter(wr.bw)
		}
		if err := wr.pcap.WriteFileHeader(uint32(snaplen), lt); err != nil {
			return nil, fmt.Errorf("write pcap header: %w", err)
		}
	case FormatPcapNG:
		// Fixed section information keeps the output identical across machines.
		opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "vrsniff gen"}}
		ng, err := pcapgo.NewNgWriterInterface(w, wr.iface(lt), opts)
		if err != nil {
			return nil, fmt.Errorf("write pcapng header: %w", err)
		}
		wr.ng = ng
		wr.ifaces = append(wr.ifaces, lt)
	default:
		return nil, fmt.Errorf("unknown capture format %d", f)
	}
	return wr, nil
}

func (w *Writer) iface(lt layers.LinkType) pcapgo.NgInterface {
	return pcapgo.NgInterface{
		Name:                fmt.Sprintf("gen%d", len(w.ifaces)),
		Description:         "synthetic " + lt.String(),
		LinkType:            lt,
		SnapLength:          uint32(w.snaplen),
		TimestampResolution: 9,
	}
}

// WriteCase writes the packets of c.
func (w *Writer) WriteCase(c *Case) error {
	for i := range c.Packets {
		p := &c.Packets[i]
		ci := gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: p.WireLen}
		if w.pcap != nil {
			if p.LinkType != w.lt {
				return fmt.Errorf("case %d: a %s record cannot go into a %s pcap file", c.Index, p.LinkType, w.lt)
			}
			if err := w.pcap.WritePacket(ci, p.Data); err != nil {
				return fmt.Errorf("case %d: write packet: %w", c.Index, err)
			}
			continue
		}
		id := -1
		for j, lt := range w.ifaces {
			if lt == p.LinkType {
				id = j
				break
			}
		}
		if id < 0 {
			var err error
			if id, err = w.ng.AddInterface(w.iface(p.LinkType)); err != nil {
				return fmt.Errorf("case %d: add %s interface: %w", c.Index, p.LinkType, err)
			}
			w.ifaces = append(w.ifaces, p.LinkType)
		}
		ci.InterfaceIndex = id
		if err := w.ng.WritePacket(ci, p.Data); err != nil {
			return fmt.Errorf("case %d: write packet: %w", c.Index, err)
		}
	}
	return nil
}

// Flush writes buffered data to the underlying writer.
func (w *Writer) Flush() error {
	if w.ng != nil {
		return w.ng.Flush()
	}
	return w.bw.Flush()
}

// Truth is the expected decode result of a case as written to truth files,
// one JSON object per line: the case's own result at the top level, the
// results of further datagrams in others, and what the decoder does with
// each packet in steps.
type Truth struct {
	Index   int         `json:"index"`
	Kind    string      `json:"kind"`
	Packets []int       `json:"packets"` // record numbers in the capture file, from 1
	Steps   []TruthStep `json:"steps"`   // one per packet
	TruthResult
	Others []TruthResult `json:"others,omitempty"`
	// Port is the UDP port of mirror traffic the decoder must be told
	// about (--port) to decode; without it, it passes the packets through
	// and names the port as a candidate.
	Port uint16 `json:"port,omitempty"`
}

// TruthStep is what the decoder does with one packet: status decoded or
// failed when the packet completes result (0: the case's own, i: others[i-1]);
// held, returned when the fragment comes back incomplete at the end;
// merged or duplicate.
type TruthStep struct {
	Status   string `json:"status"`
	Result   int    `json:"result,omitempty"`
	Returned bool   `json:"returned,omitempty"`
}

// TruthResult is an Expect in its file form. A VN name that is not valid
// UTF-8 is given in hex (src_vn_hex) instead of src_vn.
type TruthResult struct {
	Mode          string     `json:"mode"`
	Reason        string     `json:"reason,omitempty"`
	Frame         string     `json:"frame,omitempty"` // hex
	FrameLen      int        `json:"frame_len,omitempty"`
	Truncated     bool       `json:"truncated,omitempty"`
	Fragments     int        `json:"fragments,omitempty"`
	SrcVN         *string    `json:"src_vn,omitempty"`
	SrcVNHex      string     `json:"src_vn_hex,omitempty"`
	DstVN         *string    `json:"dst_vn,omitempty"`
	DstVNHex      string     `json:"dst_vn_hex,omitempty"`
	Host          string     `json:"host,omitempty"` // IPv4 or IPv6
	Flags         *uint32    `json:"flags,omitempty"`
	FlagBits      uint8      `json:"flag_bits,omitempty"` // 32, or 16 for a 2-byte flags TLV
	OddTLVs       int        `json:"odd_tlvs,omitempty"`
	NameRecovered bool       `json:"name_recovered,omitempty"`
	Direction     string     `json:"direction,omitempty"`
	VNI           *uint32    `json:"vni,omitempty"`
	VLAN          uint16     `json:"vlan,omitempty"`
	Overlay       string     `json:"overlay,omitempty"`
	Legacy        int        `json:"legacy,omitempty"`
	RecordTime    *time.Time `json:"record_time,omitempty"`
}

var statusNames = [...]string{
	mirror.Decoded: "decoded", mirror.Failed: "failed", mirror.Held: "held",
	mirror.Merged: "merged", mirror.Duplicate: "duplicate",
}

// StatusName names a decode status as truth files do.
func StatusName(s mirror.Status) string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "status" + strconv.Itoa(int(s))
}

// Truth returns the case's expectations in their file form.
func (c *Case) Truth() Truth {
	t := Truth{Index: c.Index, Kind: c.Kind.String(), TruthResult: c.Expect.truth(), Port: c.Port}
	for i := range c.Packets {
		t.Packets = append(t.Packets, c.Packet+i+1)
	}
	for _, s := range c.Steps {
		t.Steps = append(t.Steps, TruthStep{Status: StatusName(s.Status), Result: s.Result, Returned: s.Returned})
	}
	for i := range c.Others {
		t.Others = append(t.Others, c.Others[i].truth())
	}
	return t
}

func (e *Expect) truth() TruthResult {
	t := TruthResult{
		Mode: e.Mode.String(), Reason: e.Reason, Frame: hex.EncodeToString(e.Frame), FrameLen: e.FrameLen,
		Truncated: e.Truncated, Fragments: e.Fragments, FlagBits: e.FlagBits, OddTLVs: e.OddTLVs,
		NameRecovered: e.NameRecovered, VLAN: e.VLAN, Overlay: e.Overlay.String(), Legacy: e.Legacy,
	}
	t.SrcVN, t.SrcVNHex = truthName(e.SrcVN)
	t.DstVN, t.DstVNHex = truthName(e.DstVN)
	if e.Host.IsValid() {
		t.Host = e.Host.String()
	}
	if e.FlagBits != 0 {
		f := e.Flags
		t.Flags = &f
	}
	if e.HasVNI {
		v := e.VNI
		t.VNI = &v
	}
	if e.Direction != 0 {
		t.Direction = e.Direction.String()
	}
	if e.Legacy != 0 {
		rt := e.RecordTime
		t.RecordTime = &rt
	}
	return t
}

func truthName(s *string) (*string, string) {
	if s == nil || utf8.ValidString(*s) {
		return s, ""
	}
	return nil, hex.EncodeToString([]byte(*s))
}

// Stats counts what Write produced.
type Stats struct {
	Cases, Packets, Malformed, Fragmented int
	Kinds                                 [numKinds]int
	// VLAN counts the cases mirrored NIC-assisted on the mirror VLAN:
	// a decoder finds them only when told that VLAN.
	VLAN int
}

// Write generates count cases with g, writes their packets to w in format
// f and, when truth is not nil, their expectations to truth as JSON lines.
func Write(w io.Writer, truth io.Writer, g *Generator, count int, f Format) (Stats, error) {
	var st Stats
	cw, err := NewWriter(w, f, g.opts.Snaplen, g.opts.LinkType)
	if err != nil {
		return st, err
	}
	var enc *json.Encoder
	var tb *bufio.Writer
	if truth != nil {
		tb = bufio.NewWriter(truth)
		enc = json.NewEncoder(tb)
	}
	for range count {
		c := g.Next()
		if err := cw.WriteCase(c); err != nil {
			return st, err
		}
		if enc != nil {
			if err := enc.Encode(c.Truth()); err != nil {
				return st, fmt.Errorf("case %d: write truth: %w", c.Index, err)
			}
		}
		st.Cases++
		st.Packets += len(c.Packets)
		st.Kinds[c.Kind]++
		if c.Mode == mirror.ModeVLAN {
			st.VLAN++
		}
		if !c.Decodes() {
			st.Malformed++
		}
		for _, s := range c.Steps {
			if s.Status == mirror.Held {
				st.Fragmented++
				break
			}
		}
	}
	if err := cw.Flush(); err != nil {
		return st, fmt.Errorf("flush capture: %w", err)
	}
	if tb != nil {
		if err := tb.Flush(); err != nil {
			return st, fmt.Errorf("flush truth: %w", err)
		}
	}
	return st, nil
}
