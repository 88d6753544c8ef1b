package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// daemon is a running `vrsniff capture`.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *testenv.SyncBuffer
	done   chan struct{}
	err    error // of cmd.Wait, once done is closed
	base   string
	token  string
}

// startCapture runs `vrsniff capture` with args plus an HTTP API on a
// loopback port, protected by token, and waits until it captures and
// serves. The daemon is killed at the end of the test if still running.
func startCapture(t *testing.T, token string, args ...string) *daemon {
	t.Helper()
	addr := testenv.FreeAddr(t, "tcp")
	args = append([]string{"capture", "--http", addr, "--stats-every", "0"}, args...)
	if token != "" {
		tf := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tf, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--token-file", tf)
	}
	d := &daemon{t: t, cmd: exec.Command(vrsniffBin, args...), stderr: &testenv.SyncBuffer{}, done: make(chan struct{}),
		base: "http://" + addr, token: token}
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("vrsniff %s:\n%s", strings.Join(args, " "), d.stderr)
		}
	})
	d.waitFor("daemon up", func() bool {
		if !strings.Contains(d.stderr.String(), "msg=capturing") {
			return false
		}
		resp, err := http.Get(d.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return d
}

// waitFor polls cond for up to 30 s; it fails the test if the daemon ends
// or the time runs out.
func (d *daemon) waitFor(what string, cond func() bool, detail ...func() string) {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case <-d.done:
			d.t.Fatalf("waiting for %s: vrsniff ended (%v):\n%s", what, d.err, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			var more string
			for _, f := range detail {
				more += "\n" + f()
			}
			d.t.Fatalf("timed out waiting for %s%s", what, more)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop signals the daemon and returns its exit code.
func (d *daemon) stop(sig syscall.Signal) int {
	d.t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Fatalf("vrsniff did not end on %v", sig)
	}
	if ee, ok := d.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if d.err != nil {
		d.t.Fatal(d.err)
	}
	return 0
}

func (d *daemon) request(method, path string, hdr map[string]string) (*http.Response, []byte) {
	d.t.Helper()
	return testenv.Request(d.t, d.base, d.token, method, path, hdr)
}

type daemonStats struct {
	Pipeline struct {
		Written uint64 `json:"written"`
	} `json:"pipeline"`
}

func (d *daemon) stats() daemonStats {
	d.t.Helper()
	resp, body := d.request("GET", "/api/stats", nil)
	var s daemonStats
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("/api/stats: %s", resp.Status)
	}
	if err := json.Unmarshal(body, &s); err != nil {
		d.t.Fatalf("/api/stats: %v", err)
	}
	return s
}

// waitWritten waits until n packets have gone to the files.
func (d *daemon) waitWritten(n uint64) {
	d.t.Helper()
	var last []byte
	d.waitFor(fmt.Sprintf("%d packets written", n), func() bool {
		resp, body := d.request("GET", "/api/stats", nil)
		last = body
		return resp.StatusCode == http.StatusOK && d.stats().Pipeline.Written >= n
	}, func() string { return string(last) })
}

type captureInfo struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	Packets uint64 `json:"packets"`
	Open    bool   `json:"open"`
}

func (d *daemon) list() []captureInfo {
	d.t.Helper()
	resp, body := d.request("GET", "/api/captures", nil)
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("list: %s", resp.Status)
	}
	var l []captureInfo
	if err := json.Unmarshal(body, &l); err != nil {
		d.t.Fatalf("list: %v: %s", err, body)
	}
	return l
}

// lastCounters parses the last "counters" log line.
func lastCounters(t *testing.T, log string) map[string]string {
	t.Helper()
	var last string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "msg=counters") {
			last = l
		}
	}
	if last == "" {
		t.Fatalf("no counters logged:\n%s", log)
	}
	m := map[string]string{}
	for _, f := range strings.Fields(last) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// kill -9 in the middle of a capture: the closed files read completely,
// the .part file up to its last complete block, and a restart recovers it.
func TestCaptureKilled(t *testing.T) {
	env := testenv.NewNetns(t)
	dir := t.TempDir()
	d := startCapture(t, "", "-i", env.CaptureIf, "--dir", dir, "--rotate-size", "64K", "--workers", "1")
	cs := capturetest.Cases(t, "acl", 24, 300, 1400)
	env.Send(t, capturetest.OuterFrames(cs))
	d.waitWritten(uint64(len(cs)))
	time.Sleep(1500 * time.Millisecond) // more than the flush period
	d.stop(syscall.SIGKILL)

	closed, parts := capturetest.CaptureFiles(t, dir)
	if len(parts) != 1 || len(closed) == 0 {
		t.Fatalf("after kill -9: closed %v, part %v", closed, parts)
	}
	var got []string
	for _, n := range closed {
		for _, r := range tshark(t, filepath.Join(dir, n), nil, "frame.comment", "frame.len") {
			got = append(got, strings.Join(r, "\t"))
		}
	}
	part := filepath.Join(dir, parts[0])
	partRows := readPart(t, part)
	got = append(got, partRows...)
	var want []string
	for _, c := range cs {
		want = append(want, capturetest.Comment(c)+"\t"+strconv.Itoa(len(c.Frame)))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after kill -9 the files hold %d packets (%d in the .part), want the %d sent", len(got), len(partRows), len(want))
	}
	// A kill in the middle of a write leaves half a block behind.
	st, err := os.Stat(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(part, st.Size()-10); err != nil {
		t.Fatal(err)
	}
	if cut := readPart(t, part); !slices.Equal(cut, partRows[:len(partRows)-1]) {
		t.Fatalf("tshark reads %d packets of the cut .part, want %d", len(cut), len(partRows)-1)
	}

	// A new daemon on the directory closes the .part as a listed file.
	d = startCapture(t, "", "-i", env.CaptureIf, "--dir", dir, "--workers", "1")
	l := d.list()
	if len(l) != len(closed)+1 || l[len(l)-1].Name != strings.TrimSuffix(parts[0], ".part") ||
		l[len(l)-1].Packets != uint64(len(partRows)-1) || l[len(l)-1].Open {
		t.Fatalf("after restart: %+v", l)
	}
	d.stop(syscall.SIGTERM)
}

// readPart reads comment and length of every packet tshark can read of a
// file that may be cut short.
func readPart(t *testing.T, name string) []string {
	t.Helper()
	return testenv.Tshark{CutShort: true}.Lines(t, "-n", "-r", name, "-T", "fields", "-e", "frame.comment", "-e", "frame.len")
}

// A YAML --config file is the same as the flags.
func TestCaptureConfigFile(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	mustRun(t, "gen", "--profile", "bench", "--count", "500", "--seed", "26", raw)
	flagsDir, confDir := filepath.Join(dir, "flags"), filepath.Join(dir, "conf")
	mustRun(t, "capture", "--read", raw, "--dir", flagsDir, "--format", "pcap", "--rotate-size", "30K",
		"--max-files", "3", "--direction", "ingress", "--stats-every", "0")
	conf := filepath.Join(dir, "vrsniff.yaml")
	yaml := fmt.Sprintf("read: %s\ndir: %s\nformat: pcap\nrotate-size: 30K\nmax-files: 3\ndirection: ingress\nstats-every: 0s\n", raw, confDir)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "capture", "--config", conf)
	a, _ := capturetest.CaptureFiles(t, flagsDir)
	b, _ := capturetest.CaptureFiles(t, confDir)
	if len(a) != 3 || len(b) != len(a) {
		t.Fatalf("flags made %v, the config file %v", a, b)
	}
	for i := range a {
		x, _ := os.ReadFile(filepath.Join(flagsDir, a[i]))
		y, _ := os.ReadFile(filepath.Join(confDir, b[i]))
		if !bytes.Equal(x, y) {
			t.Errorf("%s and %s differ", a[i], b[i])
		}
	}
	// Flags given too win over the file.
	over := filepath.Join(dir, "over")
	mustRun(t, "capture", "--config", conf, "--dir", over, "--max-files", "1")
	if c, _ := capturetest.CaptureFiles(t, over); len(c) != 1 {
		t.Errorf("--max-files 1 after --config: %v", c)
	}
}

// The signals reach the service: SIGHUP rotates, SIGTERM ends the capture
// with exit 0, every file closed, and the totals in the last log line.
func TestCaptureSignals(t *testing.T) {
	dir := t.TempDir()
	addr := testenv.FreeAddr(t, "udp")
	d := startCapture(t, "", "--listen", addr, "--dir", dir)
	ps := capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 22, 400, 9000))
	testenv.SendUDP(t, addr, ps[:200])
	d.waitWritten(200)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor("rotation", func() bool { closed, _ := capturetest.CaptureFiles(t, dir); return len(closed) == 1 })
	testenv.SendUDP(t, addr, ps[200:])
	d.waitWritten(uint64(len(ps)))
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d on SIGTERM", code)
	}
	closed, parts := capturetest.CaptureFiles(t, dir)
	if len(closed) != 2 || len(parts) != 0 {
		t.Fatalf("after SIGTERM: closed %v, open %v", closed, parts)
	}
	if c := lastCounters(t, d.stderr.String()); c["read"] != "400" || c["written"] != "400" || c["store_dropped"] != "0" {
		t.Errorf("final counters %v", c)
	}
}

// A port already taken ends the start-up with exit 1 and the reason,
// before a packet is read.
func TestCaptureHTTPBindFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	in := testenv.FieldCase(t, "f01_tlv_lengths_16_and_2.pcap")
	_, stderr, code := run(t, nil, "capture", "--read", in, "--dir", t.TempDir(), "--http", ln.Addr().String())
	if code != exitFailure || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("port taken: exit %d\n%s", code, stderr)
	}
}

// A capture that would keep nothing is refused instead of running silently.
func TestCaptureNothingKept(t *testing.T) {
	in := testenv.FieldCase(t, "f01_tlv_lengths_16_and_2.pcap")
	_, stderr, code := run(t, nil, "capture", "--read", in)
	if code != exitUsage || !strings.Contains(stderr, "nothing would be kept") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}
