package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A single-dash word that names a long flag is that flag, as Go's flag
// package read it; one-letter flags, their groups and the values of flags
// are left as they are.
func TestCompatArgs(t *testing.T) {
	fs := newFlagSet("x", "")
	fs.String("port", "", "")
	fs.String("since", "", "")
	fs.Bool("align", true, "")
	fs.BoolP("packet-buffered", "U", false, "")
	fs.IntP("count", "c", 0, "")
	fs.StringP("write", "w", "", "")
	for _, c := range []struct{ in, want []string }{
		{[]string{"-port", "8888", "in"}, []string{"--port", "8888", "in"}},
		{[]string{"-port=8888"}, []string{"--port=8888"}},
		{[]string{"-align=false", "-help"}, []string{"--align=false", "--help"}},
		{[]string{"--since", "-port"}, []string{"--since", "-port"}}, // a value
		{[]string{"-since", "-15m"}, []string{"--since", "-15m"}},
		{[]string{"-w", "-port"}, []string{"-w", "-port"}},
		{[]string{"-Uw", "-port"}, []string{"-Uw", "-port"}},
		{[]string{"-Uwx", "-port"}, []string{"-Uwx", "--port"}},
		{[]string{"-c10", "-U"}, []string{"-c10", "-U"}},
		{[]string{"-nope", "-"}, []string{"-nope", "-"}},
		{[]string{"--", "-port", "x"}, []string{"--", "-port", "x"}},
		{[]string{"a", "--", "--", "-port"}, []string{"a", "--", "--", "-port"}},
	} {
		if got := compatArgs(fs, c.in); !slices.Equal(got, c.want) {
			t.Errorf("compatArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// The earlier one-letter long names stay names of the flag, in YAML keys
// and in the environment too.
func TestLongNames(t *testing.T) {
	fs := newFlagSet("x", "")
	iface := fs.StringP("interface", "i", "", "")
	fs.String("config", "", "")
	if err := fs.Parse(compatArgs(fs, []string{"--i", "eth1"})); err != nil || *iface != "eth1" {
		t.Fatalf("--i: %q, %v", *iface, err)
	}
	fs = newFlagSet("x", "")
	iface = fs.StringP("interface", "i", "", "")
	fs.String("config", "", "")
	if err := presetFlags(fs, []string{"VRSNIFF_I=ens4"}); err != nil || *iface != "ens4" {
		t.Fatalf("VRSNIFF_I: %q, %v", *iface, err)
	}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("i: ens5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs = newFlagSet("x", "")
	iface = fs.StringP("interface", "i", "", "")
	fs.String("config", "", "")
	if err := presetFlags(fs, []string{"VRSNIFF_CONFIG=" + cfg}); err != nil || *iface != "ens5" {
		t.Fatalf("YAML i: %q, %v", *iface, err)
	}
}

// Flags go before, between or after the positional arguments; "--" ends
// them; a single-dash long flag is still read.
func TestFlagPlacement(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	mustRun(t, "gen", "-count", "40", "-seed", "5", "-port", "8888", raw)
	for i, args := range [][]string{
		{"decap", raw, "OUT", "--port", "8888", "--quiet"},
		{"decap", "--quiet", raw, "--port=8888", "OUT"},
		{"decap", "-port", "8888", "-quiet", raw, "OUT"},
		{"decap", raw, "OUT", "--quiet", "--port", "8888", "--", "udp"},
	} {
		out := filepath.Join(dir, strings.Repeat("o", i+1)+".pcapng")
		args = slices.Clone(args)
		args[slices.Index(args, "OUT")] = out
		stdout, stderr, code := run(t, nil, args...)
		if code != exitOK || stdout != "" || stderr != "" {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
		// Port 8888 was taken: every packet decoded, none passed through as UDP to 8888.
		if n := len(readAll(t, out)); n == 0 {
			t.Fatalf("%q: no packets written", args)
		}
		rows := tshark(t, out, []string{"-Y", "udp.port == 8888"}, "frame.number")
		if len(rows) != 0 {
			t.Errorf("%q: %d packets still mirror datagrams to 8888", args, len(rows))
		}
	}

	// "--" ends the flags: a file named like a flag is a file.
	weird := filepath.Join(dir, "-weird.pcap")
	if err := os.Rename(raw, weird); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if _, stderr, code := run(t, nil, "decap", "--port", "8888", "--quiet", "--", "-weird.pcap", "w.pcapng"); code != exitOK {
		t.Fatalf("decap -- -weird.pcap: exit %d, %s", code, stderr)
	}
	if len(readAll(t, filepath.Join(dir, "w.pcapng"))) == 0 {
		t.Fatal("decap -- -weird.pcap wrote no packets")
	}
}

// A usage error is one line on standard error with exit 2, and leaves an
// existing OUT as it was; help that was asked for goes to standard output
// with exit 0, however it is asked for.
func TestUsageAndHelp(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.pcapng")
	keep := []byte("not a capture, and must stay so")
	if err := os.WriteFile(out, keep, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"decap", "in.pcap", out, "--bogus"},
		{"decap", "in.pcap", out, "--format", "txt"},
		{"decap", "in.pcap", out, "--port"},
		{"decap", out},
		{"mirror", "list", "extra", "--json"},
		{"mirror", "delete", "a", "b"},
		{"stats"},
		{"nosuchcommand"},
		{"mirror"},
		{"mirror", "nosuch"},
		{"completion"},
	} {
		stdout, stderr, code := run(t, nil, args...)
		if code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "vrsniff") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", args, code, stdout, stderr)
		}
		if b, _ := os.ReadFile(out); !bytes.Equal(b, keep) {
			t.Fatalf("%q changed %s", args, out)
		}
	}
	decapHelp, _, _ := run(t, nil, "decap", "--help")
	if !strings.HasPrefix(decapHelp, "usage: vrsniff decap") || !strings.Contains(decapHelp, "--port ports") {
		t.Fatalf("decap --help:\n%s", decapHelp)
	}
	for _, args := range [][]string{
		{"decap", "-h"}, {"decap", "-help"}, {"decap", "in", "out", "--help"}, {"help", "decap"},
	} {
		stdout, stderr, code := run(t, nil, args...)
		if code != exitOK || stdout != decapHelp || stderr != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout the same as decap --help: %v", args, code, stderr, stdout == decapHelp)
		}
	}
	for _, args := range [][]string{
		{"help", "mirror", "list"}, {"mirror", "help", "list"}, {"mirror", "list", "-h"}, {"help", "capture"}, {"help", "stats"},
		{"help", "extract"}, {"help", "gen"}, {"mirror", "heat", "--help"}, {"mirror", "delete", "--help"}, {"extcap", "--help"},
	} {
		stdout, stderr, code := run(t, nil, args...)
		if code != exitOK || !strings.HasPrefix(stdout, "usage: vrsniff") || stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	// "--" ends the flags, also before a help flag.
	if _, stderr, code := run(t, nil, "decap", "--", "-h", out); code != exitFailure || !strings.Contains(stderr, "-h") {
		t.Errorf("decap -- -h OUT: exit %d, %q; want -h read as a file", code, stderr)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, keep) {
		t.Fatalf("decap -- -h changed %s", out)
	}
}
