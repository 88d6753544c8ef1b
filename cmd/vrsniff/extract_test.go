package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// extractFixture captures a generated stream into rotated files, with
// --split-by vn so that files overlap in time, and decodes the same stream
// into one reference file.
func extractFixture(t *testing.T) (raw, dir, ref string) {
	t.Helper()
	tmp := t.TempDir()
	raw, dir, ref = filepath.Join(tmp, "raw.pcap"), filepath.Join(tmp, "store"), filepath.Join(tmp, "ref.pcapng")
	mustRun(t, "gen", "--profile", "acl", "--count", "400", "--seed", "7", raw)
	mustRun(t, "capture", "--read", raw, "--dir", dir, "--rotate-size", "8K", "--split-by", "vn")
	mustRun(t, "decap", raw, ref)
	return raw, dir, ref
}

var extractFields = []string{"frame.time_epoch", "frame.len", "frame.comment", "frame.packet_flags_direction", "eth.src", "ip.id"}

// TestExtract: the extract of a window holds exactly the reference's
// packets of that window, in time order, with a filter applied.
func TestExtract(t *testing.T) {
	raw, dir, ref := extractFixture(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcapng"))
	if len(files) < 6 {
		t.Fatalf("%d capture files; want the stream split into many", len(files))
	}
	times := tshark(t, ref, nil, "frame.time_epoch")
	if len(times) < 300 {
		t.Fatalf("reference of %d packets", len(times))
	}
	epoch := func(s string) time.Time {
		sec, frac, _ := strings.Cut(s, ".")
		d, err := time.ParseDuration(sec + "." + frac + "s")
		if err != nil {
			t.Fatal(err)
		}
		return time.Unix(0, 0).Add(d).UTC()
	}
	since, until := epoch(times[50][0]), epoch(times[330][0])
	window := []string{"-Y", "frame.time_epoch >= " + times[50][0] + " && frame.time_epoch < " + times[330][0]}

	out := filepath.Join(t.TempDir(), "out.pcapng")
	stderr := mustRun(t, "extract", "--dir", dir, "--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano), "-w", out)
	got, want := tshark(t, out, nil, extractFields...), tshark(t, ref, window, extractFields...)
	if len(want) < 200 || !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("extract: %d packets, want %d\n%s", len(got), len(want), stderr)
	}

	// A VN filter and an expression after the flags, to standard output.
	vnRef := filepath.Join(t.TempDir(), "vn.pcapng")
	mustRun(t, "decap", "--vn", "vn-*", "--direction", "ingress", raw, vnRef, "tcp")
	stdout, stderr, code := run(t, nil, "extract", "--dir", dir, "--since", since.Format(time.RFC3339Nano),
		"--until", until.Format(time.RFC3339Nano), "--vn", "vn-*", "--direction", "ingress", "tcp")
	if code != 0 {
		t.Fatalf("extract to stdout: exit %d\n%s", code, stderr)
	}
	if err := os.WriteFile(out, []byte(stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	got, want = tshark(t, out, nil, extractFields...), tshark(t, vnRef, window, extractFields...)
	if len(want) == 0 || len(want) == len(times) || !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("filtered extract: %d packets, want %d", len(got), len(want))
	}
}

// TestExtractOutputSafety: a run that fails leaves an existing output as
// it was and no temporary file; an output that is a capture file is
// refused.
func TestExtractOutputSafety(t *testing.T) {
	_, dir, _ := extractFixture(t)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "keep.pcapng")
	if err := os.WriteFile(out, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := dirState(t, outDir)
	// Split files overlap in time: one open file at a time is too few.
	_, stderr, code := run(t, nil, "extract", "--dir", dir, "--since", "2000-01-01T00:00:00Z", "--max-open", "1", "-w", out)
	if code != exitFailure || !strings.Contains(stderr, "too many files overlap") {
		t.Errorf("--max-open 1: exit %d, %s", code, stderr)
	}
	unchanged(t, "failed extract", before, dirState(t, outDir))

	store := dirState(t, dir)
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcapng"))
	_, stderr, code = run(t, nil, "extract", "--dir", dir, "--since", "2000-01-01T00:00:00Z", "-w", files[0])
	if code != exitUsage || !strings.Contains(stderr, "same file") {
		t.Errorf("output over a capture file: exit %d, %s", code, stderr)
	}
	unchanged(t, "store", store, dirState(t, dir))

	for _, args := range [][]string{
		{"--dir", dir},
		{"--since", "-1h"},
		{"--dir", dir, "--since", "yesterday"},
		{"--dir", dir, "--since", "now", "--until", "-1h"},
		{"--dir", dir, "--since", "-1h", "--bpf", "tcp", "udp"},
		{"--dir", dir, "--since", "-1h", "--direction", "up"},
	} {
		if _, stderr, code := run(t, nil, append([]string{"extract", "-w", out}, args...)...); code != exitUsage {
			t.Errorf("extract %q: exit %d, want 2\n%s", args, code, stderr)
		}
	}
	unchanged(t, "usage errors", before, dirState(t, outDir))
}
