package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// The capture keeps copies of the fragments its decoder holds only when it
// writes rejects: with --keep-rejects and --dir, not with --keep-rejects
// alone (there is no rejects ring without --dir).
func TestCaptureFragmentCopies(t *testing.T) {
	in := filepath.Join("..", "..", "testdata", "sample.pcap")
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--dir", "DIR", "--keep-rejects"}, true},
		{[]string{"--dir", "DIR"}, false},
		{[]string{"--http", "127.0.0.1:0", "--keep-rejects"}, false},
		{[]string{"--http", "127.0.0.1:0"}, false},
	} {
		args := []string{"capture", "--read", in, "--stats-every", "0"}
		for _, a := range tc.args {
			if a == "DIR" {
				a = t.TempDir()
			}
			args = append(args, a)
		}
		stderr := mustRun(t, args...)
		want := "fragment_copies=false"
		if tc.want {
			want = "fragment_copies=true"
		}
		if !strings.Contains(stderr, want) {
			t.Errorf("%q: no %s in\n%s", tc.args, want, stderr)
		}
	}
}
