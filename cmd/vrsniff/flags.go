package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

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
	fs.StringVar(&f.o.VN, "vn", "", "keep packets whose source or destination VN matches the `pattern`: the network's name or a glob of it (vn-web, vn-*), or with ':' the full name (*:admin:vn-web)")
	fs.StringVar(&f.o.SrcVN, "src-vn", "", "keep packets whose source VN matches the `pattern` (as --vn)")
	fs.StringVar(&f.o.DstVN, "dst-vn", "", "keep packets whose destination VN matches the `pattern` (as --vn)")
	fs.StringVar(&f.o.Direction, "direction", "", "keep packets of this `direction` (ingress or egress)")
	fs.StringVar(&f.o.BPF, "bpf", "", "tcpdump `expression` applied to the inner frame")
}

// sizeFlag is a byte count with an optional K, M, G or T suffix (powers of
// 1024).
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	mult := int64(1)
	t := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(v)), "B")
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("bad size %q (want e.g. 100M)", v)
	}
	*s = sizeFlag(n * mult)
	return nil
}

// applyConfig sets flags from a YAML file whose keys are the flag names,
// so that the file and the command line mean the same; flags given on the
// command line are parsed afterwards and win.
func applyConfig(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range m {
		if fs.Lookup(k) == nil || k == "config" {
			return fmt.Errorf("%s: unknown setting %q", path, k)
		}
		var s string
		switch v := v.(type) {
		case []any:
			parts := make([]string, len(v))
			for i, e := range v {
				parts[i] = fmt.Sprint(e)
			}
			s = strings.Join(parts, ",")
		case nil:
			continue
		default:
			s = fmt.Sprint(v)
		}
		if err := fs.Set(k, s); err != nil {
			return fmt.Errorf("%s: %s: %w", path, k, err)
		}
	}
	return nil
}

// configArg finds --config in args before flag parsing.
func configArg(args []string) string {
	for i, a := range args {
		switch {
		case a == "--":
			return ""
		case a == "-config" || a == "--config":
			if i+1 < len(args) {
				return args[i+1]
			}
		case strings.HasPrefix(a, "-config=") || strings.HasPrefix(a, "--config="):
			return a[strings.IndexByte(a, '=')+1:]
		}
	}
	return ""
}

// usageCode is the exit status for a flag parsing error: --help is not a
// failure.
func usageCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}
