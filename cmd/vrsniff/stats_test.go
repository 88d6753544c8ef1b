package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/extract"
)

// TestStats: the JSON summary of decoded captures counts what tshark
// reads, the text form names its sections, and a file cut short is
// counted up to the cut with exit status 3.
func TestStats(t *testing.T) {
	dir := t.TempDir()
	raw, out := filepath.Join(dir, "raw.pcap"), filepath.Join(dir, "out.pcapng")
	mustRun(t, "gen", "--profile", "acl", "--count", "300", "--seed", "5", raw)
	mustRun(t, "decap", "--quiet", raw, out)
	stdout, stderr, code := run(t, nil, "stats", "--json", "--pairs", "1000", out, out)
	if code != 0 {
		t.Fatalf("stats: exit %d\n%s", code, stderr)
	}
	var s extract.Summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	rows := tshark(t, out, nil, "frame.comment")
	var pairs uint64
	for _, p := range s.Pairs {
		pairs += p.Packets
	}
	if s.Packets != 2*uint64(len(rows)) || pairs != s.Packets || len(s.Conversations) != 10 || s.PacketRate <= 0 {
		t.Errorf("summary %+v; want %d packets, every one in a pair, 10 conversations", s, 2*len(rows))
	}

	stdout, stderr, code = run(t, nil, "stats", out)
	for _, want := range []string{"Packets:", "First packet:", "Interfaces:", "VN pairs:", "Top conversations"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("stats: exit %d, no %q in\n%s%s", code, want, stdout, stderr)
		}
	}

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pcapng")
	if err := os.WriteFile(cut, b[:len(b)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = run(t, nil, "stats", "--json", cut)
	if err := json.Unmarshal([]byte(stdout), &s); code != exitPartial || err != nil || s.Packets != uint64(len(rows))-1 ||
		!strings.Contains(stderr, "cut.pcapng") {
		t.Errorf("file cut short: exit %d, %d packets (want %d)\n%s", code, s.Packets, len(rows)-1, stderr)
	}
	if _, _, code := run(t, nil, "stats", filepath.Join(dir, "missing.pcapng")); code != exitFailure {
		t.Errorf("missing file: exit %d", code)
	}
	if _, _, code := run(t, nil, "stats"); code != exitUsage {
		t.Errorf("no file: exit %d", code)
	}
}
