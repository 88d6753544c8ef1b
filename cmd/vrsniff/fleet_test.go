package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

// The fleet's commands against a real object store (Ceph RGW): a capture
// replaying the lab with --store empties its spool into the bucket; store
// ls lists the sniffer and its files; a query gives what tshark keeps of
// the same packets decoded from the sample; store prune removes the
// hours, after a dry run that removes nothing.
func TestFleetCommands(t *testing.T) {
	e := testenv.S3(t)
	t.Setenv("AWS_ACCESS_KEY_ID", e.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.SecretKey)
	t.Setenv("AWS_ENDPOINT_URL_S3", e.URL)
	store := "s3://" + e.Bucket + "/fleet"
	dir := t.TempDir()
	lab := filepath.Join("..", "..", "testdata", "lab.pcap")

	mustRun(t, "capture", "-r", lab, "--dir", dir, "--rotate-size", "4K", "--store", store, "--sniffer-id", "lab-1",
		"--stats-every", "0")
	if left, _ := filepath.Glob(filepath.Join(dir, "*.pcapng*")); len(left) != 0 {
		t.Errorf("left in the spool: %v", left)
	}

	out, stderr, code := run(t, nil, "store", "ls", "--store", store, "--json")
	if code != 0 {
		t.Fatalf("store ls: exit %d\n%s", code, stderr)
	}
	if !json.Valid([]byte(out)) || !strings.Contains(out, `"lab-1"`) {
		t.Errorf("store ls does not list sniffer lab-1:\n%s", out)
	}

	const expr = "host 10.0.2.3 and tcp port 80"
	all := filepath.Join(t.TempDir(), "all.pcapng")
	mustRun(t, "decap", lab, all)
	got := filepath.Join(t.TempDir(), "got.pcapng")
	stderr = mustRun(t, "query", "--store", store, "--since", "2024-03-01T00:00:00Z", "--until", "2024-03-01T00:01:00Z", "-w", got, expr)
	fields := []string{"frame.len", "ip.src", "tcp.srcport", "frame.comment"}
	want := tshark(t, all, []string{"-Y", "ip.addr == 10.0.2.3 && tcp.port == 80"}, fields...)
	have := tshark(t, got, nil, fields...)
	if len(want) < 5 || !slices.EqualFunc(have, want, slices.Equal) {
		t.Errorf("query %q gave %d packets, tshark keeps %d of the decoded sample:\n%v\nwant\n%v\n%s", expr, len(have), len(want), have, want, stderr)
	}

	stderr = mustRun(t, "store", "prune", "--store", store, "--older-than", "1d", "--dry-run")
	if !strings.Contains(stderr+mustRunOut(t, "store", "prune", "--store", store, "--older-than", "1d", "--dry-run"), "would delete") {
		t.Errorf("dry run says nothing of what it would delete")
	}
	files := func() int {
		var l struct {
			Total struct{ Files int } `json:"total"`
		}
		if err := json.Unmarshal([]byte(mustRunOut(t, "store", "ls", "--store", store, "--json")), &l); err != nil {
			t.Fatal(err)
		}
		return l.Total.Files
	}
	if n := files(); n < 2 {
		t.Errorf("%d files after the dry run: it deleted some", n)
	}
	mustRun(t, "store", "prune", "--store", store, "--older-than", "1d")
	if n := files(); n != 0 {
		t.Errorf("%d files left after prune", n)
	}

	// Usage errors: exit 2, nothing touched.
	for _, args := range [][]string{
		{"query", "--since", "-1h"},
		{"store", "prune", "--store", store},
		{"store", "prune", "--store", store, "--older-than", "soon"},
		{"capture", "-r", lab, "--store", store},
		{"capture", "-r", lab, "--dir", dir, "--store", store, "--sniffer-id", "a/b"},
		{"capture", "-r", lab, "--dir", dir, "--store", e.Bucket + "/fleet"},
		{"capture", "-r", lab, "--dir", dir, "--store", store, "--s3-endpoint", "ftp://127.0.0.1"},
		{"query", "--store", "s3://Bad_Bucket/x", "--since", "-1h"},
		{"query", "--store", store, "--since", "-1h", "--community-id", "xyz"},
		{"query", "--store", store, "--since", "2020-01-01T00:00:00Z"},
		{"store", "ls", "--store", "http://" + e.Bucket},
		{"capture", "-r", lab, "--dir", dir, "--store", store, "--s3-part-size", "1M"},
		{"capture", "-r", lab, "--dir", dir, "--s3-part-size", "8M"},
	} {
		if _, stderr, code := run(t, nil, args...); code != exitUsage {
			t.Errorf("vrsniff %s: exit %d, want 2\n%s", strings.Join(args, " "), code, stderr)
		}
	}
}

// mustRunOut runs vrsniff and returns its standard output.
func mustRunOut(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, code := run(t, nil, args...)
	if code != 0 {
		t.Fatalf("vrsniff %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	return out
}
