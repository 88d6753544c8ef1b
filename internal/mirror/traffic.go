package mirror

import (
	"fmt"
	"strconv"
	"strings"
)

// Traffic says which outer traffic carries mirrored packets: the UDP
// destination ports of Juniper-header and static next-hop VXLAN mirroring,
// and the VLAN of NIC-assisted mirroring (docs/decoding.md). The decoder
// takes it apart by these, and a live source's kernel filter keeps only
// it. The zero value is the vRouter's defaults with no mirror VLAN.
type Traffic struct {
	Ports []uint16 // Juniper-header UDP destination ports; nil = DefaultPort
	// AutoPorts also takes datagrams to other UDP ports whose payload
	// parses as mirror metadata followed by a plausible Ethernet frame
	// (--port auto).
	AutoPorts  bool
	VXLANPorts []uint16 // VXLAN UDP destination ports; nil = DefaultVXLANPort
	MirrorVLAN uint16   // VLAN ID of NIC-assisted mirroring, 1-4094; 0 = none
}

// WithDefaults returns t with DefaultPort and DefaultVXLANPort in place of
// empty port lists.
func (t Traffic) WithDefaults() Traffic {
	if len(t.Ports) == 0 {
		t.Ports = []uint16{DefaultPort}
	}
	if len(t.VXLANPorts) == 0 {
		t.VXLANPorts = []uint16{DefaultVXLANPort}
	}
	return t
}

// TrafficFlags names the command-line settings of Traffic's fields, for
// the messages of Parse and Validate.
type TrafficFlags struct{ Ports, VXLANPorts, MirrorVLAN string }

// Flags are the names vrsniff's commands give the settings (decap,
// capture, gen; Wireshark's extcap dialog spells them with underscores).
var Flags = TrafficFlags{Ports: "--port", VXLANPorts: "--vxlan-port", MirrorVLAN: "--mirror-vlan"}

// Parse reads Traffic from the values of its flags, as a command line or
// a configuration file gives them:
//
//   - ports and vxlanPorts are comma-separated UDP ports (1-65535, blanks
//     around each allowed); among ports, the word "auto" sets AutoPorts,
//     and "auto" alone also keeps DefaultPort;
//   - mirrorVLAN is a VLAN ID, 1-4094, or 0 for none;
//   - an empty (or all blank) value selects the field's default.
//
// The result is valid (Validate); every error names the flag at fault.
func (f TrafficFlags) Parse(ports, vxlanPorts, mirrorVLAN string) (Traffic, error) {
	var t Traffic
	var err error
	if t.Ports, t.AutoPorts, err = parsePorts(f.Ports, ports, true); err != nil {
		return Traffic{}, err
	}
	if len(t.Ports) == 0 && t.AutoPorts {
		t.Ports = []uint16{DefaultPort}
	}
	if t.VXLANPorts, _, err = parsePorts(f.VXLANPorts, vxlanPorts, false); err != nil {
		return Traffic{}, err
	}
	if v := strings.TrimSpace(mirrorVLAN); v != "" {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return Traffic{}, fmt.Errorf("%s %q: want a VLAN ID, 1-4094 (0: none)", f.MirrorVLAN, mirrorVLAN)
		}
		t.MirrorVLAN = uint16(n)
	}
	if err := f.Validate(t); err != nil {
		return Traffic{}, err
	}
	return t, nil
}

func parsePorts(flag, s string, allowAuto bool) (ports []uint16, auto bool, err error) {
	if strings.TrimSpace(s) == "" {
		return nil, false, nil
	}
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "auto" && allowAuto {
			auto = true
			continue
		}
		n, err := strconv.ParseUint(e, 10, 16)
		if err != nil || n == 0 {
			want := "want UDP ports 1-65535, comma separated"
			if allowAuto {
				want += `, or "auto"`
			}
			return nil, false, fmt.Errorf("%s %q: bad port %q: %s", flag, s, e, want)
		}
		ports = append(ports, uint16(n))
	}
	return ports, auto, nil
}

// Validate checks t: ports 1-65535, none given twice nor both as a
// Juniper-header and a VXLAN port (an empty list standing for its
// default), mirror VLAN 0 or 1-4094. Its errors name the flags as f does.
func (f TrafficFlags) Validate(t Traffic) error {
	t = t.WithDefaults()
	seen := map[uint16]string{}
	for _, l := range []struct {
		flag  string
		ports []uint16
	}{{f.Ports, t.Ports}, {f.VXLANPorts, t.VXLANPorts}} {
		for _, p := range l.ports {
			if p == 0 {
				return fmt.Errorf("%s: port 0: want 1-65535", l.flag)
			}
			switch prev, dup := seen[p]; {
			case dup && prev == l.flag:
				return fmt.Errorf("%s: port %d given twice", l.flag, p)
			case dup:
				return fmt.Errorf("%s and %s both have port %d", prev, l.flag, p)
			}
			seen[p] = l.flag
		}
	}
	if t.MirrorVLAN > 4094 {
		return fmt.Errorf("%s %d: want a VLAN ID, 1-4094 (0: none)", f.MirrorVLAN, t.MirrorVLAN)
	}
	return nil
}

// Validate is Flags.Validate(t).
func (t Traffic) Validate() error { return Flags.Validate(t) }

// FormatPorts writes ports as Parse reads them, with "auto" last if set.
func FormatPorts(ports []uint16, auto bool) string {
	s := make([]string, 0, len(ports)+1)
	for _, p := range ports {
		s = append(s, strconv.Itoa(int(p)))
	}
	if auto {
		s = append(s, "auto")
	}
	return strings.Join(s, ",")
}
