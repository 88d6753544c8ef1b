package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

func TestSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "100": 100, "4K": 4096, "100M": 100 << 20, "2g": 2 << 30, "1TB": 1 << 40} {
		var s sizeFlag
		if err := s.Set(in); err != nil || int64(s) != want {
			t.Errorf("%q: %d, %v", in, s, err)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1.5M", "10Q", "16777216T", "9223372036854775807K"} {
		var s sizeFlag
		if s.Set(bad) == nil {
			t.Errorf("size %q accepted", bad)
		}
	}
}

// The decoder flags make a mirror.Config; a bad value is refused naming
// its flag.
func TestDecoderFlags(t *testing.T) {
	cfg := func(args ...string) (mirror.Config, error) {
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		var dec decoderFlags
		dec.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return dec.config()
	}
	c, err := cfg()
	if err != nil || !slices.Equal(c.Traffic.Ports, []uint16{8099}) || !slices.Equal(c.Traffic.VXLANPorts, []uint16{4789}) ||
		c.Traffic.MirrorVLAN != 0 || c.Traffic.AutoPorts || !c.PassThrough {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	c, err = cfg("--port", "8099, 8100,auto", "--vxlan-port", "4790", "--mirror-vlan", "999", "--drop-other")
	if err != nil || !slices.Equal(c.Traffic.Ports, []uint16{8099, 8100}) || !c.Traffic.AutoPorts ||
		!slices.Equal(c.Traffic.VXLANPorts, []uint16{4790}) || c.Traffic.MirrorVLAN != 999 || c.PassThrough {
		t.Errorf("set: %+v, %v", c, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "0"}, `--port "0": bad port "0"`},
		{[]string{"--port", "65536"}, `--port "65536": bad port "65536"`},
		{[]string{"--port", "1,,2"}, `--port "1,,2": bad port ""`},
		{[]string{"--port", "9000,9000"}, "--port: port 9000 given twice"},
		{[]string{"--vxlan-port", "a"}, `--vxlan-port "a": bad port "a"`},
		{[]string{"--vxlan-port", "auto"}, `--vxlan-port "auto": bad port "auto"`},
		{[]string{"--vxlan-port", "8099"}, "--port and --vxlan-port both have port 8099"},
		{[]string{"--mirror-vlan", "4095"}, "--mirror-vlan 4095: want a VLAN ID, 1-4094"},
		{[]string{"--mirror-vlan", "x"}, `--mirror-vlan "x": want a VLAN ID`},
		{[]string{"--frag-max-fragments", "1"}, "--frag-max-fragments"},
	} {
		if _, err := cfg(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// A config file sets the same flags as the command line, which wins.
func TestConfigFile(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	var dec decoderFlags
	dec.register(fs)
	var size sizeFlag
	fs.Var(&size, "rotate-size", "")
	every := fs.Duration("rotate-every", 0, "")
	dir := fs.String("dir", "", "")
	fs.String("config", "", "")
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("port: [8099, 9000]\nrotate-size: 10M\nrotate-every: 5m\ndir: /var/lib/x\nmirror-vlan: 7\n"), 0o644)
	if err := fs.Parse([]string{"--config", cfg, "--dir", "/tmp/y"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(fs, cfg, changedFlags(fs)); err != nil {
		t.Fatal(err)
	}
	tr, err := dec.traffic.parse()
	if err != nil || !slices.Equal(tr.Ports, []uint16{8099, 9000}) || size != 10<<20 || *every != 5*time.Minute || *dir != "/tmp/y" || tr.MirrorVLAN != 7 {
		t.Fatalf("traffic %+v (%v) size %d every %v dir %s", tr, err, size, *every, *dir)
	}
	os.WriteFile(cfg, []byte("no-such-flag: 1\n"), 0o644)
	if err := applyConfig(fs, cfg, nil); err == nil {
		t.Fatal("unknown setting accepted")
	}
}

func FuzzConfig(f *testing.F) {
	f.Add([]byte("port: [8099]\nrotate-size: 1G\n"))
	f.Add([]byte("dir: [[\n"))
	f.Add([]byte("mirror-vlan: {a: 1}\n"))
	// One file for every input: inputs run one at a time in each process,
	// and a directory per input would cost more than the input itself.
	cfg := filepath.Join(f.TempDir(), "c.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		var dec decoderFlags
		dec.register(fs)
		var size sizeFlag
		fs.Var(&size, "rotate-size", "")
		fs.String("dir", "", "")
		if err := os.WriteFile(cfg, data, 0o644); err != nil {
			t.Fatal(err)
		}
		applyConfig(fs, cfg, nil) // any input: an error or flags set, never a panic
	})
}
