package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// decoderFlags are the flags that say what is mirror traffic.
type decoderFlags struct {
	traffic   trafficFlags
	dropOther bool
	frag      mirror.ReassemblyConfig
	fragBytes sizeFlag
}

// trafficFlags are the flags of mirror.Traffic, kept as given: they are
// parsed together (mirror.Flags.Parse), after the command line and any
// configuration file.
type trafficFlags struct{ ports, vxlan, vlan string }

func (t *trafficFlags) register(fs *pflag.FlagSet, defaultVLAN uint16, usage [3]string) {
	fs.StringVar(&t.ports, "port", strconv.Itoa(mirror.DefaultPort), usage[0])
	fs.StringVar(&t.vxlan, "vxlan-port", strconv.Itoa(mirror.DefaultVXLANPort), usage[1])
	fs.StringVar(&t.vlan, "mirror-vlan", strconv.Itoa(int(defaultVLAN)), usage[2])
}

func (t *trafficFlags) parse() (mirror.Traffic, error) {
	return mirror.Flags.Parse(t.ports, t.vxlan, t.vlan)
}

func (d *decoderFlags) register(fs *pflag.FlagSet) {
	d.traffic.register(fs, 0, [3]string{
		"UDP destination `ports` of Juniper-header mirroring, comma separated; \"auto\" adds any port whose datagrams parse as mirror metadata",
		"UDP destination `ports` of VXLAN mirroring, comma separated",
		"`VLAN` ID of NIC-assisted mirroring, 1-4094, stripped from the frames (0: none)",
	})
	fs.IntVar(&d.frag.MaxDatagrams, "frag-max-datagrams", 4096, "incomplete outer IP datagrams held for reassembly at once")
	d.fragBytes = 64 << 20
	fs.Var(&d.fragBytes, "frag-max-bytes", "`bytes` held for outer IP reassembly (K, M, G suffixes)")
	fs.DurationVar(&d.frag.Timeout, "frag-timeout", 30*time.Second, "packet time an outer IP datagram may take to complete")
	fs.IntVar(&d.frag.MaxDist, "frag-max-dist", 4, "later packets from the same source after which an incomplete datagram is given up (-1: no limit)")
	fs.IntVar(&d.frag.MaxFragments, "frag-max-fragments", 64, "fragments one outer IP datagram may have")
	fs.BoolVar(&d.dropOther, "drop-other", false, "drop traffic that is not mirror traffic instead of passing it through")
}

func (d *decoderFlags) config() (mirror.Config, error) {
	t, err := d.traffic.parse()
	if err != nil {
		return mirror.Config{}, err
	}
	if d.frag.MaxDatagrams < 1 || d.fragBytes < 1 || d.frag.Timeout <= 0 || d.frag.MaxDist == 0 || d.frag.MaxFragments < 2 {
		return mirror.Config{}, errors.New("--frag-max-datagrams, --frag-max-bytes, --frag-timeout and --frag-max-fragments (at least 2) must be positive, --frag-max-dist positive or -1")
	}
	frag := d.frag
	frag.MaxBytes = int(min(int64(d.fragBytes), 1<<40))
	return mirror.Config{Traffic: t, PassThrough: !d.dropOther, Reassembly: frag}, nil
}

// filterFlags select packets by metadata and inner frame.
type filterFlags struct{ o filter.Options }

func (f *filterFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.o.VN, "vn", "", "keep packets whose source or destination VN matches the `pattern`: the network's name or a glob of it (vn-web, vn-*), or with ':' the full name (*:admin:vn-web)")
	fs.StringVar(&f.o.SrcVN, "src-vn", "", "keep packets whose source VN matches the `pattern` (as --vn)")
	fs.StringVar(&f.o.DstVN, "dst-vn", "", "keep packets whose destination VN matches the `pattern` (as --vn)")
	fs.StringVar(&f.o.Direction, "direction", "", "keep packets of this `direction` (ingress or egress)")
	fs.StringVar(&f.o.BPF, "bpf", "", fmt.Sprintf("tcpdump `expression` applied to the inner frame (at most %d bytes and %d terms joined by and/or)", filter.MaxExprLen, filter.MaxTerms))
}

// trailing takes the words after the flags, if any, as the inner filter
// expression, as tcpdump does; --bpf as well is an error.
func (f *filterFlags) trailing(rest []string) error {
	if len(rest) == 0 {
		return nil
	}
	if f.o.BPF != "" {
		return errors.New("give the inner filter either with --bpf or after the flags, not both")
	}
	f.o.BPF = strings.Join(rest, " ")
	return nil
}

// sizeFlag is a byte count with an optional K, M, G or T suffix (powers of
// 1024).
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }
func (s *sizeFlag) Type() string   { return "size" }

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
	if n > math.MaxInt64/mult {
		return fmt.Errorf("size %q is too large", v)
	}
	*s = sizeFlag(n * mult)
	return nil
}

// applyConfig sets the flags of fs that skip does not name from a YAML file
// whose keys are the flag names, so that the file and the command line mean
// the same.
func applyConfig(fs *pflag.FlagSet, path string, skip map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range m {
		f := fs.Lookup(k)
		if f == nil || f.Name == "config" {
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
		if skip[f.Name] {
			continue
		}
		if err := fs.Set(k, s); err != nil {
			return fmt.Errorf("%s: %s: %w", path, k, err)
		}
	}
	return nil
}
