package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSizeAndPorts(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "100": 100, "4K": 4096, "100M": 100 << 20, "2g": 2 << 30, "1TB": 1 << 40} {
		var s sizeFlag
		if err := s.Set(in); err != nil || int64(s) != want {
			t.Errorf("%q: %d, %v", in, s, err)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1.5M", "10Q"} {
		var s sizeFlag
		if s.Set(bad) == nil {
			t.Errorf("size %q accepted", bad)
		}
	}
	var p portList
	if err := p.Set("8099, 8100"); err != nil || p.String() != "8099,8100" {
		t.Errorf("ports: %v %v", p, err)
	}
	for _, bad := range []string{"0", "65536", "a", "1,,2"} {
		if p.Set(bad) == nil {
			t.Errorf("ports %q accepted", bad)
		}
	}
}

// A config file sets the same flags as the command line, which wins.
func TestConfigFile(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var dec decoderFlags
	dec.register(fs)
	var size sizeFlag
	fs.Var(&size, "rotate-size", "")
	every := fs.Duration("rotate-every", 0, "")
	dir := fs.String("dir", "", "")
	fs.String("config", "", "")
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("port: [8099, 9000]\nrotate-size: 10M\nrotate-every: 5m\ndir: /var/lib/x\nmirror-vlan: 7\n"), 0o644)
	args := []string{"--config", cfg, "--dir", "/tmp/y"}
	if err := applyConfig(fs, configArg(args)); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if dec.ports.String() != "8099,9000" || size != 10<<20 || *every != 5*time.Minute || *dir != "/tmp/y" || dec.vlan != 7 {
		t.Fatalf("ports %v size %d every %v dir %s vlan %d", dec.ports, size, *every, *dir, dec.vlan)
	}
	os.WriteFile(cfg, []byte("no-such-flag: 1\n"), 0o644)
	if err := applyConfig(fs, cfg); err == nil {
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
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		var dec decoderFlags
		dec.register(fs)
		var size sizeFlag
		fs.Var(&size, "rotate-size", "")
		fs.String("dir", "", "")
		if err := os.WriteFile(cfg, data, 0o644); err != nil {
			t.Fatal(err)
		}
		applyConfig(fs, cfg) // any input: an error or flags set, never a panic
	})
}
