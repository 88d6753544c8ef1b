package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

// withSrcVN returns a Juniper-header mirror payload like p with its source
// VN (TLV 3) set to name.
func withSrcVN(t *testing.T, p []byte, name string) []byte {
	t.Helper()
	var out []byte
	for i := 0; ; {
		if i+2 > len(p) {
			t.Fatal("payload ends inside its metadata")
		}
		typ, n := p[i], int(p[i+1])
		if typ == 255 {
			return append(out, p[i:]...)
		}
		if typ == 3 {
			out = append(append(out, 3, byte(len(name))), name...)
		} else {
			out = append(out, p[i:i+2+n]...)
		}
		i += 2 + n
	}
}

func procFDs(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// Spoofed VN names once opened a file per pair until the daemon ran out of
// descriptors and its HTTP server stopped accepting, with a warning per
// packet. Now at most --split-max-open split files are open, the rest of
// the pairs go to the other set, and the condition is logged once.
func TestCaptureSplitFlood(t *testing.T) {
	const pairs, maxOpen = 3000, 16
	dir := t.TempDir()
	addr := testenv.FreeAddr(t, "udp")
	d := startCapture(t, "", "--listen", addr, "--dir", dir, "--split-by", "vn", "--split-max-open", strconv.Itoa(maxOpen))
	fds0 := procFDs(t, d.cmd.Process.Pid)
	base := udpPayloads(t, cases(t, "acl", 31, 1, 9000))[0]
	var ps [][]byte
	for i := range pairs {
		ps = append(ps, withSrcVN(t, base, "default-domain:evil:spoof-"+strconv.Itoa(i)))
	}
	testenv.SendUDP(t, addr, ps)
	d.waitWritten(pairs)
	// The split files, the other set's, and a connection or two of the API.
	if n := procFDs(t, d.cmd.Process.Pid); n > fds0+maxOpen+1+2 {
		t.Errorf("%d descriptors open, %d before the flood", n, fds0)
	}
	if l := d.list(); len(l) != maxOpen+1 {
		t.Errorf("API lists %d files", len(l))
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	c := lastCounters(t, d.stderr.String())
	if c["written"] != strconv.Itoa(pairs) || c["split_overflow"] != strconv.Itoa(pairs-maxOpen) || c["store_dropped"] != "0" {
		t.Errorf("final counters %v", c)
	}
	closed, parts := captureFiles(t, dir)
	if len(parts) != 0 || len(closed) != maxOpen+1 {
		t.Fatalf("%d files, %d left open", len(closed), len(parts))
	}
	if n := strings.Count(d.stderr.String(), "level=WARN"); n != 1 || !strings.Contains(d.stderr.String(), "more active VN pairs") {
		t.Errorf("%d warnings:\n%s", n, d.stderr)
	}
}

// With its directory removed under it, the daemon used to write on into
// unlinked files and report them written. Now it creates the directory
// again, goes on there, and the final counters add up: what is on disk is
// what was written less what was lost with the old directory.
func TestCaptureDirRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "captures")
	addr := testenv.FreeAddr(t, "udp")
	d := startCapture(t, "", "--listen", addr, "--dir", dir)
	ps := udpPayloads(t, cases(t, "acl", 32, 300, 9000))
	testenv.SendUDP(t, addr, ps[:200])
	d.waitWritten(200)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	d.waitFor("the directory created again", func() bool { return strings.Contains(d.stderr.String(), "capture directory created again") })
	testenv.SendUDP(t, addr, ps[200:])
	d.waitWritten(300)
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	closed, parts := captureFiles(t, dir)
	if len(parts) != 0 {
		t.Fatalf("left open: %v", parts)
	}
	onDisk := 0
	for _, n := range closed {
		onDisk += len(tshark(t, filepath.Join(dir, n), nil, "frame.len"))
	}
	c := lastCounters(t, d.stderr.String())
	num := func(k string) int {
		n, err := strconv.Atoi(c[k])
		if err != nil {
			t.Fatalf("counter %s: %q", k, c[k])
		}
		return n
	}
	if onDisk != 100 || num("written")-num("store_lost") != onDisk || num("written")+num("store_dropped") != 300 || num("kept") != 300 {
		t.Errorf("%d packets on disk; final counters %v", onDisk, c)
	}
}

// A record longer than readers accept (1 MiB in a file whose snap length
// allows 16 MiB) is cut, so that every file the capture writes opens in
// tshark, rejects included.
func TestCaptureHugeRecord(t *testing.T) {
	in := testenv.HostileCase(t, "pcap-1mib-record.pcap")
	for _, format := range []string{"pcapng", "pcap"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			stderr := mustRun(t, "capture", "--read", in, "--dir", dir, "--format", format, "--keep-rejects", "--stats-every", "0")
			var files []string
			for _, d := range []string{dir, filepath.Join(dir, "rejects")} {
				closed, parts := captureFiles(t, d)
				if len(parts) != 0 {
					t.Fatalf("left open: %v", parts)
				}
				for _, n := range closed {
					files = append(files, filepath.Join(d, n))
				}
			}
			c := lastCounters(t, stderr)
			packets := 0
			for _, f := range files {
				for _, row := range tshark(t, f, nil, "frame.cap_len") {
					if n, _ := strconv.Atoi(row[0]); n > 262144 {
						t.Errorf("%s: a record of %d bytes", f, n)
					}
					packets++
				}
			}
			if len(files) == 0 || strconv.Itoa(packets) != c["read"] {
				t.Fatalf("%d files holding %d packets; final counters %v", len(files), packets, c)
			}
		})
	}
}

// A port already taken ends the start-up with exit 1 and the reason,
// before a packet is read; so does a certificate that does not load.
func TestCaptureHTTPBindFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	in := testenv.FieldCase(t, "f01_tlv_lengths_16_and_2.pcap")
	dir := filepath.Join(t.TempDir(), "caps")
	_, stderr, code := run(t, nil, "capture", "--read", in, "--dir", dir, "--http", ln.Addr().String())
	if code != exitFailure || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("port taken: exit %d\n%s", code, stderr)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files written before the start-up failed", len(ents))
	}
	cert := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = run(t, nil, "capture", "--read", in, "--http", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", cert)
	if code != exitFailure || !strings.Contains(stderr, "TLS") {
		t.Fatalf("bad certificate: exit %d\n%s", code, stderr)
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

// A replayed file served with --linger ends with its files finished:
// renamed from .part, listed as closed, ready to download.
func TestCaptureLingerFinishesFiles(t *testing.T) {
	in := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	dir := filepath.Join(t.TempDir(), "caps")
	d := startCapture(t, "linger-token-0123456789", "--read", in, "--linger", "--dir", dir)
	d.waitFor("the end of the input", func() bool { return strings.Contains(d.stderr.String(), "source ended") })
	d.waitFor("finished files", func() bool {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return false
		}
		n := 0
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".part") {
				return false
			}
			if strings.HasSuffix(e.Name(), ".pcapng") {
				n++
			}
		}
		return n > 0
	})
}
