package capture

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// notifySocket listens where systemd would for a Type=notify unit, sets
// NOTIFY_SOCKET to it and returns what arrives there, one datagram each.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	addr := &net.UnixAddr{Name: filepath.Join(t.TempDir(), "notify"), Net: "unixgram"}
	conn, err := net.ListenUnixgram("unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", addr.Name)
	msgs := make(chan string, 1024)
	go func() {
		defer close(msgs)
		b := make([]byte, 4096)
		for {
			n, err := conn.Read(b)
			if err != nil {
				return
			}
			msgs <- string(b[:n])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return msgs
}

// next returns the next notification, failing after 30 s without one.
func next(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no notification")
	}
	return ""
}

// READY=1 comes once the API answers, WATCHDOG=1 keeps coming while the
// capture runs, STOPPING=1 when it ends, and nothing after READY=1 but
// those.
func TestSystemdNotify(t *testing.T) {
	msgs := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", "")
	c := config(t.TempDir())
	c.Listen = testenv.FreeAddr(t, "udp")
	svc, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	if m := next(t, msgs); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	resp, err := http.Get("http://" + svc.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("at READY=1 the API does not answer: %v", err)
	}
	resp.Body.Close()
	for range 3 {
		if m := next(t, msgs); m != "WATCHDOG=1" {
			t.Fatalf("notification %q while running, want WATCHDOG=1", m)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for {
		m := next(t, msgs)
		if m == "STOPPING=1" {
			break
		}
		if m != "WATCHDOG=1" {
			t.Fatalf("notification %q while stopping", m)
		}
	}
}

// Without WATCHDOG_USEC no watchdog pings are sent: READY=1, then
// STOPPING=1.
func TestSystemdNoWatchdog(t *testing.T) {
	msgs := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "")
	c := config("")
	c.Listen = testenv.FreeAddr(t, "udp")
	r := start(t, c)
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if m := next(t, msgs); m != "READY=1" {
		t.Fatalf("first notification %q", m)
	}
	if m := next(t, msgs); m != "STOPPING=1" {
		t.Fatalf("second notification %q", m)
	}
}

// healthz returns /healthz's status and body.
func (r *running) healthz() (int, string) {
	r.t.Helper()
	resp, body := r.request("GET", "/healthz", nil)
	return resp.StatusCode, string(body)
}

// With StaleAfter, /healthz answers 503 naming it while no packet comes,
// and ok again once one does.
func TestStaleAfter(t *testing.T) {
	c := config("")
	c.Listen, c.StaleAfter = testenv.FreeAddr(t, "udp"), 300*time.Millisecond
	r := start(t, c)
	ps := capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 5, 4, 1400))
	var body string
	r.waitFor("/healthz 503", func() bool {
		code, b := r.healthz()
		body = b
		return code == http.StatusServiceUnavailable
	})
	if !strings.HasPrefix(body, "no packet read for ") || !strings.Contains(body, "stale after 300ms") {
		t.Fatalf("stale /healthz says %q", body)
	}
	testenv.SendUDP(t, c.Listen, ps[:1])
	r.waitFor("/healthz ok after a packet", func() bool { code, _ := r.healthz(); return code == http.StatusOK })
	r.waitFor("/healthz 503 again", func() bool { code, _ := r.healthz(); return code == http.StatusServiceUnavailable })
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A replayed file that ended, served with Linger, is not stale.
func TestStaleAfterLinger(t *testing.T) {
	c := config(filepath.Join(t.TempDir(), "caps"))
	c.Read, c.Linger, c.StaleAfter = testenv.FieldCase(t, "f13_long_k8s_names.pcap"), true, 10*time.Millisecond
	r := start(t, c)
	r.waitFor("the end of the input", func() bool { return r.svc.Stats().Ended })
	time.Sleep(50 * time.Millisecond) // past StaleAfter, which must not apply
	if code, body := r.healthz(); code != http.StatusOK {
		t.Fatalf("lingering: /healthz %d %q", code, body)
	}
}

// The capture interface deleted, or set down, under a running capture:
// Run ends with an error that says so, and the files are closed.
func TestInterfaceGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		ip   func(ifname string) []string // the ip command's arguments
		want string
	}{
		{"deleted", func(i string) []string { return []string{"link", "delete", i} }, "the interface is gone"},
		{"down", func(i string) []string { return []string{"link", "set", i, "down"} }, "the interface is down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.NewNetns(t)
			dir := t.TempDir()
			c := config(dir)
			c.Interface = env.CaptureIf
			r := start(t, c)
			cs := capturetest.Cases(t, "acl", 23, 20, 1400)
			env.Send(t, capturetest.OuterFrames(cs))
			r.waitWritten(uint64(len(cs)))
			args := tc.ip(env.CaptureIf)
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v: %s", args, err, out)
			}
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				t.Fatalf("Run did not end when the interface was %s", tc.name)
			}
			if r.err == nil || !strings.Contains(r.err.Error(), "read "+env.CaptureIf+": "+tc.want) {
				t.Fatalf("Run: %v", r.err)
			}
			if closed, parts := capturetest.CaptureFiles(t, dir); len(closed) != 1 || len(parts) != 0 {
				t.Errorf("files after the failure: closed %v, open %v", closed, parts)
			}
		})
	}
}

// corruptFile is a copy of a field case whose second record claims 2 GiB:
// readable at first, corrupt in the middle.
func corruptFile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(testenv.FieldCase(t, "f13_long_k8s_names.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	first := 24 + 16 + int(uint32(b[24+8])|uint32(b[24+9])<<8|uint32(b[24+10])<<16|uint32(b[24+11])<<24)
	copy(b[first+8:first+12], []byte{0xff, 0xff, 0xff, 0x7f})
	name := filepath.Join(t.TempDir(), "corrupt.pcap")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// A replayed file corrupt in the middle ends Run with the error, Linger
// or not, and the /healthz of a lingering capture does not outlive it.
func TestReadCorrupt(t *testing.T) {
	in := corruptFile(t)
	for _, linger := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "caps")
		c := config(dir)
		c.Read, c.Linger = in, linger
		svc, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- svc.Run(context.Background()) }()
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("linger %v: Run did not end on a corrupt file", linger)
		}
		if err == nil || !strings.Contains(err.Error(), "exceeds limit") {
			t.Fatalf("linger %v: Run: %v", linger, err)
		}
		if closed, parts := capturetest.CaptureFiles(t, dir); len(closed) != 1 || len(parts) != 0 {
			t.Errorf("linger %v: files: closed %v, open %v", linger, closed, parts)
		}
		if st := svc.Stats(); st.Pipeline.Read != 1 {
			t.Errorf("linger %v: %d packets read before the corrupt one, want 1", linger, st.Pipeline.Read)
		}
	}
}

// A capture directory that cannot be written (a read-only mount: root
// passes permission checks) fails New, with the directory named.
func TestDirNotWritable(t *testing.T) {
	mnt := testenv.MountTmpfs(t, "1m")
	if err := os.Mkdir(filepath.Join(mnt, "caps"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v: %s", err, out)
	}
	c := config(filepath.Join(mnt, "caps"))
	c.Read = testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	svc, err := New(c)
	if err == nil {
		svc.Close()
		t.Fatal("New accepted a read-only capture directory")
	}
	if !strings.Contains(err.Error(), "capture directory "+filepath.Join(mnt, "caps")+" is not writable") ||
		!strings.Contains(err.Error(), "read-only file system") {
		t.Fatalf("New: %v", err)
	}
}

// The reasons of liveness.check, on a clock the test sets: stale only
// past StaleAfter and while the input goes on, a failed source whatever
// the clock.
func TestLivenessCheck(t *testing.T) {
	var read uint64
	var ended bool
	now := time.Unix(1000, 0)
	l := &liveness{staleAfter: time.Minute, read: func() uint64 { return read }, ended: func() bool { return ended },
		now: func() time.Time { return now }}
	l.sample()
	now = now.Add(59 * time.Second)
	if err := l.check(); err != nil {
		t.Fatalf("59 s after the start: %v", err)
	}
	now = now.Add(time.Second)
	if err := l.check(); err == nil || err.Error() != "no packet read for 1m0s (stale after 1m0s)" {
		t.Fatalf("60 s after the start: %v", err)
	}
	read++
	if err := l.check(); err != nil {
		t.Fatalf("after a packet: %v", err)
	}
	now = now.Add(2 * time.Minute)
	ended = true
	if err := l.check(); err != nil {
		t.Fatalf("after the end of the input: %v", err)
	}
	l.failed(errors.New("read ens4: the interface is gone"))
	if err := l.check(); err == nil || err.Error() != "source failed: read ens4: the interface is gone" {
		t.Fatalf("failed source: %v", err)
	}
}

// A capture is stuck when it read nothing during a period in which the
// kernel dropped packets for it; idle or busy it is not.
func TestStall(t *testing.T) {
	var s stall
	for i, c := range []struct {
		read, dropped uint64
		stuck         bool
	}{
		{0, 0, false},    // the first sample has nothing to compare with
		{0, 0, false},    // idle
		{10, 0, false},   // reading
		{20, 5, false},   // reading, with drops
		{20, 5, false},   // idle again
		{20, 9, true},    // drops, nothing read: stuck
		{20, 12, true},   // still
		{21, 100, false}, // reading again
	} {
		if got := s.stuck(c.read, c.dropped); got != c.stuck {
			t.Errorf("sample %d (read %d, dropped %d): stuck %v, want %v", i, c.read, c.dropped, got, c.stuck)
		}
	}
}

// A capture stuck on a disk that stopped answering, while packets keep
// coming and the kernel drops them, withholds the watchdog ping (systemd
// then restarts it), and pings again once the disk answers.
func TestWatchdogStuck(t *testing.T) {
	msgs := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")
	fz := testenv.NewFreezable(t)
	c := config(fz.Dir)
	c.Listen, c.Source.ReadBuffer = testenv.FreeAddr(t, "udp"), 64<<10
	r := start(t, c)
	defer fz.Thaw() // before the cleanup stops the capture
	if m := next(t, msgs); m != "READY=1" {
		t.Fatalf("first notification %q", m)
	}
	ps := capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 26, 200, 9000))
	testenv.SendUDP(t, c.Listen, ps)
	r.waitWritten(uint64(len(ps)))
	fz.Freeze()
	conn, err := net.Dial("udp", c.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sending := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; ; i++ {
			select {
			case <-sending:
				return
			default:
				_, _ = conn.Write(ps[i%len(ps)]) // what the kernel drops is the point
			}
		}
	}()
	r.waitFor("the watchdog withheld", func() bool {
		return strings.Contains(r.log.String(), "withholding the watchdog ping")
	})
	close(sending)
	<-sent
	fz.Thaw()
	for len(msgs) > 0 {
		<-msgs
	}
	if m := next(t, msgs); m != "WATCHDOG=1" {
		t.Fatalf("after the thaw: %q, want WATCHDOG=1", m)
	}
}
