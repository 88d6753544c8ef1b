// Package testenv is the environment the tests of several packages share:
// the shared test inputs (field cases, hostile cases), tshark as the
// independent oracle, network namespaces with a veth pair, a small tmpfs to
// fill, and the small helpers of tests that talk to a process over the
// network. Only tests and test support (fakeapi/transcript) import it.
package testenv

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
