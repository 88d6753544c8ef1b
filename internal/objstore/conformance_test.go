package objstore

// The conformance suite: every operation of the Store against a real S3
// engine (testenv.S3: Ceph RGW), each test in a bucket of its own.

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// openStore opens a store on a new bucket of the test engine under the
// prefix "fleet/", with 5 MiB parts and 100 keys a list page, and one on
// the same bucket without a prefix.
func openStore(t *testing.T) (s, root *Store) {
	t.Helper()
	e := testenv.S3(t)
	ctx := context.Background()
	open := func(url string) *Store {
		t.Helper()
		st, err := Open(ctx, Config{URL: url, Endpoint: e.URL, Region: e.Region, AccessKey: e.AccessKey,
			SecretKey: e.SecretKey, PartSize: MinPartSize, ListPageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	return open("s3://" + e.Bucket + "/fleet"), open("s3://" + e.Bucket)
}

func keys(t *testing.T, s *Store, prefix string) []string {
	t.Helper()
	var ks []string
	for o, err := range s.List(context.Background(), prefix) {
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, o.Key)
	}
	return ks
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func TestPutGetStat(t *testing.T) {
	s, root := openStore(t)
	ctx := context.Background()
	data := []byte(`{"hello":"fleet"}`)
	if err := s.PutBytes(ctx, "a/b.json", data, "application/json"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "a/b.json", 1024)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, %v; want %q", got, err, data)
	}
	o, err := s.Stat(ctx, "a/b.json")
	if err != nil {
		t.Fatal(err)
	}
	if o.Key != "a/b.json" || o.Size != int64(len(data)) || o.ETag != md5hex(data) || o.ContentType != "application/json" || o.LastModified.IsZero() {
		t.Errorf("Stat = %+v", o)
	}
	// The store's prefix is where the object is.
	if ks := keys(t, root, ""); !slices.Equal(ks, []string{"fleet/a/b.json"}) {
		t.Errorf("bucket holds %q, want fleet/a/b.json", ks)
	}
	if _, err := s.Get(ctx, "a/b.json", int64(len(data)-1)); err == nil || !strings.Contains(err.Error(), "allowed") {
		t.Errorf("Get with a smaller bound: %v, want a refusal", err)
	}
	for op, err := range map[string]error{
		"get":  func() error { _, err := s.Get(ctx, "a/none", 10); return err }(),
		"stat": func() error { _, err := s.Stat(ctx, "a/none"); return err }(),
		"range": func() error {
			_, err := s.GetRange(ctx, "a/none", 0, 1)
			return err
		}(),
	} {
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "fleet/a/none") {
			t.Errorf("%s of a missing key: %v, want ErrNotFound naming the key", op, err)
		}
	}
	if err := s.PutBytes(ctx, "/abs", data, ""); err == nil {
		t.Error("PutBytes took a key starting with '/'")
	}
}

// TestMultipart uploads a file of more than two parts and one of less than
// a part, and checks content and ETag: an MD5 of the whole for one PUT,
// the MD5 of the parts' MD5s and their count for a multipart upload.
func TestMultipart(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	dir := t.TempDir()
	rnd := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 2*MinPartSize+123457)
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	bigPath := filepath.Join(dir, "big.pcapng")
	smallPath := filepath.Join(dir, "small.pcapng")
	if err := os.WriteFile(bigPath, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(smallPath, big[:MinPartSize], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFile(ctx, "big.pcapng", bigPath, "application/x-pcapng"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFile(ctx, "small.pcapng", smallPath, "application/x-pcapng"); err != nil {
		t.Fatal(err)
	}
	var sums []byte
	for off := 0; off < len(big); off += MinPartSize {
		sum := md5.Sum(big[off:min(off+MinPartSize, len(big))])
		sums = append(sums, sum[:]...)
	}
	for _, c := range []struct {
		key  string
		data []byte
		etag string
	}{
		{"big.pcapng", big, md5hex(sums) + "-3"},
		{"small.pcapng", big[:MinPartSize], md5hex(big[:MinPartSize])},
	} {
		o, err := s.Stat(ctx, c.key)
		if err != nil {
			t.Fatal(err)
		}
		if o.Size != int64(len(c.data)) || o.ETag != c.etag || o.ContentType != "application/x-pcapng" {
			t.Errorf("%s: %+v, want size %d ETag %s", c.key, o, len(c.data), c.etag)
		}
		got, err := s.Get(ctx, c.key, 3*MinPartSize)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.data) {
			t.Errorf("%s: content differs", c.key)
		}
	}
	if err := s.PutFile(ctx, "none", filepath.Join(dir, "none"), ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PutFile of a missing file: %v", err)
	}
	// Nothing is left behind: no incomplete upload.
	if n, err := s.AbortUploads(ctx, "", 0); err != nil || n != 0 {
		t.Errorf("incomplete uploads after PutFile: %d, %v", n, err)
	}
}

func TestGetRange(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := s.PutBytes(ctx, "r", data, ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		off, n   int64
		from, to int
	}{
		{"start", 0, 10, 0, 10},
		{"middle", 500, 123, 500, 623},
		{"end", 990, 10, 990, 1000},
		{"past the end", 995, 100, 995, 1000},
		{"whole", 0, 1000, 0, 1000},
	} {
		rc, err := s.GetRange(ctx, "r", c.off, c.n)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data[c.from:c.to]) {
			t.Errorf("%s: %d bytes, %v; want bytes %d-%d", c.name, len(got), err, c.from, c.to)
		}
	}
	for _, off := range []int64{1000, 5000} {
		if _, err := s.GetRange(ctx, "r", off, 1); !errors.Is(err, ErrRange) {
			t.Errorf("range from %d of 1000 bytes: %v, want ErrRange", off, err)
		}
	}
	if _, err := s.GetRange(ctx, "r", 0, 0); err == nil {
		t.Error("GetRange of 0 bytes: no error")
	}
}

// putMany writes n small objects, 16 at a time.
func putMany(t *testing.T, s *Store, keys []string) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(keys))
	for _, k := range keys {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- s.PutBytes(context.Background(), k, []byte(k), "")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestList lists more keys than a page holds (100 a page here).
func TestList(t *testing.T) {
	s, _ := openStore(t)
	var want []string
	for i := range 250 {
		want = append(want, fmt.Sprintf("many/%04d", i))
	}
	putMany(t, s, append(slices.Clone(want), "manx", "other/1"))
	got := keys(t, s, "many/")
	if !slices.Equal(got, want) {
		t.Fatalf("List(many/) gave %d keys (%q...), want the 250 in order", len(got), got[:min(3, len(got))])
	}
	// Breaking out of the loop is allowed, and ends the listing.
	n := 0
	for _, err := range s.List(context.Background(), "many/") {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 150 {
			break
		}
	}
	if got := keys(t, s, "man"); len(got) != 251 {
		t.Errorf("List(man) = %d keys, want 251", len(got))
	}
}

func TestDirs(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	putMany(t, s, []string{"a/1", "a/b/2", "a/c/3", "c/3", "d"})
	for prefix, want := range map[string][]string{
		"":     {"a/", "c/"},
		"a/":   {"a/b/", "a/c/"},
		"a/b/": nil,
		"x/":   nil,
	} {
		got, err := s.Dirs(ctx, prefix)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Dirs(%q) = %q, %v; want %q", prefix, got, err, want)
		}
	}
}

func TestDelete(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	var ks []string
	for i := range 130 {
		ks = append(ks, fmt.Sprintf("p/%d/%d", i%3, i))
	}
	putMany(t, s, append(ks, "q/1", "q/2", "single"))
	if err := s.Delete(ctx, "single"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "single"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "single"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	n, err := s.DeletePrefix(ctx, "p/")
	if err != nil || n != 130 {
		t.Fatalf("DeletePrefix(p/) = %d, %v; want 130", n, err)
	}
	if got := keys(t, s, ""); !slices.Equal(got, []string{"q/1", "q/2"}) {
		t.Errorf("after DeletePrefix(p/) the store holds %q", got)
	}
	if n, err := s.DeletePrefix(ctx, "p/"); err != nil || n != 0 {
		t.Errorf("DeletePrefix of nothing = %d, %v", n, err)
	}
	if _, err := s.DeletePrefix(ctx, ""); err == nil {
		t.Error("DeletePrefix(\"\") deleted the store")
	}
}

// startUpload begins a multipart upload of key (relative to s) and
// uploads one part, as a sniffer that crashed mid-file leaves it.
func startUpload(t *testing.T, s *Store, key string) {
	t.Helper()
	ctx := context.Background()
	id, err := s.core.NewMultipartUpload(ctx, s.loc.Bucket, s.full(key), minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte{1}, 1000)
	sum := md5.Sum(part)
	// As the store sends parts: with Content-MD5, not aws-chunked (Swift's
	// s3api refuses that).
	opts := minio.PutObjectPartOptions{Md5Base64: base64.StdEncoding.EncodeToString(sum[:]), DisableContentSha256: true}
	if _, err := s.core.PutObjectPart(ctx, s.loc.Bucket, s.full(key), id, 1, bytes.NewReader(part), int64(len(part)), opts); err != nil {
		t.Fatal(err)
	}
}

func uploads(t *testing.T, s *Store) []string {
	t.Helper()
	var ks []string
	err := s.eachUpload(context.Background(), "", func(u minio.ObjectMultipartInfo) error {
		ks = append(ks, u.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ks)
	return ks
}

func TestAbortUploads(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	startUpload(t, s, "x/crashed.pcapng")
	startUpload(t, s, "y/writing.pcapng")
	if got := uploads(t, s); !slices.Equal(got, []string{"fleet/x/crashed.pcapng", "fleet/y/writing.pcapng"}) {
		t.Fatalf("uploads %q", got)
	}
	// Begun a moment ago: not older than an hour.
	if n, err := s.AbortUploads(ctx, "", time.Hour); err != nil || n != 0 {
		t.Errorf("AbortUploads(older than 1h) = %d, %v; want 0", n, err)
	}
	if n, err := s.AbortUploads(ctx, "x/", 0); err != nil || n != 1 {
		t.Errorf("AbortUploads(x/) = %d, %v; want 1", n, err)
	}
	if got := uploads(t, s); !slices.Equal(got, []string{"fleet/y/writing.pcapng"}) {
		t.Errorf("after AbortUploads(x/): %q", got)
	}
	if n, err := s.AbortUploads(ctx, "", 0); err != nil || n != 1 {
		t.Errorf("AbortUploads() = %d, %v; want 1", n, err)
	}
	if got := uploads(t, s); len(got) != 0 {
		t.Errorf("after AbortUploads: %q", got)
	}
}

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// storeCapture stores a capture as an uploader does: the file, its index,
// and its manifest last.
func storeCapture(t *testing.T, s *Store, sniffer string, seq uint64, first, last time.Time) Manifest {
	t.Helper()
	ctx := context.Background()
	base := FileBase(sniffer, first, seq)
	pcap := []byte(base)
	m := Manifest{Version: 1, Sniffer: sniffer, Seq: seq, Pcap: base + SuffixPcap, PcapSize: int64(len(pcap)),
		Index: base + SuffixIndex, IndexSize: 3, First: first, Last: last, Packets: 10,
		Pairs: []vnpair.Pair{}, Uploaded: last.Add(time.Minute)}
	if err := s.PutBytes(ctx, m.Pcap, pcap, "application/x-pcapng"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBytes(ctx, m.Index, []byte("PAR"), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(ctx, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManifests(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	at := func(h, m int) time.Time { return t0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	early := storeCapture(t, s, "a", 1, at(-2, 0), at(-2, 30))   // 08:00-08:30
	before := storeCapture(t, s, "a", 2, at(-1, 10), at(-1, 59)) // 09:10-09:59
	across := storeCapture(t, s, "a", 3, at(-1, 50), at(0, 20))  // 09:50-10:20: starts in an earlier hour
	b1 := storeCapture(t, s, "b", 1, at(0, 5), at(0, 15))        // 10:05-10:15
	a4 := storeCapture(t, s, "a", 4, at(0, 30), at(0, 40))       // 10:30-10:40
	b2 := storeCapture(t, s, "b", 2, at(1, 0), at(1, 30))        // 11:00-11:30
	// A capture whose manifest is not written yet is invisible.
	if err := s.PutBytes(ctx, FileBase("b", at(0, 1), 9)+SuffixPcap, []byte("x"), ""); err != nil {
		t.Fatal(err)
	}
	names := func(ms []Manifest) []string {
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%s/%d", m.Sniffer, m.Seq))
		}
		return out
	}
	for _, c := range []struct {
		since, until time.Time
		sniffers     []string
		want         []Manifest
	}{
		{at(0, 0), at(0, 59), nil, []Manifest{across, b1, a4}},
		{at(0, 10), at(0, 35), []string{"a"}, []Manifest{across, a4}},
		{at(0, 0), at(2, 0), []string{"b"}, []Manifest{b1, b2}},
		{at(-3, 0), at(3, 0), []string{"a", "b"}, []Manifest{early, before, across, b1, a4, b2}},
		{at(-1, 59), at(-1, 59), nil, []Manifest{before, across}},
		{at(0, 16), at(0, 29), []string{"b"}, nil},
		{at(5, 0), at(6, 0), nil, nil},
	} {
		got, err := s.Manifests(ctx, c.since, c.until, c.sniffers)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names(got), names(c.want)) {
			t.Errorf("Manifests(%s, %s, %q) = %q, want %q", c.since.Format("15:04"), c.until.Format("15:04"), c.sniffers, names(got), names(c.want))
			continue
		}
		for i := range got {
			if got[i].Pcap != c.want[i].Pcap || !got[i].First.Equal(c.want[i].First) || got[i].PcapSize != c.want[i].PcapSize {
				t.Errorf("manifest %s read back as %+v", c.want[i].Pcap, got[i])
			}
		}
	}
	if _, err := s.Manifests(ctx, at(1, 0), at(0, 0), nil); err == nil {
		t.Error("a window that ends before it starts: no error")
	}
	if _, err := s.Manifests(ctx, at(0, 0), at(0, 1), []string{"../x"}); err == nil {
		t.Error("a bad sniffer id: no error")
	}
	// A manifest that does not parse is an error, not a silent gap.
	if err := s.PutBytes(ctx, FileBase("b", at(0, 2), 10)+SuffixManifest, []byte("{"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Manifests(ctx, at(0, 0), at(0, 59), nil); err == nil || !strings.Contains(err.Error(), "_000010.json") {
		t.Errorf("a broken manifest: %v, want an error naming it", err)
	}
}

func TestPrune(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	at := func(h, m int) time.Time { return t0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	storeCapture(t, s, "a", 1, at(-30, 0), at(-30, 10)) // the day before
	storeCapture(t, s, "a", 2, at(-2, 0), at(-2, 30))   // 08:00
	storeCapture(t, s, "b", 1, at(-2, 40), at(-2, 50))  // 08:40
	storeCapture(t, s, "a", 3, at(-1, 50), at(0, 20))   // 09:50-10:20
	keep := storeCapture(t, s, "b", 2, at(0, 0), at(0, 5))
	startUpload(t, s, FileBase("a", at(-2, 55), 4)+SuffixPcap)
	if err := s.PutSniffer(ctx, &Sniffer{ID: "a", Version: "1", LastSeen: at(-30, 0)}); err != nil {
		t.Fatal(err)
	}
	all := keys(t, s, "")
	var size int64
	for o, err := range s.List(ctx, LayoutVersion+"/dt=") {
		if err != nil {
			t.Fatal(err)
		}
		if h, _, _ := parseHour(o.Key); h.Before(t0) {
			size += o.Size
		}
	}
	wantHours := []time.Time{at(-30, 0), at(-2, 0), at(-1, 0)}
	// 10:30 ends no hour but 09:00's: the hour of 10:00 stays.
	dry, err := s.Prune(ctx, at(0, 30), true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(dry.Hours, wantHours, time.Time.Equal) || dry.Objects != 12 || dry.Bytes != size || !dry.DryRun || dry.Uploads != 0 {
		t.Errorf("dry run: %+v, want hours %v, 12 objects, %d bytes", dry, wantHours, size)
	}
	if got := keys(t, s, ""); !slices.Equal(got, all) {
		t.Errorf("a dry run removed %d keys", len(all)-len(got))
	}
	res, err := s.Prune(ctx, at(0, 30), false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(res.Hours, wantHours, time.Time.Equal) || res.Objects != 12 || res.Bytes != size || res.Uploads != 1 {
		t.Errorf("prune: %+v, want hours %v, 12 objects, %d bytes, 1 upload", res, wantHours, size)
	}
	want := []string{keep.Pcap, strings.TrimSuffix(keep.Pcap, SuffixPcap) + SuffixManifest, keep.Index, SnifferKey("a")}
	slices.Sort(want)
	if got := keys(t, s, ""); !slices.Equal(got, want) {
		t.Errorf("after prune: %q, want %q", got, want)
	}
	if got := uploads(t, s); len(got) != 0 {
		t.Errorf("uploads left in pruned hours: %q", got)
	}
	// Pruned again: nothing left to prune.
	if res, err := s.Prune(ctx, at(0, 30), false); err != nil || len(res.Hours) != 0 || res.Objects != 0 {
		t.Errorf("second prune: %+v, %v", res, err)
	}
}

func TestLsAndPruneSniffers(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	now := t0.Add(2 * time.Hour)
	for _, r := range []Sniffer{
		{ID: "fresh", API: "https://10.0.0.5:8443", Version: "v1.2.0", Interface: "eth1", Started: t0, LastSeen: now.Add(-time.Minute)},
		{ID: "gone", Version: "v1.1.0", Started: t0.Add(-72 * time.Hour), LastSeen: now.Add(-25 * time.Hour)},
	} {
		if err := s.PutSniffer(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	storeCapture(t, s, "fresh", 1, t0, t0.Add(time.Minute))
	storeCapture(t, s, "fresh", 2, t0.Add(time.Hour), t0.Add(61*time.Minute))
	storeCapture(t, s, "norecord", 1, t0.Add(5*time.Minute), t0.Add(6*time.Minute))
	// A file whose manifest is not written yet.
	if err := s.PutBytes(ctx, FileBase("fresh", t0.Add(time.Hour+5*time.Minute), 3)+SuffixPcap, []byte("12345"), ""); err != nil {
		t.Fatal(err)
	}
	l, err := s.Ls(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	type sn struct {
		id            string
		record, stale bool
		files, mans   int
	}
	var sns []sn
	for _, x := range l.Sniffers {
		sns = append(sns, sn{x.ID, x.Record, x.Stale, x.Files, x.Manifests})
	}
	if want := []sn{{"fresh", true, false, 3, 2}, {"gone", true, true, 0, 0}, {"norecord", false, false, 1, 1}}; !slices.Equal(sns, want) {
		t.Errorf("sniffers %+v, want %+v", sns, want)
	}
	if l.Sniffers[0].API != "https://10.0.0.5:8443" || l.Sniffers[0].Version != "v1.2.0" || !l.Sniffers[0].LastSeen.Equal(now.Add(-time.Minute)) {
		t.Errorf("record of fresh: %+v", l.Sniffers[0])
	}
	if len(l.Hours) != 2 || !l.Hours[0].Hour.Equal(t0) || l.Hours[0].Sniffers != 2 || l.Hours[0].Files != 2 ||
		l.Hours[1].Files != 2 || l.Hours[1].Manifests != 1 || l.Hours[1].Objects != 4 {
		t.Errorf("hours %+v", l.Hours)
	}
	var sum int64
	for o, err := range s.List(ctx, LayoutVersion+"/dt=") {
		if err != nil {
			t.Fatal(err)
		}
		sum += o.Size
	}
	if l.Total.Files != 4 || l.Total.Manifests != 3 || l.Total.Objects != 10 || l.Total.Bytes != sum {
		t.Errorf("total %+v, want 4 files, 3 manifests, 10 objects, %d bytes", l.Total, sum)
	}
	var text bytes.Buffer
	if err := l.Print(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stale (25h0m0s)", "no record", "https://10.0.0.5:8443", "2026-11-02 11:00", "fresh"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("Print lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := l.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Listing
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Sniffers) != 3 || !back.Sniffers[1].Stale || back.Total != l.Total {
		t.Errorf("JSON %s read back as %+v, %v", js.String(), back, err)
	}

	// Stale records are listed, and removed only when asked.
	old, err := s.PruneSniffers(ctx, now.Add(-StaleAfter), true)
	if err != nil || len(old) != 1 || old[0].ID != "gone" {
		t.Fatalf("PruneSniffers dry run = %+v, %v", old, err)
	}
	if rs, _ := s.Sniffers(ctx); len(rs) != 2 {
		t.Errorf("a dry run removed records: %+v", rs)
	}
	if old, err := s.PruneSniffers(ctx, now.Add(-StaleAfter), false); err != nil || len(old) != 1 {
		t.Fatalf("PruneSniffers = %+v, %v", old, err)
	}
	rs, err := s.Sniffers(ctx)
	if err != nil || len(rs) != 1 || rs[0].ID != "fresh" {
		t.Errorf("records after PruneSniffers: %+v, %v", rs, err)
	}
}

// TestOpenErrors checks that Open names the bucket and the endpoint when
// it cannot use them, and never the keys.
func TestOpenErrors(t *testing.T) {
	e := testenv.S3(t)
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		cfg    Config
		want   []string
		secret string
	}{
		{"no such bucket", Config{URL: "s3://" + e.Bucket + "-none/x", Endpoint: e.URL, AccessKey: e.AccessKey, SecretKey: e.SecretKey},
			[]string{e.Bucket + "-none", e.URL, "no such bucket"}, e.SecretKey},
		{"wrong secret key", Config{URL: "s3://" + e.Bucket, Endpoint: e.URL, AccessKey: e.AccessKey, SecretKey: "not-the-secret-4242"},
			[]string{e.Bucket, e.URL, "keys from config"}, "not-the-secret-4242"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(ctx, c.cfg)
			if err == nil {
				t.Fatal("Open: no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), c.secret) {
				t.Errorf("error %q shows the secret key", err)
			}
		})
	}
}

// request is what the recording proxy saw of one request.
type request struct {
	method, path string
	query        url.Values
	header       http.Header
}

func (r request) isMultiDelete() bool {
	_, ok := r.query["delete"]
	return r.method == http.MethodPost && ok
}

// recorder is a proxy to the test engine that records the requests it
// passes on, and answers those that refuse says to refuse with S3's
// AccessDenied.
type recorder struct {
	mu     sync.Mutex
	seen   []request
	refuse func(request) bool
}

func (rc *recorder) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.seen)
}

// openRecorded opens a store on the test engine through a recorder, with
// 5 MiB parts and 10 keys a list page.
func openRecorded(t *testing.T, refuse func(request) bool) (*Store, *recorder, testenv.S3Endpoint) {
	t.Helper()
	e := testenv.S3(t)
	target, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc := &recorder{refuse: refuse}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := request{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone()}
		rc.mu.Lock()
		rc.seen = append(rc.seen, req)
		refused := rc.refuse != nil && rc.refuse(req)
		rc.mu.Unlock()
		if refused {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>refused by the test</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s, err := Open(context.Background(), Config{URL: "s3://" + e.Bucket + "/fleet", Endpoint: srv.URL, AccessKey: e.AccessKey,
		SecretKey: e.SecretKey, PartSize: MinPartSize, ListPageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	return s, rc, e
}

// TestWireSubset puts a recording proxy between the store and the engine
// and checks that the store speaks only the subset every engine serves:
// path-style requests, Content-MD5 on every request that carries data
// (each part, the multi-delete), unsigned payloads rather than aws-chunked
// streams, no CRC checksums, and lists that page.
func TestWireSubset(t *testing.T) {
	s, rc, e := openRecorded(t, nil)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, bytes.Repeat([]byte("vrsniff"), (MinPartSize+1000)/7), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFile(ctx, "p/f.pcapng", path, ""); err != nil {
		t.Fatal(err)
	}
	var ks []string
	for i := range 25 {
		ks = append(ks, fmt.Sprintf("p/%02d", i))
	}
	putMany(t, s, ks)
	if got := keys(t, s, "p/"); len(got) != 26 {
		t.Fatalf("listed %d keys, want 26", len(got))
	}
	listed := len(rc.requests())
	if n, err := s.DeletePrefix(ctx, "p/"); err != nil || n != 26 {
		t.Fatalf("DeletePrefix = %d, %v", n, err)
	}

	parts, lists, deletes := 0, 0, 0
	for i, r := range rc.requests() {
		if !strings.HasPrefix(r.path, "/"+e.Bucket) {
			t.Errorf("%s %s: not path-style", r.method, r.path)
		}
		for k := range r.header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum") || strings.EqualFold(k, "x-amz-trailer") {
				t.Errorf("%s %s: sends %s", r.method, r.path, k)
			}
		}
		if sha := r.header.Get("X-Amz-Content-Sha256"); strings.HasPrefix(sha, "STREAMING-") || strings.Contains(r.header.Get("Content-Encoding"), "aws-chunked") {
			t.Errorf("%s %s: a streaming (aws-chunked) upload", r.method, r.path)
		}
		if (r.method == http.MethodPut || r.isMultiDelete()) && r.header.Get("Content-Md5") == "" {
			t.Errorf("%s %s?%s: no Content-MD5", r.method, r.path, r.query.Encode())
		}
		switch {
		case r.method == http.MethodPut && r.query.Get("partNumber") != "":
			parts++
		case r.method == http.MethodGet && r.query.Get("list-type") == "2" && i < listed:
			lists++
		case r.isMultiDelete():
			deletes++
		}
	}
	// 26 keys at 10 a page.
	if parts != 2 || lists != 3 || deletes < 1 {
		t.Errorf("%d part uploads, %d list pages, %d multi-deletes; want 2, 3, at least 1", parts, lists, deletes)
	}
}

// TestDeletePrefixAgain refuses the first multi-delete and checks that
// DeletePrefix lists and deletes again, and gives up after deletePasses.
func TestDeletePrefixAgain(t *testing.T) {
	refusals := 1
	s, rc, _ := openRecorded(t, func(r request) bool {
		if r.isMultiDelete() && refusals > 0 {
			refusals--
			return true
		}
		return false
	})
	ctx := context.Background()
	putMany(t, s, []string{"p/1", "p/2", "p/3"})
	n, err := s.DeletePrefix(ctx, "p/")
	if err != nil || n != 3 {
		t.Fatalf("DeletePrefix with one refusal = %d, %v; want 3", n, err)
	}
	if got := keys(t, s, "p/"); len(got) != 0 {
		t.Errorf("left %q", got)
	}
	count := func() (d int) {
		for _, r := range rc.requests() {
			if r.isMultiDelete() {
				d++
			}
		}
		return d
	}
	if d := count(); d != 2 {
		t.Errorf("%d multi-deletes, want 2", d)
	}
	putMany(t, s, []string{"p/1"})
	rc.mu.Lock()
	refusals = 100
	rc.mu.Unlock()
	before := count()
	if n, err := s.DeletePrefix(ctx, "p/"); err == nil || n != 0 || !strings.Contains(err.Error(), "fleet/p/1") {
		t.Errorf("DeletePrefix refused every time = %d, %v; want an error naming the key", n, err)
	}
	if d := count() - before; d != deletePasses {
		t.Errorf("%d multi-deletes, want %d", d, deletePasses)
	}
}
