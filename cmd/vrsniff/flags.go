package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// portList is a comma-separated list of UDP ports.
type portList []uint16

func (l *portList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

func (l *portList) Set(v string) error {
	*l = (*l)[:0]
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("bad port %q", f)
		}
		*l = append(*l, uint16(n))
	}
	return nil
}

// decoderFlags are the flags that say what is mirror traffic.
type decoderFlags struct {
	ports, vxlan portList
	vlan         uint
	dropOther    bool
}

func (d *decoderFlags) register(fs *flag.FlagSet) {
	d.ports = portList{mirror.DefaultPort}
	d.vxlan = portList{mirror.DefaultVXLANPort}
	fs.Var(&d.ports, "port", "UDP destination `ports` of Juniper-header mirroring, comma separated")
	fs.Var(&d.vxlan, "vxlan-port", "UDP destination `ports` of VXLAN mirroring, comma separated")
	fs.UintVar(&d.vlan, "mirror-vlan", 0, "`VLAN` of NIC-assisted mirroring, stripped from the frames (0: none)")
	fs.BoolVar(&d.dropOther, "drop-other", false, "drop traffic that is not mirror traffic instead of passing it through")
}

func (d *decoderFlags) config() (mirror.Config, error) {
	if d.vlan > 4094 {
		return mirror.Config{}, fmt.Errorf("--mirror-vlan %d: want 1-4094", d.vlan)
	}
	return mirror.Config{Ports: d.ports, VXLANPorts: d.vxlan, MirrorVLAN: uint16(d.vlan), PassThrough: !d.dropOther}, nil
}

// filterFlags select packets by metadata and inner frame.
type filterFlags struct{ o filter.Options }

func (f *filterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.o.VN, "vn", "", "keep packets whose source or destination VN matches the `glob`")
	fs.StringVar(&f.o.SrcVN, "src-vn", "", "keep packets whose source VN matches the `glob`")
	fs.StringVar(&f.o.DstVN, "dst-vn", "", "keep packets whose destination VN matches the `glob`")
	fs.StringVar(&f.o.Direction, "direction", "", "keep packets of this `direction` (ingress or egress)")
	fs.StringVar(&f.o.BPF, "bpf", "", "tcpdump `expression` applied to the inner frame")
}
