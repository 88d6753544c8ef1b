// Package testkit holds what the tests of several packages share: the
// shared test inputs (field cases, hostile cases) and tshark as an oracle.
// Only tests import it.
package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SharedDir returns the project's shared inputs directory: $VRSNIFF_SHARED,
// or "shared" beside the repository root. A test that needs it fails when
// it is missing: the inputs are part of the test suite.
func SharedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("VRSNIFF_SHARED"); d != "" {
		return d
	}
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("finding the repository root: %v", err)
	}
	d := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "shared")
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("shared test inputs: %v (set VRSNIFF_SHARED)", err)
	}
	return d
}

// FieldCase returns the path of a capture in shared/field-cases.
func FieldCase(t testing.TB, name string) string {
	t.Helper()
	return sharedFile(t, "field-cases", name)
}

// HostileCase returns the path of a seed in shared/hostile-cases.
func HostileCase(t testing.TB, name string) string {
	t.Helper()
	return sharedFile(t, "hostile-cases", name)
}

func sharedFile(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(SharedDir(t), dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Tshark runs tshark with args and returns its output lines split at tabs
// (the shape of -T fields). A failing tshark fails the test, with its
// standard error.
func Tshark(t testing.TB, args ...string) [][]string {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is needed (apt-get install -y tshark)")
	}
	cmd := exec.Command("tshark", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			rows = append(rows, strings.Split(l, "\t"))
		}
	}
	return rows
}
