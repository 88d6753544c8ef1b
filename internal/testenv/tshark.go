package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Tshark is one way of running tshark, the independent reader the tests
// check vrsniff's output against. The zero value reads under a fresh, empty
// HOME and fails the test when tshark exits with a non-zero status or writes
// anything but its usual notices to standard error (a Lua error, a
// malformed file, an unknown field are reported there).
type Tshark struct {
	// Home is tshark's HOME, with XDG_CONFIG_HOME its .config: where it
	// finds preferences, personal plugins and extcap programs. Empty: a
	// new empty folder, so that nothing of the user's changes the result.
	Home string
	// Stdin is what tshark reads as "-r -".
	Stdin io.Reader
	// CutShort accepts a capture file cut short in the middle of a
	// packet, as one still being written or left by a killed writer is:
	// tshark prints the packets before the cut and exits with status 2.
	// Any other failure still fails the test.
	CutShort bool
}

// runLimit bounds one tshark run, so that a tshark that never ends fails
// the test instead of hanging it; no test waits that long.
const runLimit = 2 * time.Minute

// notices are the lines tshark writes to standard error on success: the
// warning about root, a live capture's progress messages, and the empty
// report of an extcap program that ended at -a without a word.
var notices = regexp.MustCompile(`^(Running as user "root" and group "root"\. This could be dangerous\.|Capturing on .*|\d+ packets? captured|\*\* \(tshark:\d+\) [\d:.]+ \[\w+ MESSAGE\] -- .*|tshark:)$`)

// cutShort is the complaint about a capture file cut short; tshark prints
// it and exits with status 2.
var cutShort = regexp.MustCompile(`^tshark: The file ".*" appears to have been cut short in the middle of a packet\.$`)

// TsharkRows runs tshark with args, as Tshark{}.Rows does.
func TsharkRows(t testing.TB, args ...string) [][]string {
	t.Helper()
	return Tshark{}.Rows(t, args...)
}

// Output runs tshark with args to its end and returns its standard output.
func (ts Tshark) Output(t testing.TB, args ...string) []byte {
	t.Helper()
	return ts.Start(t, args...).Output(t)
}

// Lines runs tshark with args and returns its output lines, without their
// newlines; nil when it printed nothing.
func (ts Tshark) Lines(t testing.TB, args ...string) []string {
	t.Helper()
	return lines(ts.Output(t, args...))
}

// Rows runs tshark with args, which ask for "-T fields" with the default
// separator, and returns one row per packet: the fields split at tabs.
func (ts Tshark) Rows(t testing.TB, args ...string) [][]string {
	t.Helper()
	return rows(ts.Output(t, args...))
}

// TsharkLayers runs ts with args, which ask for "-T json", and returns each
// packet's layers (the object "_source"."layers" of tshark's JSON) decoded
// as L, in packet order: map[string][]string for the values of "-e"
// fields, map[string]json.RawMessage for the whole tree.
func TsharkLayers[L any](t testing.TB, ts Tshark, args ...string) []L {
	t.Helper()
	var pkts []struct {
		Source struct {
			Layers L `json:"layers"`
		} `json:"_source"`
	}
	out := ts.Output(t, args...)
	if err := json.Unmarshal(out, &pkts); err != nil {
		t.Fatalf("tshark %s: JSON: %v", strings.Join(args, " "), err)
	}
	ls := make([]L, len(pkts))
	for i, p := range pkts {
		ls[i] = p.Source.Layers
	}
	return ls
}

// TsharkRun is a tshark started by Start: a live capture, or a read of a
// stream while it is written.
type TsharkRun struct {
	args   []string
	ts     Tshark
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdout bytes.Buffer
	stderr SyncBuffer
	done   chan struct{}
	err    error // set before done is closed
}

// Start starts tshark with args and returns at once. The test must end it
// with one of the run's methods; a run still going when the test ends is
// killed.
func (ts Tshark) Start(t testing.TB, args ...string) *TsharkRun {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is needed (Debian package tshark)")
	}
	home := ts.Home
	if home == "" {
		home = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	r := &TsharkRun{args: args, ts: ts, cancel: cancel, done: make(chan struct{})}
	r.cmd = exec.CommandContext(ctx, "tshark", args...)
	r.cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	r.cmd.Stdin = ts.Stdin
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	// tshark may end before its input does (-c, -a): then Wait does not
	// wait for a Stdin that blocks.
	r.cmd.WaitDelay = time.Second
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		r.err = r.cmd.Wait()
		if errors.Is(r.err, exec.ErrWaitDelay) && r.cmd.ProcessState.Success() {
			r.err = nil
		}
		cancel()
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// Output waits for tshark to end and returns its standard output. A
// failure, or a complaint on standard error, fails the test.
func (r *TsharkRun) Output(t testing.TB) []byte {
	t.Helper()
	<-r.done
	stderr := r.stderr.String()
	var complaints []string
	cut := false
	for _, l := range lines([]byte(stderr)) {
		l = strings.TrimSpace(l)
		switch {
		case l == "", notices.MatchString(l):
		case r.ts.CutShort && cutShort.MatchString(l):
			cut = true
		default:
			complaints = append(complaints, l)
		}
	}
	err := r.err
	var ee *exec.ExitError
	if cut && errors.As(err, &ee) && ee.ExitCode() == 2 {
		err = nil
	}
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(r.args, " "), err, stderr)
	}
	if len(complaints) > 0 {
		t.Fatalf("tshark %s wrote to standard error:\n%s", strings.Join(r.args, " "), strings.Join(complaints, "\n"))
	}
	return r.stdout.Bytes()
}

// Lines is Output split into lines, as Tshark.Lines.
func (r *TsharkRun) Lines(t testing.TB) []string {
	t.Helper()
	return lines(r.Output(t))
}

// Rows is Output split into rows of fields, as Tshark.Rows.
func (r *TsharkRun) Rows(t testing.TB) [][]string {
	t.Helper()
	return rows(r.Output(t))
}

// Result waits for tshark to end and returns how it exited and what it
// wrote to standard error, whatever that is: for a test of a run that is
// meant to fail.
func (r *TsharkRun) Result() (stderr string, err error) {
	<-r.done
	return r.stderr.String(), r.err
}

// Stderr is what tshark has written to standard error so far.
func (r *TsharkRun) Stderr() string { return r.stderr.String() }

// lines splits output into lines; a packet whose fields are all empty is
// an empty line, kept.
func lines(out []byte) []string {
	if len(out) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

func rows(out []byte) [][]string {
	ls := lines(out)
	if ls == nil {
		return nil
	}
	rs := make([][]string, len(ls))
	for i, l := range ls {
		rs[i] = strings.Split(l, "\t")
	}
	return rs
}

// InterfaceStats reads the Interface Statistics Blocks of the pcapng file
// at path with tshark's pcapng file dissector, and returns the values of
// isb_ifrecv, isb_ifdrop and isb_osdrop in file order, as tshark prints
// them: one entry per block that has the option.
func InterfaceStats(t testing.TB, path string) (recv, ifDrop, osDrop []string) {
	t.Helper()
	rows := TsharkRows(t, "-r", path, "-X", "read_format:MIME Files Format", "-T", "fields",
		"-e", "pcapng.options.option.data.interface.received",
		"-e", "pcapng.options.option.data.interface.dropped",
		"-e", "pcapng.options.option.data.interface.dropped_by_os")
	// The file dissector shows the whole file as one frame; a field
	// that occurs several times is a comma-separated list.
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	for _, r := range rows {
		for len(r) < 3 {
			r = append(r, "")
		}
		recv, ifDrop, osDrop = append(recv, split(r[0])...), append(ifDrop, split(r[1])...), append(osDrop, split(r[2])...)
	}
	return recv, ifDrop, osDrop
}
