package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// samples are the shipped captures and the gen arguments that made them,
// with their truth files (testdata/NAME.truth.json):
//
//	vrsniff gen -seed 6 -count 170 -truth testdata/sample.truth.json testdata/sample.pcap
//	vrsniff gen -scenario lab -truth testdata/lab.truth.json testdata/lab.pcap
var samples = []struct {
	name string
	args []string
}{
	{"sample", []string{"-seed", "6", "-count", "170"}},
	{"lab", []string{"-scenario", "lab"}},
}

func TestGenSample(t *testing.T) {
	dir := t.TempDir()
	for _, s := range samples {
		out, truth := filepath.Join(dir, s.name+".pcap"), filepath.Join(dir, s.name+".truth.json")
		if rc := runGen(append(s.args, "-truth", truth, out)); rc != exitOK {
			t.Fatalf("%s: exit code %d", s.name, rc)
		}
		for _, f := range []string{s.name + ".pcap", s.name + ".truth.json"} {
			want, err := os.ReadFile(filepath.Join("..", "..", "testdata", f))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("regenerated %s differs from testdata/%s", f, f)
			}
		}
	}
}

func TestGenFlags(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.pcapng")
	if rc := runGen([]string{"-format", "pcapng", "-profile", "all", "-count", "300", "-malformed", "0.2", out}); rc != exitOK {
		t.Fatalf("pcapng with mixed link types: exit code %d", rc)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() < 1000 {
		t.Fatalf("output: %v", err)
	}
	for _, args := range [][]string{
		{},
		{"-format", "pcap", "-linktype", "mixed", out},
		{"-format", "txt", out},
		{"-profile", "nope", out},
		{"-mix", "acl=x", out},
		{"-port", "70000", out},
		{"-mirror-vlan", "5000", out},
		{"-mirror-vlan", "0", out},
		{"-port", "8099,9000", out},
		{"-port", "auto", out},
		{"-vxlan-port", "8099", out},
		{"-snaplen", "10", out},
		{"-linktype", "fddi", out},
		{"-count", "-1", out},
		{"-malformed", "3", out},
		{"-max-dist", "0", out},
		{"-frame-sizes", "64=0", out},
		{"-vn", strings.Repeat("x", 256), out},
		{"-scenario", "nope", out},
		{"-scenario", "lab", "-linktype", "sll", out},
		{"-scenario", "lab", "-snaplen", "1000", out},
	} {
		if rc := runGen(args); rc != exitUsage {
			t.Errorf("runGen(%q) = %d, want %d", args, rc, exitUsage)
		}
	}
	legit := filepath.Join(dir, "legit.pcap")
	if rc := runGen([]string{"-profile", "acl", "-numbered", "-frame-sizes", "64=9,1514", "-vn", "default-domain:admin:vn-left", "-count", "100", legit}); rc != exitOK {
		t.Fatalf("numbered traffic: exit code %d", rc)
	}
	rows := tshark(t, legit, []string{"-d", "udp.port==8099,juniper"}, "eth.src", "juniper.vn.src")
	if len(rows) < 100 || rows[0][0] != "02:4e:00:00:00:00" && !strings.HasSuffix(rows[0][0], ",02:4e:00:00:00:00") ||
		rows[0][1] != "default-domain:admin:vn-left" {
		t.Fatalf("numbered traffic as tshark reads it: %q", rows[:min(len(rows), 3)])
	}
	if rc := runGen([]string{filepath.Join(dir, "missing", "x.pcap")}); rc != exitFailure {
		t.Errorf("unwritable output: exit code %d, want %d", rc, exitFailure)
	}
}

// gen says which decap flags its capture needs; with them decap decodes
// the NIC-assisted and port-8888 cases that it passes through as other
// traffic without them.
func TestGenDecapHint(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "g.pcap")
	_, stderr, code := run(t, nil, "gen", "-count", "300", "-port", "8888", in)
	const hint = "; decode it with vrsniff decap --port 8888 --mirror-vlan 999\n"
	if code != exitOK || !strings.HasSuffix(stderr, hint) {
		t.Fatalf("gen: exit %d, want the hint %q:\n%s", code, hint, stderr)
	}
	decoded := func(flags ...string) map[string]uint64 {
		t.Helper()
		args := append(append([]string{"decap", "--json"}, flags...), in, filepath.Join(dir, "g.pcapng"))
		out, stderr, code := run(t, nil, args...)
		if code != exitOK && code != exitPartial {
			t.Fatalf("decap %v: exit %d\n%s", flags, code, stderr)
		}
		var sum struct {
			Decoded map[string]uint64 `json:"decoded"`
		}
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("decap --json: %v\n%s", err, out)
		}
		return sum.Decoded
	}
	without, with := decoded(), decoded("--port", "8888", "--mirror-vlan", "999")
	if with["juniper"] == 0 || with["vlan"] == 0 || without["juniper"] != 0 || without["vlan"] != 0 ||
		without["other"] != with["other"]+with["juniper"]+with["vlan"] {
		t.Errorf("decoded without the hinted flags %v, with them %v", without, with)
	}
}
