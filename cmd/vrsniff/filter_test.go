package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

// A filter expression over the limits is a usage error in every command
// that takes one, with a short message, before any output file is touched.
func TestFilterTooComplex(t *testing.T) {
	b, err := os.ReadFile(testenv.HostileCase(t, "bpf-3000-terms.txt"))
	if err != nil {
		t.Fatal(err)
	}
	expr := strings.TrimSpace(string(b))
	dir := t.TempDir()
	raw, out := filepath.Join(dir, "raw.pcap"), filepath.Join(dir, "out.pcapng")
	mustRun(t, "gen", "--count", "10", raw)
	const old = "an existing file"
	if err := os.WriteFile(out, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"decap", "--bpf", expr, raw, out},
		append([]string{"decap", raw, out}, strings.Fields(expr)...),
		{"capture", "--read", raw, "--dir", filepath.Join(dir, "captures"), "--bpf", expr},
	} {
		_, stderr, code := run(t, nil, args...)
		if code != exitUsage || !strings.Contains(stderr, "expression too complex") || len(stderr) > 300 {
			t.Errorf("%s: exit %d, stderr %q", args[0], code, stderr)
		}
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != old {
		t.Errorf("OUT after the refused runs: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "captures")); !os.IsNotExist(err) {
		t.Errorf("capture made its directory: %v", err)
	}
}
