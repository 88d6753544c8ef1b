package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// decap takes tcpdump's and editcap's letters: -r IN, -w OUT, -c N,
// -F FORMAT, and the words left over as the inner filter.
func TestDecapAliases(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	mustRun(t, "gen", "--count", "200", "--seed", "8", "--profile", "acl", raw)
	all := filepath.Join(dir, "all.pcapng")
	mustRun(t, "decap", "--quiet", raw, all)
	total := len(readAll(t, all))

	out := filepath.Join(dir, "five.pcap")
	if _, stderr, code := run(t, nil, "decap", "-r", raw, "-w", out, "-c", "5", "-F", "pcap", "--quiet"); code != exitOK {
		t.Fatalf("decap -r -w -c 5 -F pcap: exit %d\n%s", code, stderr)
	}
	if b, _ := os.ReadFile(out); len(b) < 4 || !bytes.Equal(b[:4], []byte{0xd4, 0xc3, 0xb2, 0xa1}) {
		t.Errorf("-F pcap wrote no classic pcap: % x", b[:min(len(b), 4)])
	}
	if n := len(tshark(t, out, nil, "frame.number")); n != 5 || total <= 5 {
		t.Errorf("-c 5: %d packets of %d", n, total)
	}

	// The filter after -r and -w, the flags grouped and given after it.
	udp := filepath.Join(dir, "udp.pcapng")
	if _, stderr, code := run(t, nil, "decap", "-r", raw, "-w", udp, "udp", "--quiet"); code != exitOK {
		t.Fatalf("decap -r -w udp: exit %d\n%s", code, stderr)
	}
	bpf := filepath.Join(dir, "bpf.pcapng")
	mustRun(t, "decap", "--quiet", "--bpf", "udp", raw, bpf)
	if got, want := readAll(t, udp), readAll(t, bpf); len(got) != len(want) || len(got) == 0 || len(got) == total {
		t.Errorf("udp after -r and -w: %d packets, --bpf udp %d, of %d", len(got), len(want), total)
	}
	// -r IN and OUT as the one argument left.
	two := filepath.Join(dir, "two.pcapng")
	if _, stderr, code := run(t, nil, "decap", "-c2", "--quiet", "-r", raw, two); code != exitOK || len(readAll(t, two)) != 2 {
		t.Fatalf("decap -c2 -r IN OUT: exit %d\n%s", code, stderr)
	}
}

// capture -w - writes one pcapng stream to standard output, a packet at a
// time: the first packet is there while the capture goes on, with its
// metadata comment, and the logs stay on standard error.
func TestCaptureWriteStdoutLive(t *testing.T) {
	addr := testenv.FreeAddr(t, "udp")
	cmd := exec.Command(vrsniffBin, "capture", "--listen", addr, "-w", "-", "--stats-every", "0")
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testenv.WaitFor(t, "the capture to start", func() bool { return strings.Contains(stderr.String(), "msg=capturing") })
	ps := capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 31, 10, 9000))
	testenv.SendUDP(t, addr, ps[:1])
	got := make(chan error, 1)
	var p mirror.Packet
	go func() {
		r, err := pcapfile.NewReader(stdout)
		if err == nil {
			err = r.Next(&p)
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("reading the first packet from standard output: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no packet came out of capture -w - while it ran")
	}
	if len(p.Data) == 0 || len(p.Comments) == 0 || !bytes.Contains(p.Comments[0], []byte("vn")) {
		t.Errorf("the first packet: %d bytes, comments %q; want the frame and its metadata", len(p.Data), p.Comments)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("capture -w - on SIGINT: %v\n%s", err, stderr.String())
	}
}

// capture -w - into tshark: -c N stops at N packets with exit 0, and tshark
// reads the stream to its end.
func TestCaptureWriteStdoutCount(t *testing.T) {
	addr := testenv.FreeAddr(t, "udp")
	cmd := exec.Command(vrsniffBin, "capture", "--listen", addr, "-w", "-", "-c", "5", "--stats-every", "0")
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ts := testenv.Tshark{Stdin: stdout}.Start(t, "-r", "-", "-T", "fields", "-e", "frame.comment")
	testenv.WaitFor(t, "the capture to start", func() bool { return strings.Contains(stderr.String(), "msg=capturing") })
	// More than 5: the capture may end, and refuse the rest, before they
	// are all sent.
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 32, 40, 9000)) {
		c.Write(p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("capture -c 5: %v\n%s", err, stderr.String())
	}
	rows := ts.Rows(t)
	if len(rows) != 5 {
		t.Fatalf("tshark read %d packets, want 5", len(rows))
	}
	for _, r := range rows {
		if len(r) == 0 || !strings.Contains(r[0], "vn") {
			t.Errorf("packet without its metadata comment: %q", r)
		}
	}
	if !strings.Contains(stderr.String(), "out_written=5") {
		t.Errorf("the counters do not say 5 written to the stream:\n%s", stderr.String())
	}
}

// -a duration:1 ends a capture that gets no packet, with exit 0 and a
// valid empty file; -a packets:N and -r FILE with a trailing filter work as
// -c and --read --bpf do.
func TestCaptureAutostop(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "idle.pcapng")
	if _, stderr, code := run(t, nil, "capture", "--listen", testenv.FreeAddr(t, "udp"), "-w", out, "-a", "duration:1", "--stats-every", "0"); code != exitOK {
		t.Fatalf("-a duration:1: exit %d\n%s", code, stderr)
	}
	if ps := readAll(t, out); len(ps) != 0 {
		t.Errorf("%d packets in the idle capture", len(ps))
	}

	raw := filepath.Join(dir, "raw.pcap")
	mustRun(t, "gen", "--count", "100", "--seed", "9", "--profile", "acl", raw)
	two := filepath.Join(dir, "two.pcapng")
	cmd := exec.Command(vrsniffBin, "capture", "-r", raw, "-w", two)
	cmd.Env = append(os.Environ(), "VRSNIFF_AUTOSTOP=duration:3600,packets:9,packets:2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("VRSNIFF_AUTOSTOP=duration:3600,packets:9,packets:2: %v\n%s", err, out)
	}
	if n := len(tshark(t, two, nil, "frame.number")); n != 2 {
		t.Errorf("-a packets:2 from the environment: %d packets", n)
	}
	if _, stderr, code := run(t, nil, "capture", "-r", raw, "-w", two, "-a", "packets:2", "-a", "duration:3600"); code != exitOK {
		t.Fatalf("-a packets:2: exit %d\n%s", code, stderr)
	}
	if n := len(tshark(t, two, nil, "frame.number")); n != 2 {
		t.Errorf("-a packets:2: %d packets", n)
	}
	udp := filepath.Join(dir, "udp.pcapng")
	if _, stderr, code := run(t, nil, "capture", "-read", raw, "-w", udp, "udp"); code != exitOK {
		t.Fatalf("capture -read FILE -w OUT udp: exit %d\n%s", code, stderr)
	}
	all, bpf := filepath.Join(dir, "all.pcapng"), filepath.Join(dir, "bpf.pcapng")
	mustRun(t, "capture", "-r", raw, "-w", all)
	mustRun(t, "capture", "-r", raw, "-w", bpf, "--bpf", "udp")
	n, want := len(readAll(t, udp)), len(readAll(t, bpf))
	if n != want || n == 0 || n == len(readAll(t, all)) {
		t.Errorf("trailing udp filter: %d packets, --bpf udp %d, of %d", n, want, len(readAll(t, all)))
	}
}

// What the capture cannot do, or would silently change, is refused before
// it starts: exit 2, one line, an existing -w file untouched.
func TestCaptureRefuses(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	mustRun(t, "gen", "--count", "10", raw)
	out := filepath.Join(dir, "keep.pcapng")
	keep := []byte("an earlier capture")
	if err := os.WriteFile(out, keep, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ring-mb", "3"}, "AF_PACKET ring of 3 MiB: want at least 4 MiB"},
		{[]string{"--snaplen", "-1"}, "snap length -1: must not be negative"},
		{[]string{"-s", "-5"}, "snap length -5"},
		{[]string{"-a", "bogus:1"}, `unknown condition "bogus"`},
		{[]string{"-a", "duration:x"}, `-a "duration:x": want duration:N`},
		{[]string{"-a", "duration"}, `-a "duration": want duration:N`},
		{[]string{"--bpf", "udp", "tcp"}, "either with --bpf or after the flags"},
		{[]string{"-c", "-1"}, "packet count -1"},
		{[]string{"-F", "txt"}, `--format "txt"`},
		{[]string{"-i", "lo", "--listen", ":9"}, "exactly one source"},
	} {
		args := append([]string{"capture", "-r", raw, "-w", out}, c.args...)
		stdout, stderr, code := run(t, nil, args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"capture", "-r", raw, "--dir", dir, "-U"}, "-U needs -w"},
		{[]string{"capture", "-r", raw, "--dir", dir, "-a", "filesize:10"}, "-a filesize needs -w"},
		{[]string{"capture", "-r", raw}, "nothing would be kept"},
	} {
		if _, stderr, code := run(t, nil, c.args...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, keep) {
		t.Errorf("a refused capture changed %s", out)
	}
	// A capture that cannot start (the input is missing) leaves it too.
	if _, _, code := run(t, nil, "capture", "-r", filepath.Join(dir, "none.pcap"), "-w", out); code != exitFailure {
		t.Errorf("missing input: exit %d, want 1", code)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, keep) {
		t.Errorf("a capture that could not start changed %s", out)
	}
}

// A reader of -w - that goes away (Wireshark closed) ends the capture
// cleanly, exit 0, instead of SIGPIPE killing it.
func TestCaptureWriteStdoutReaderGone(t *testing.T) {
	addr := testenv.FreeAddr(t, "udp")
	dir := t.TempDir()
	cmd := exec.Command(vrsniffBin, "capture", "--listen", addr, "-w", "-", "--dir", dir, "--stats-every", "0")
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testenv.WaitFor(t, "the capture to start", func() bool { return strings.Contains(stderr.String(), "msg=capturing") })
	ps := capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 33, 10, 9000))
	testenv.SendUDP(t, addr, ps[:1])
	r, err := pcapfile.NewReader(stdout)
	if err != nil {
		t.Fatal(err)
	}
	var p mirror.Packet
	if err := r.Next(&p); err != nil {
		t.Fatal(err)
	}
	stdout.Close()
	// Packets until the capture notices: the first write after the close
	// fails.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("capture -w - after its reader left: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "standard output closed by its reader") {
				t.Errorf("no word of the reader leaving:\n%s", stderr.String())
			}
			closed, parts := capturetest.CaptureFiles(t, dir)
			if len(closed) == 0 || len(parts) != 0 {
				t.Errorf("capture files %v, %v: want them all closed", closed, parts)
			}
			return
		case <-time.After(10 * time.Millisecond):
			c.Write(ps[i%len(ps)])
		}
	}
}
