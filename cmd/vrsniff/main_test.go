package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// The command tests run the real binary, as a user would.
var vrsniffBin string

func TestMain(m *testing.M) {
	// A fuzzing worker runs only the fuzz target, which needs no binary;
	// building one in each worker took the whole fuzzing time.
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "vrsniff-bin")
	if err != nil {
		panic(err)
	}
	vrsniffBin = filepath.Join(dir, "vrsniff")
	if out, err := exec.Command("go", "build", "-o", vrsniffBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs vrsniff and returns its stderr and exit code.
func run(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(vrsniffBin, args...)
	cmd.Stdin = stdin
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("vrsniff %v: %v", args, err)
	}
	return o.String(), e.String(), 0
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	_, stderr, code := run(t, nil, args...)
	if code != 0 {
		t.Fatalf("vrsniff %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	return stderr
}

// tshark returns the rows of `tshark -n -r file extra... -T fields` for the
// given fields.
func tshark(t *testing.T, file string, extra []string, fields ...string) [][]string {
	t.Helper()
	args := append([]string{"-n", "-r", file}, extra...)
	args = append(args, "-T", "fields")
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	return testenv.TsharkRows(t, args...)
}

// readAll reads every packet of a capture file.
func readAll(t *testing.T, name string) []mirror.Packet {
	t.Helper()
	ps, err := pcapfile.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func execOut(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

// `vrsniff --version`, as tcpdump users type it, is `vrsniff version`.
func TestVersionFlag(t *testing.T) {
	want, _, code := run(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(want, "vrsniff ") {
		t.Fatalf("version: %q, exit %d", want, code)
	}
	for _, arg := range []string{"--version", "-version"} {
		if got, _, code := run(t, nil, arg); code != exitOK || got != want {
			t.Errorf("%s: %q, exit %d; want %q", arg, got, code, want)
		}
	}
}

// Help that was asked for goes to standard output with exit 0; a usage
// error goes to standard error with exit 2.
func TestHelpToStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"decap", "-h"}, {"capture", "--help"}, {"gen", "-h"}, {"mirror", "create", "-h"}, {"extract", "-h"}} {
		out, errOut, code := run(t, nil, args...)
		if code != exitOK || !strings.Contains(strings.ToLower(out), "usage") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q", args, code, len(out), errOut)
		}
	}
	out, errOut, code := run(t, nil, "decap", "--bogus")
	if code != exitUsage || out != "" || !strings.Contains(errOut, "bogus") {
		t.Errorf("decap --bogus: exit %d, stdout %q, stderr %d bytes", code, out, len(errOut))
	}
}
