package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// openStore opens prefix of e's bucket as the capture would.
func openStore(t *testing.T, e testenv.S3Endpoint, prefix string) *objstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := objstore.Open(ctx, objstore.Config{URL: "s3://" + e.Bucket + "/" + prefix, Endpoint: e.URL,
		Region: e.Region, AccessKey: e.AccessKey, SecretKey: e.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// storedManifests reads every manifest of the store and checks that each
// names objects that are there, whole: the capture file of its size and
// SHA-256, the index of its size. A manifest naming anything else (a file
// visible without its data) fails the test.
func storedManifests(t *testing.T, st *objstore.Store) []objstore.Manifest {
	t.Helper()
	ms, problems := readManifests(t, st)
	for _, p := range problems {
		t.Error(p)
	}
	return ms
}

// readManifests reads every manifest of the store, and says what is wrong
// with the objects each names.
func readManifests(t *testing.T, st *objstore.Store) (ms []objstore.Manifest, problems []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for o, err := range st.List(ctx, "v1/dt=") {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(o.Key, objstore.SuffixManifest) {
			continue
		}
		b, err := st.Get(ctx, o.Key, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		var m objstore.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("manifest %s: %v", o.Key, err)
		}
		pcap, err := st.Get(ctx, m.Pcap, m.PcapSize+1)
		if err != nil {
			problems = append(problems, fmt.Sprintf("manifest %s names %s: %v", o.Key, m.Pcap, err))
			continue
		}
		if sum := sha256.Sum256(pcap); int64(len(pcap)) != m.PcapSize || hex.EncodeToString(sum[:]) != m.PcapSHA256 {
			problems = append(problems, fmt.Sprintf("manifest %s: %s holds %d bytes of SHA-256 %x, the manifest says %d bytes of %s",
				o.Key, m.Pcap, len(pcap), sum, m.PcapSize, m.PcapSHA256))
		}
		if m.Index != "" {
			if ix, err := st.Stat(ctx, m.Index); err != nil || ix.Size != m.IndexSize {
				problems = append(problems, fmt.Sprintf("manifest %s: index %s is %+v (%v), the manifest says %d bytes", o.Key, m.Index, ix, err, m.IndexSize))
			}
		}
		ms = append(ms, m)
	}
	return ms, problems
}

// manifestKeys counts the manifests in the store, without reading them.
func manifestKeys(t *testing.T, st *objstore.Store) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	for o, err := range st.List(ctx, "v1/dt=") {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(o.Key, objstore.SuffixManifest) {
			n++
		}
	}
	return n
}

func manifestPackets(ms []objstore.Manifest) uint64 {
	var n uint64
	for _, m := range ms {
		n += m.Packets
	}
	return n
}

// spooled lists the capture files (closed and .part) left in dir.
func spooled(t *testing.T, dir string) []string {
	t.Helper()
	fs, err := filepath.Glob(filepath.Join(dir, "*.pcapng*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		if !strings.HasSuffix(f, ".json") && !strings.HasSuffix(f, ".parquet") {
			out = append(out, filepath.Base(f))
		}
	}
	return out
}

// kill -9 while a capture file is being uploaded in parts: no manifest
// ever names a missing or partial object, and the next start on the same
// spool uploads what was left, aborts the unfinished multipart upload and
// empties the spool, every packet stored once.
func TestUploadKilled(t *testing.T) {
	e := testenv.S3(t)
	t.Setenv("AWS_ACCESS_KEY_ID", e.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.SecretKey)
	const prefix = "killed"
	store := "s3://" + e.Bucket + "/" + prefix
	st := openStore(t, e, prefix)
	// The uploads go through a proxy slow enough that a file of two parts
	// takes a second or more.
	slow := testenv.NewThrottle(t, strings.TrimPrefix(e.URL, "http://"), 4<<20)

	tmp := t.TempDir()
	in := filepath.Join(tmp, "in.pcap")
	mustRun(t, "gen", "--count", "9000", "--mix", "acl=3,port=1,fragmented=1", "--frame-sizes", "1514", in)
	all := filepath.Join(tmp, "all.pcapng")
	mustRun(t, "decap", in, all)
	want := uint64(len(readAll(t, all)))

	dir := t.TempDir()
	cmd := exec.Command(vrsniffBin, "capture", "-r", in, "--dir", dir, "--rotate-size", "6M", "--s3-part-size", "5M",
		"--store", store, "--s3-endpoint", "http://"+slow.Addr, "--sniffer-id", "killed-1",
		"--upload-parallel", "1", "--stats-every", "0")
	stderr := &testenv.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	// Kill it once a file is stored and the next one is in parts on its
	// way.
	testenv.WaitFor(t, "a stored file and a multipart upload under way", func() bool {
		select {
		case err := <-done:
			t.Fatalf("capture ended (%v) before a multipart upload was seen:\n%s", err, stderr)
		default:
		}
		return len(e.IncompleteUploads(t, prefix+"/")) > 0 && manifestKeys(t, st) > 0
	})
	cmd.Process.Signal(syscall.SIGKILL)
	<-done

	before := storedManifests(t, st)
	left := spooled(t, dir)
	if len(left) == 0 {
		t.Fatal("the spool is empty after the kill: nothing was left to upload")
	}
	if len(e.IncompleteUploads(t, prefix+"/")) == 0 {
		t.Error("no incomplete multipart upload after the kill")
	}
	t.Logf("killed with %d files stored, %d in the spool (%d bytes through the proxy)", len(before), len(left), slow.Sent())

	// The next start on the spool, with nothing new to capture.
	empty := filepath.Join(tmp, "empty.pcap")
	mustRun(t, "gen", "--count", "0", empty)
	stderr2 := mustRun(t, "capture", "-r", empty, "--dir", dir, "--store", store, "--s3-endpoint", e.URL,
		"--sniffer-id", "killed-1", "--stats-every", "0")
	if left := spooled(t, dir); len(left) != 0 {
		t.Errorf("left in the spool after the restart: %v\n%s", left, stderr2)
	}
	after := storedManifests(t, st)
	if got := manifestPackets(after); got != want {
		t.Errorf("%d manifests hold %d packets, the capture decoded %d", len(after), got, want)
	}
	seqs := map[uint64]bool{}
	for _, m := range after {
		if seqs[m.Seq] {
			t.Errorf("file %d stored twice", m.Seq)
		}
		seqs[m.Seq] = true
	}
	if up := e.IncompleteUploads(t, prefix+"/"); len(up) != 0 {
		t.Errorf("incomplete multipart uploads left after the restart: %v", up)
	}
}

// storeDown is how long the object store stays down in the outage tests:
// long enough for files to close and fail to upload; an outage of any
// length is ridden out the same way.
const storeDown = 3 * time.Second

// metric reads one series of the daemon's /metrics; a missing one is 0.
func (d *daemon) metric(name string) float64 {
	d.t.Helper()
	resp, body := d.request("GET", "/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("/metrics: %s", resp.Status)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				d.t.Fatalf("/metrics: %q: %v", l, err)
			}
			return f
		}
	}
	return 0
}

// closedFiles lists the closed capture files waiting in the spool dir.
func closedFiles(t *testing.T, dir string) []string {
	t.Helper()
	closed, _ := capturetest.CaptureFiles(t, dir)
	return closed
}

// sender sends the payloads of mirrored packets to a capture's --listen
// address in batches, each after the last was written.
type sender struct {
	d        *daemon
	addr     string
	payloads [][]byte
	next     int
	sent     uint64
}

// send sends n more datagrams and waits until the capture has taken them
// (written or dropped).
func (s *sender) send(n int) {
	s.d.t.Helper()
	var batch [][]byte
	for range n {
		batch = append(batch, s.payloads[s.next%len(s.payloads)])
		s.next++
	}
	testenv.SendUDP(s.d.t, s.addr, batch)
	s.sent += uint64(n)
	s.d.waitWritten(s.sent)
}

// The object store goes down while traffic flows, and comes back: the
// files wait in the spool meanwhile, every packet is stored after, and
// the log says once that the store fails and once that it is back. Then,
// with a small --max-bytes, the spool fills while the store is down: new
// packets are dropped and counted, no file waiting is deleted, /healthz
// says so, and the spool drains once the store is back.
func TestUploadStoreDown(t *testing.T) {
	c := testenv.NewCeph(t)
	t.Setenv("AWS_ACCESS_KEY_ID", c.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", c.SecretKey)
	payloads := capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 7, 200, 9000))

	t.Run("outage", func(t *testing.T) {
		const prefix = "outage"
		dir := t.TempDir()
		addr := testenv.FreeAddr(t, "udp")
		d := startCapture(t, "", "--listen", addr, "--dir", dir, "--rotate-size", "32K", "--max-bytes", "64M",
			"--store", "s3://"+c.Bucket+"/"+prefix, "--s3-endpoint", c.URL, "--sniffer-id", "outage-1", "--workers", "1")
		s := &sender{d: d, addr: addr, payloads: payloads}
		s.send(200)
		d.waitFor("the first files uploaded", func() bool { return d.metric("vrsniff_upload_files_total") > 0 })

		c.StopRGW(t)
		maxWaiting := 0
		for end := time.Now().Add(storeDown); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			s.send(40)
			maxWaiting = max(maxWaiting, len(closedFiles(t, dir)))
		}
		d.waitFor("the warning of the failing store", func() bool {
			return strings.Contains(d.stderr.String(), "object store failing")
		})
		s.send(100)
		maxWaiting = max(maxWaiting, len(closedFiles(t, dir)))
		if maxWaiting < 2 {
			t.Errorf("at most %d closed files waited in the spool while the store was down", maxWaiting)
		}

		c.StartRGW(t)
		s.send(100)
		d.waitFor("the spool emptied", func() bool {
			return strings.Contains(d.stderr.String(), "object store reachable again") && len(closedFiles(t, dir)) == 0
		}, func() string { return fmt.Sprint(closedFiles(t, dir)) })
		if code := d.stop(syscall.SIGTERM); code != exitOK {
			t.Fatalf("exit %d:\n%s", code, d.stderr)
		}
		if left := spooled(t, dir); len(left) != 0 {
			t.Errorf("left in the spool: %v", left)
		}
		ms := storedManifests(t, openStore(t, c.S3Endpoint, prefix))
		if got := manifestPackets(ms); got != s.sent {
			t.Errorf("%d manifests hold %d packets, %d were sent", len(ms), got, s.sent)
		}
		log := d.stderr.String()
		if w, r := strings.Count(log, "object store failing"), strings.Count(log, "object store reachable again"); w != 1 || r != 1 {
			t.Errorf("%d warnings that the store fails and %d lines that it is back, want one each:\n%s", w, r, log)
		}
		if strings.Contains(log, "spool full") {
			t.Errorf("spool full within --max-bytes:\n%s", log)
		}
	})

	t.Run("spool full", func(t *testing.T) {
		const prefix = "full"
		dir := t.TempDir()
		addr := testenv.FreeAddr(t, "udp")
		d := startCapture(t, "", "--listen", addr, "--dir", dir, "--rotate-size", "16K", "--max-bytes", "96K",
			"--store", "s3://"+c.Bucket+"/"+prefix, "--s3-endpoint", c.URL, "--sniffer-id", "full-1", "--workers", "1")
		s := &sender{d: d, addr: addr, payloads: payloads}
		s.send(20)
		c.StopRGW(t)
		for d.metric("vrsniff_store_dropped_total") == 0 {
			if s.sent > 100000 {
				t.Fatalf("%d packets sent and none dropped with the store down and --max-bytes 96K", s.sent)
			}
			s.send(50)
		}
		waiting := closedFiles(t, dir)
		if n, b := d.metric("vrsniff_spool_files"), d.metric("vrsniff_spool_bytes"); n != float64(len(waiting)) || b < 96<<10 {
			t.Errorf("with the spool full /metrics says %v files, %v bytes wait; %d files are there, over 96K", n, b, len(waiting))
		}
		resp, body := d.request("GET", "/healthz", nil)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "spool full") {
			t.Errorf("/healthz with the spool full: %s %s", resp.Status, body)
		}
		dropped := d.metric("vrsniff_store_dropped_total")
		s.send(200)
		if more := d.metric("vrsniff_store_dropped_total"); more < dropped+200 {
			t.Errorf("%v packets dropped after 200 more sent to a full spool, %v before", more, dropped)
		}
		// Until the uploads fail for good: the client retries a refused
		// connection for seconds before it gives up.
		d.waitFor("the warning of the failing store", func() bool {
			return strings.Contains(d.stderr.String(), "object store failing")
		})
		s.send(10)
		if now := closedFiles(t, dir); !slices.Equal(now, waiting) {
			t.Errorf("the full spool's files changed from %v to %v", waiting, now)
		}
		if strings.Count(d.stderr.String(), "spool full") != 1 {
			t.Errorf("want one warning that the spool is full:\n%s", d.stderr)
		}

		c.StartRGW(t)
		d.waitFor("the spool drained", func() bool { return len(closedFiles(t, dir)) == 0 },
			func() string { return fmt.Sprint(closedFiles(t, dir)) })
		s.send(10)
		d.waitFor("/healthz ok", func() bool {
			resp, _ := d.request("GET", "/healthz", nil)
			return resp.StatusCode == http.StatusOK
		})
		if n := d.metric("vrsniff_spool_files"); n != 0 {
			t.Errorf("/metrics says %v files wait in the drained spool", n)
		}
		dropped = d.metric("vrsniff_store_dropped_total")
		if code := d.stop(syscall.SIGTERM); code != exitOK {
			t.Fatalf("exit %d:\n%s", code, d.stderr)
		}
		log := d.stderr.String()
		if !strings.Contains(log, "spool has room again") {
			t.Errorf("no line that the spool has room again:\n%s", log)
		}
		if cs := lastCounters(t, log); cs["spool_dropped"] != strconv.FormatFloat(dropped, 'f', -1, 64) {
			t.Errorf("counters line says spool_dropped=%s, /metrics %v", cs["spool_dropped"], dropped)
		}
		ms := storedManifests(t, openStore(t, c.S3Endpoint, prefix))
		if got := manifestPackets(ms); got != s.sent-uint64(dropped) {
			t.Errorf("%d manifests hold %d packets, %d were sent and %v dropped", len(ms), got, s.sent, dropped)
		}
	})
}
