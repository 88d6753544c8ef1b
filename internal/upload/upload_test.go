package upload

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/ring"
)

func isManifest(key string) bool {
	return strings.HasSuffix(key, objstore.SuffixManifest) && !strings.Contains(key, "/_sniffers/")
}

// checkLanded checks every stored capture against its manifest (size,
// SHA-256, packets, index records) and returns the packets stored, by
// number, sorted.
func checkLanded(t *testing.T, b *fakeBucket, sniffer string) []int {
	t.Helper()
	var got []int
	for _, key := range b.keys(objstore.SuffixManifest) {
		if !isManifest(key) {
			continue
		}
		raw, _ := b.get(key)
		var m objstore.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		base := strings.TrimSuffix(key, objstore.SuffixManifest)
		if m.Version != 1 || m.Sniffer != sniffer || m.Pcap != base+objstore.SuffixPcap || m.Index != base+objstore.SuffixIndex ||
			base != objstore.FileBase(sniffer, m.First, m.Seq) || m.Uploaded.IsZero() || len(m.Pairs) == 0 {
			t.Errorf("%s: manifest %+v", key, m)
		}
		data, ok := b.get(m.Pcap)
		if !ok {
			t.Fatalf("%s: no %s", key, m.Pcap)
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != m.PcapSize || hex.EncodeToString(sum[:]) != m.PcapSHA256 {
			t.Errorf("%s: %d bytes, sha256 %x; manifest %d, %s", key, len(data), sum, m.PcapSize, m.PcapSHA256)
		}
		rd, err := pcapfile.NewReaderBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		var ports []int
		for {
			var p mirror.Packet
			err := rd.Next(&p)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", m.Pcap, err)
			}
			ports = append(ports, int(binary.BigEndian.Uint16(p.Data[34:])))
			if n := len(ports); n == 1 && !p.Timestamp.Equal(m.First) {
				t.Errorf("%s: first packet at %v, manifest %v", key, p.Timestamp, m.First)
			}
		}
		if uint64(len(ports)) != m.Packets {
			t.Errorf("%s: %d packets, manifest %d", key, len(ports), m.Packets)
		}
		idx, ok := b.get(m.Index)
		var recs [][3]int64
		if !ok || json.Unmarshal(idx, &recs) != nil || int64(len(idx)) != m.IndexSize {
			t.Fatalf("%s: index %q (%v)", key, idx, ok)
		}
		for i, rec := range recs {
			one := slices.Concat(data[:m.HeaderLen], data[rec[1]:rec[1]+rec[2]])
			rd, err := pcapfile.NewReaderBytes(one)
			var p mirror.Packet
			if err == nil {
				err = rd.Next(&p)
			}
			if err != nil || int(binary.BigEndian.Uint16(p.Data[34:])) != ports[i] || int(rec[0]) != ports[i] {
				t.Errorf("%s: index record %v: %v", key, rec, err)
			}
		}
		got = append(got, ports...)
	}
	slices.Sort(got)
	return got
}

func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// checkOrder checks that each manifest was stored after its capture file
// and index, every time it was.
func checkOrder(t *testing.T, b *fakeBucket) {
	t.Helper()
	evs := b.eventList()
	n := 0
	for i, e := range evs {
		if !isManifest(e.key) {
			continue
		}
		n++
		base := strings.TrimSuffix(e.key, objstore.SuffixManifest)
		prev := slices.IndexFunc(evs[:i], func(x event) bool { return x.key == e.key }) // an earlier upload of it
		for _, want := range []string{base + objstore.SuffixPcap, base + objstore.SuffixIndex} {
			j := slices.IndexFunc(evs[prev+1:i], func(x event) bool { return x.op == "PutReader" && x.key == want })
			if j < 0 {
				t.Errorf("manifest %s stored (request %d) before %s", e.key, i, want)
			}
		}
	}
	if n == 0 {
		t.Error("no manifest stored")
	}
}

// spoolWatch makes b check, as each manifest is stored, that its file is
// still in the spool: deleted only once its manifest is stored.
func spoolWatch(t *testing.T, b *fakeBucket, r *ring.Ring) *atomic.Int32 {
	var bad atomic.Int32
	b.beforePut = func(key string, data []byte) {
		if !isManifest(key) {
			return
		}
		var m objstore.Manifest
		json.Unmarshal(data, &m)
		if !slices.ContainsFunc(r.Spooled(), func(in ring.Info) bool { return in.Seq == int(m.Seq) }) {
			bad.Add(1)
		}
	}
	return &bad
}

func TestUploadOrder(t *testing.T) {
	for _, parallel := range []int{1, 4} {
		t.Run(map[int]string{1: "serial", 4: "parallel"}[parallel], func(t *testing.T) {
			dir := t.TempDir()
			r := newSpool(t, dir, ring.Options{})
			b := newFakeBucket()
			bad := spoolWatch(t, b, r)
			u := start(t, b, r, Config{Parallel: parallel})
			n := writeFiles(t, r, 0, 12, 7)
			waitFor(t, "an empty spool", func() bool { return len(r.Spooled()) == 0 })
			if got := checkLanded(t, b, "sniffer-1"); !slices.Equal(got, upTo(n)) {
				t.Fatalf("stored packets %v, want 0..%d", got, n-1)
			}
			checkOrder(t, b)
			if bad.Load() != 0 {
				t.Errorf("%d files left the spool before their manifest was stored", bad.Load())
			}
			for _, name := range dirNames(t, dir) {
				t.Errorf("left in the spool directory: %s", name)
			}
			st := u.Stats()
			if st.Files != 12 || st.Failures != 0 || st.SpoolFiles != 0 || st.SpoolBytes != 0 || st.Lag != 0 || st.Bytes == 0 {
				t.Errorf("stats %+v", st)
			}
			if rs := r.Stats(); rs.Uploaded != 12 || rs.Bytes != 0 {
				t.Errorf("ring stats %+v", rs)
			}
		})
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestUploadOutage checks that while the store fails, files wait in the
// spool and none is lost; that the failure is logged once, with the
// credentials in its message hidden, and the recovery once; and that all
// of it lands afterwards.
func TestUploadOutage(t *testing.T) {
	dir := t.TempDir()
	r := newSpool(t, dir, ring.Options{})
	b := newFakeBucket()
	var logs logBuffer
	b.down.Store(true)
	u := start(t, b, r, Config{Parallel: 3, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	n := writeFiles(t, r, 0, 5, 10)
	waitFor(t, "retries", func() bool { return u.Stats().Failures >= 20 })
	n = writeFiles(t, r, n, 5, 10)
	st := u.Stats()
	if !st.Failing || st.Files != 0 || st.SpoolFiles != 10 || st.SpoolBytes == 0 || st.Lag <= 0 {
		t.Fatalf("during the outage: %+v", st)
	}
	if ks := b.keys(""); len(ks) != 0 {
		t.Fatalf("stored during the outage: %v", ks)
	}
	b.down.Store(false)
	waitFor(t, "an empty spool", func() bool { return len(r.Spooled()) == 0 })
	if got := checkLanded(t, b, "sniffer-1"); !slices.Equal(got, upTo(n)) {
		t.Fatalf("stored packets %v, want 0..%d", got, n-1)
	}
	checkOrder(t, b)
	out := logs.String()
	if c := logs.count("level=WARN"); c != 1 || !strings.Contains(out, "object store failing") {
		t.Errorf("%d warnings:\n%s", c, out)
	}
	if c := logs.count("level=INFO"); c != 1 || !strings.Contains(out, "reachable again") {
		t.Errorf("%d infos:\n%s", c, out)
	}
	if strings.Contains(out, "0123abcd") || strings.Contains(out, "vrsniff%2F2026") || strings.Contains(out, "vrsniffsecret") ||
		!strings.Contains(out, "503") {
		t.Errorf("credentials logged, or the cause not:\n%s", out)
	}
	if st := u.Stats(); st.Failing || st.Files != 10 {
		t.Errorf("after the outage: %+v", st)
	}
}

// TestUploadSpoolFull checks that an outage longer than the spool holds
// drops packets, counted, and loses none of those the spool kept.
func TestUploadSpoolFull(t *testing.T) {
	dir := t.TempDir()
	r := newSpool(t, dir, ring.Options{MaxBytes: 6000, MaxSize: 1500})
	b := newFakeBucket()
	b.down.Store(true)
	start(t, b, r, Config{})
	const n = 300
	for i := range n {
		if err := r.WritePacket(packet(i)); err != nil {
			t.Fatal(err)
		}
	}
	st := r.Stats()
	if !st.SpoolFull || st.DroppedSpoolFull == 0 || st.Packets+st.Dropped != n || !errors.Is(r.Healthy(), ring.ErrSpoolFull) {
		t.Fatalf("ring stats %+v, Healthy %v", st, r.Healthy())
	}
	b.down.Store(false)
	waitFor(t, "an empty spool", func() bool { return len(r.Spooled()) == 0 })
	got := checkLanded(t, b, "sniffer-1")
	if st := r.Stats(); uint64(len(got)) != st.Packets || st.SpoolFull || r.Healthy() != nil {
		t.Fatalf("%d packets stored, ring %+v", len(got), st)
	}
	checkOrder(t, b)
}

// TestUploadRestart checks that files left in the spool by an earlier run
// are uploaded once each, after the multipart uploads they left were
// aborted, and only those.
func TestUploadRestart(t *testing.T) {
	dir := t.TempDir()
	r := newSpool(t, dir, ring.Options{})
	n := writeFiles(t, r, 0, 4, 5)
	r.Close()

	r = newSpool(t, dir, ring.Options{})
	left := r.Spooled()
	if len(left) != 4 {
		t.Fatalf("spooled %+v", left)
	}
	b := newFakeBucket()
	staleKey := objstore.FileBase("sniffer-1", left[1].First, uint64(left[1].Seq)) + objstore.SuffixPcap
	other := objstore.FileBase("sniffer-2", left[1].First, uint64(left[1].Seq)) + objstore.SuffixPcap
	b.multipart[staleKey], b.multipart[other] = true, true
	start(t, b, r, Config{})
	waitFor(t, "an empty spool", func() bool { return len(r.Spooled()) == 0 })
	if got := checkLanded(t, b, "sniffer-1"); !slices.Equal(got, upTo(n)) {
		t.Fatalf("stored packets %v, want 0..%d", got, n-1)
	}
	for _, k := range b.keys("") {
		if c := b.putCount(k); c != 1 && !strings.Contains(k, "/_sniffers/") {
			t.Errorf("%s stored %d times", k, c)
		}
	}
	if b.multipart[staleKey] || !b.multipart[other] {
		t.Errorf("multipart uploads left: %v", b.multipart)
	}
	evs := b.eventList()
	abort := slices.Index(evs, event{"AbortUploads", strings.TrimSuffix(staleKey, objstore.SuffixPcap)})
	put := slices.Index(evs, event{"PutReader", staleKey})
	if abort < 0 || abort > put {
		t.Errorf("abort at request %d, upload at %d: %v", abort, put, evs)
	}
}

// stepClock is a clock that moves one second at each reading.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// TestSnifferRecord checks that the sniffer record is written at start and
// rewritten, with a later LastSeen, every Refresh.
func TestSnifferRecord(t *testing.T) {
	r := newSpool(t, t.TempDir(), ring.Options{})
	b := newFakeBucket()
	clock := &stepClock{t: t0}
	key := objstore.SnifferKey("probe-7")
	var mu sync.Mutex
	var recs []objstore.Sniffer
	b.beforePut = func(k string, data []byte) {
		var rec objstore.Sniffer
		if k != key || json.Unmarshal(data, &rec) != nil {
			return
		}
		mu.Lock()
		recs = append(recs, rec)
		mu.Unlock()
	}
	start(t, b, r, Config{Sniffer: "probe-7", API: "https://10.0.0.7:8443", Version: "v1.2.3", Interface: "eth1",
		Refresh: time.Millisecond, Now: clock.Now})
	waitFor(t, "three sniffer records", func() bool { return b.putCount(key) >= 3 })
	mu.Lock()
	defer mu.Unlock()
	for i, rec := range recs {
		want := objstore.Sniffer{ID: "probe-7", API: "https://10.0.0.7:8443", Version: "v1.2.3", Interface: "eth1",
			Started: recs[0].Started, LastSeen: rec.LastSeen}
		if rec != want || !rec.Started.After(t0) {
			t.Errorf("record %d: %+v", i, rec)
		}
		if i > 0 && !rec.LastSeen.After(recs[i-1].LastSeen) {
			t.Errorf("record %d last seen %v, before %v", i, rec.LastSeen, recs[i-1].LastSeen)
		}
	}
}

// crashSpool stands for a process that dies between storing a manifest
// and deleting the file: its Uploaded deletes nothing and ends the run.
type crashSpool struct {
	*ring.Ring
	crash   context.CancelFunc
	crashed atomic.Bool
}

func (c *crashSpool) Uploaded(name string) error {
	c.crashed.Store(true)
	c.crash()
	return context.Canceled
}

// TestUploadCrashBeforeDelete checks that a file whose manifest was stored
// but which stayed in the spool is uploaded again under the same keys,
// with the same content, and then deleted.
func TestUploadCrashBeforeDelete(t *testing.T) {
	dir := t.TempDir()
	r := newSpool(t, dir, ring.Options{})
	n := writeFiles(t, r, 0, 1, 9)
	b := newFakeBucket()
	u, err := New(b, r, Config{Sniffer: "sniffer-1", Retry: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cs := &crashSpool{Ring: r, crash: cancel}
	u.spool = cs
	u.Run(ctx)
	if !cs.crashed.Load() {
		t.Fatal("no manifest stored")
	}
	first := map[string][]byte{}
	for _, k := range b.keys("") {
		first[k], _ = b.get(k)
	}
	r.Close()

	r = newSpool(t, dir, ring.Options{})
	if len(r.Spooled()) != 1 {
		t.Fatalf("spool after the crash: %+v", r.Spooled())
	}
	start(t, b, r, Config{})
	waitFor(t, "an empty spool", func() bool { return len(r.Spooled()) == 0 })
	if got := checkLanded(t, b, "sniffer-1"); !slices.Equal(got, upTo(n)) {
		t.Fatalf("stored packets %v", got)
	}
	again := b.keys("")
	if len(again) != len(first) {
		t.Fatalf("keys %v, first run %v", again, first)
	}
	for _, k := range again {
		data, _ := b.get(k)
		switch {
		case strings.Contains(k, "/_sniffers/"):
		case isManifest(k):
			var m1, m2 objstore.Manifest
			json.Unmarshal(first[k], &m1)
			json.Unmarshal(data, &m2)
			m1.Uploaded, m2.Uploaded = time.Time{}, time.Time{}
			if b.putCount(k) != 2 || !jsonEqual(m1, m2) {
				t.Errorf("%s: stored %d times, %+v then %+v", k, b.putCount(k), m1, m2)
			}
		default:
			if b.putCount(k) != 2 || string(data) != string(first[k]) {
				t.Errorf("%s: stored %d times, content changed: %v", k, b.putCount(k), string(data) != string(first[k]))
			}
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestDrain checks that Drain returns once the spool is empty, and with
// the files left when its context ends first.
func TestDrain(t *testing.T) {
	r := newSpool(t, t.TempDir(), ring.Options{})
	writeFiles(t, r, 0, 3, 4)
	b := newFakeBucket()
	u, err := New(b, r, Config{Sniffer: "sniffer-1", Retry: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.down.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitFor(t, "a failure", func() bool { return u.Stats().Failures > 0 })
		cancel()
	}()
	if err := u.Drain(ctx); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "3 files") {
		t.Fatalf("Drain with the store down: %v", err)
	}
	b.down.Store(false)
	if err := u.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(r.Spooled()) != 0 || len(checkLanded(t, b, "sniffer-1")) != 12 {
		t.Fatalf("after Drain: %d spooled", len(r.Spooled()))
	}
}

func TestNewChecksSniffer(t *testing.T) {
	r := newSpool(t, t.TempDir(), ring.Options{})
	for _, id := range []string{"", "a/b", "-x", strings.Repeat("a", 65)} {
		if _, err := New(newFakeBucket(), r, Config{Sniffer: id}); err == nil {
			t.Errorf("sniffer id %q accepted", id)
		}
	}
}
