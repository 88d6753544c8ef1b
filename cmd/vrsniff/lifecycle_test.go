package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// stopBound is how long a test waits for vrsniff to end before it calls
// that a hang: twice the 5 s the process promises.
const stopBound = 10 * time.Second

// runBound runs vrsniff like run, but fails the test (and kills it) if it
// has not ended within stopBound.
func runBound(t *testing.T, args ...string) (stderr string, code int) {
	t.Helper()
	cmd := exec.Command(vrsniffBin, args...)
	e := &testenv.SyncBuffer{}
	cmd.Stderr = e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return e.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return e.String(), 0
	case <-time.After(stopBound):
		cmd.Process.Kill()
		<-done
		t.Fatalf("vrsniff %s did not end:\n%s", strings.Join(args, " "), e)
	}
	return "", 0
}

// corruptPcap is a copy of a field case whose second record claims 2 GiB.
func corruptPcap(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(testenv.FieldCase(t, "f13_long_k8s_names.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	first := 24 + 16 + int(uint32(b[32])|uint32(b[33])<<8|uint32(b[34])<<16|uint32(b[35])<<24)
	copy(b[first+8:first+12], []byte{0xff, 0xff, 0xff, 0x7f})
	name := filepath.Join(t.TempDir(), "corrupt.pcap")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// Every fatal error, at start-up or while running, ends vrsniff capture
// with exit 1 and one line that says what failed, and never hangs, with
// --linger too.
func TestCaptureFatalErrors(t *testing.T) {
	in := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	corrupt := corruptPcap(t)
	missing := filepath.Join(t.TempDir(), "missing.pcap")
	badCert := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(badCert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	ro := testenv.MountTmpfs(t, "1m")
	if out, err := exec.Command("mount", "-o", "remount,ro", ro).CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v: %s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := func() string { return filepath.Join(t.TempDir(), "caps") }
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"port taken", []string{"--read", in, "--dir", dir(), "--http", ln.Addr().String()}, "address already in use"},
		{"no such interface", []string{"-i", "vrsniffnone0", "--dir", dir()}, "open vrsniffnone0: "},
		{"bad TLS", []string{"--read", in, "--http", "127.0.0.1:0", "--tls-cert", badCert, "--tls-key", badCert}, "TLS: "},
		{"directory not writable", []string{"--read", in, "--dir", ro}, "capture directory " + ro + " is not writable: "},
		{"missing file", []string{"--read", missing, "--dir", dir()}, "open " + missing + ": no such file or directory"},
		{"missing file, linger", []string{"--read", missing, "--dir", dir(), "--linger", "--http", "127.0.0.1:0"}, "no such file or directory"},
		{"corrupt file", []string{"--read", corrupt, "--dir", dir()}, "exceeds limit"},
		{"corrupt file, linger", []string{"--read", corrupt, "--dir", dir(), "--linger", "--http", "127.0.0.1:0"}, "exceeds limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr, code := runBound(t, append([]string{"capture", "--log-level", "error"}, tc.args...)...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != exitFailure || len(lines) != 1 || !strings.HasPrefix(lines[0], "vrsniff capture: ") ||
				!strings.Contains(lines[0], tc.want) {
				t.Fatalf("exit %d, want %d and one line with %q:\n%s", code, exitFailure, tc.want, stderr)
			}
		})
	}
}

// A bad --stale-after, or an address no bind could take, is a usage
// error: exit 2, before anything is opened.
func TestCaptureUsageErrors(t *testing.T) {
	in := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--read", in, "--dir", t.TempDir(), "--stale-after", "-1s"}, "stale-after -1s: must not be negative"},
		{[]string{"--listen", "127.0.0.1:99999", "--dir", t.TempDir()}, `--listen "127.0.0.1:99999": port "99999": want 0 to 65535`},
		{[]string{"--listen", "8099", "--dir", t.TempDir()}, `--listen "8099": want host:port`},
		{[]string{"--read", in, "--http", "127.0.0.1:80x"}, `--http "127.0.0.1:80x": port "80x"`},
		{[]string{"--read", in, "--http", "127.0.0.1:0", "--keep-rejects"}, "--keep-rejects needs --dir"},
		{[]string{"--read", in, "--dir", t.TempDir(), "--linger"}, "--linger needs --read and --http"},
	} {
		_, stderr, code := run(t, nil, append([]string{"capture"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d and %q:\n%s", tc.args, code, exitUsage, tc.want, stderr)
		}
	}
}

// The capture interface deleted under the daemon ends it with exit 1 and
// the reason.
func TestCaptureInterfaceGone(t *testing.T) {
	env := testenv.NewNetns(t)
	d := startCapture(t, "", "-i", env.CaptureIf, "--dir", t.TempDir())
	if out, err := exec.Command("ip", "link", "delete", env.CaptureIf).CombinedOutput(); err != nil {
		t.Fatalf("ip link delete: %v: %s", err, out)
	}
	select {
	case <-d.done:
	case <-time.After(stopBound):
		t.Fatal("vrsniff did not end when its interface went away")
	}
	var ee *exec.ExitError
	if !errors.As(d.err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("exit: %v", d.err)
	}
	want := "vrsniff capture: read " + env.CaptureIf + ": the interface is gone"
	if lines := strings.Split(strings.TrimSpace(d.stderr.String()), "\n"); !strings.HasPrefix(lines[len(lines)-1], want) {
		t.Fatalf("last line %q, want %q", lines[len(lines)-1], want)
	}
}

// stopWithin sends sig and fails the test unless the daemon ends within
// stopBound; it returns the exit code.
func (d *daemon) stopWithin(sig syscall.Signal) int {
	d.t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(stopBound):
		d.t.Fatalf("vrsniff did not end on %v", sig)
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// SIGTERM and SIGINT end the daemon, exit 0, whatever it is doing:
// lingering after a replayed file, idle on a socket, serving a stream
// client that stopped reading while packets keep coming.
func TestCaptureSignalEnds(t *testing.T) {
	in := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	t.Run("linger", func(t *testing.T) {
		d := startCapture(t, "", "--read", in, "--dir", t.TempDir(), "--linger")
		if code := d.stopWithin(syscall.SIGTERM); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
	t.Run("idle SIGINT", func(t *testing.T) {
		d := startCapture(t, "", "--listen", testenv.FreeAddr(t, "udp"), "--stale-after", "1h")
		if code := d.stopWithin(syscall.SIGINT); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
	t.Run("stuck stream client", func(t *testing.T) {
		addr := testenv.FreeAddr(t, "udp")
		d := startCapture(t, "", "--listen", addr, "--http-write-timeout", "1h")
		c, err := net.Dial("tcp", strings.TrimPrefix(d.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(c, "GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
		d.waitFor("the stream client", func() bool { return streamClients(d) == 1 })
		ps := capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 24, 2000, 9000))
		testenv.SendUDP(t, addr, ps)
		d.waitWritten(uint64(len(ps)))
		if code := d.stopWithin(syscall.SIGTERM); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
	t.Run("blocked disk write", func(t *testing.T) {
		// A frozen file system blocks the writes in the kernel, where not
		// even SIGKILL reaches them: the process says it gives up within
		// the bound, and ends once the disk answers again.
		fz := testenv.NewFreezable(t)
		defer fz.Thaw() // before the daemon's cleanup waits for it
		addr := testenv.FreeAddr(t, "udp")
		d := startCapture(t, "", "--listen", addr, "--dir", fz.Dir)
		ps := capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 25, 400, 9000))
		testenv.SendUDP(t, addr, ps[:200])
		d.waitWritten(200)
		fz.Freeze()
		testenv.SendUDP(t, addr, ps[200:])
		d.cmd.Process.Signal(syscall.SIGTERM)
		deadline := time.Now().Add(stopBound)
		for !strings.Contains(d.stderr.String(), "vrsniff capture: did not stop within 4.5s of the signal") {
			if time.Now().After(deadline) {
				t.Fatalf("no word of giving up on a blocked write:\n%s", d.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		fz.Thaw()
		select {
		case <-d.done:
		case <-time.After(stopBound):
			t.Fatal("vrsniff did not end once the disk was thawed")
		}
		var ee *exec.ExitError
		if !errors.As(d.err, &ee) || ee.ExitCode() != exitFailure {
			t.Fatalf("exit: %v", d.err)
		}
	})
}

// The shutdown bound: a run that does not return after the signal is
// given up on, with an error that says so.
func TestRunBounded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stuck := make(chan struct{})
	defer close(stuck)
	errc := make(chan error, 1)
	go func() {
		errc <- runBounded(ctx, func(context.Context) error { <-stuck; return nil }, 10*time.Millisecond)
	}()
	cancel()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "did not stop within 10ms") {
			t.Fatalf("runBounded: %v", err)
		}
	case <-time.After(stopBound):
		t.Fatal("runBounded did not give up")
	}
	want := errors.New("source failed")
	if err := runBounded(context.Background(), func(context.Context) error { return want }, time.Hour); err != want {
		t.Fatalf("runBounded: %v, want the run's error", err)
	}
}

// streamClients is stream_clients of /api/stats.
func streamClients(d *daemon) int {
	d.t.Helper()
	_, body := d.request("GET", "/api/stats", nil)
	var st struct {
		StreamClients int `json:"stream_clients"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		d.t.Fatalf("/api/stats: %v", err)
	}
	return st.StreamClients
}
