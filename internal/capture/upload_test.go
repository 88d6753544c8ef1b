package capture

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/upload"
)

// memBucket is an in-memory bucket.
type memBucket struct {
	mu      sync.Mutex
	objects map[string][]byte
}

func (b *memBucket) PutReader(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(data)) != size {
		return fmt.Errorf("%s: %d bytes, announced %d", key, len(data), size)
	}
	return b.PutBytes(ctx, key, data, contentType)
}

func (b *memBucket) PutBytes(ctx context.Context, key string, data []byte, contentType string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = bytes.Clone(data)
	return nil
}

func (b *memBucket) AbortUploads(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	return 0, nil
}

// A replayed capture with a bucket: every packet written ends up in a
// stored file named by a manifest, in order, and the spool is empty
// when Run returns.
func TestUploadReplay(t *testing.T) {
	b := &memBucket{objects: map[string][]byte{}}
	testUploadReplay(t, b, func(ctx context.Context, since, until time.Time) ([]objstore.Manifest, error) {
		var ms []objstore.Manifest
		for k, v := range b.objects {
			if strings.HasSuffix(k, objstore.SuffixManifest) && !strings.Contains(k, "/_sniffers/") {
				var m objstore.Manifest
				if err := json.Unmarshal(v, &m); err != nil {
					return nil, err
				}
				ms = append(ms, m)
			}
		}
		return ms, nil
	}, func(key string) []byte { return b.objects[key] })
}

// The same into a real object store (Ceph RGW), read back as a query
// reads it: the manifests of the window, then the files they name.
func TestUploadReplayObjectStore(t *testing.T) {
	e := testenv.S3(t)
	ctx := context.Background()
	st, err := objstore.Open(ctx, objstore.Config{URL: "s3://" + e.Bucket + "/fleet", Endpoint: e.URL,
		Region: e.Region, AccessKey: e.AccessKey, SecretKey: e.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	testUploadReplay(t, st, func(ctx context.Context, since, until time.Time) ([]objstore.Manifest, error) {
		return st.Manifests(ctx, since, until, nil)
	}, func(key string) []byte {
		b, err := st.Get(ctx, key, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
	if rs, err := st.Sniffers(ctx); err != nil || len(rs) != 1 || rs[0].ID != "sniffer-a" {
		t.Errorf("sniffer records %+v, %v", rs, err)
	}
}

func testUploadReplay(t *testing.T, b upload.Bucket, manifests func(ctx context.Context, since, until time.Time) ([]objstore.Manifest, error), get func(string) []byte) {
	cs := capturetest.Cases(t, "acl", 5, 300, 1400)
	in := filepath.Join(t.TempDir(), "in.pcap")
	capturetest.WriteCases(t, in, cs)
	dir := t.TempDir()
	c := config(dir)
	c.Read, c.HTTP, c.Files.MaxSize = in, "", 16<<10
	c.Upload = Upload{Bucket: b, Config: upload.Config{Sniffer: "sniffer-a", Retry: time.Millisecond}}
	svc, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := svc.Stats()
	if closed, parts := capturetest.CaptureFiles(t, dir); len(closed)+len(parts) != 0 {
		t.Fatalf("left in the spool: %v %v", closed, parts)
	}
	last := cs[len(cs)-1].Packets
	ms, err := manifests(context.Background(), cs[0].Packets[0].Timestamp, last[len(last)-1].Timestamp.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ms, func(a, b objstore.Manifest) int { return int(a.Seq) - int(b.Seq) })
	if len(ms) < 2 || uint64(len(ms)) != st.Upload.Files || st.Upload.SpoolFiles != 0 {
		t.Fatalf("%d manifests; counters %+v", len(ms), st)
	}
	i := 0
	for _, m := range ms {
		data := get(m.Pcap)
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != m.PcapSHA256 || int64(len(data)) != m.PcapSize {
			t.Errorf("%s: %d bytes, SHA-256 %x; the manifest says %d, %s", m.Pcap, len(data), sum, m.PcapSize, m.PcapSHA256)
		}
		ps, err := pcapfile.NewReaderBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		for {
			var p mirror.Packet
			if err := ps.Next(&p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			if i >= len(cs) || !bytes.Equal(p.Data, cs[i].Frame) {
				t.Fatalf("%s: packet %d is not inner frame %d", m.Pcap, i, i)
			}
			i++
		}
		if m.Last.Sub(m.First) >= objstore.MaxFileSpan || m.Sniffer != "sniffer-a" || m.HeaderLen == 0 {
			t.Errorf("manifest %+v", m)
		}
	}
	if uint64(i) != st.Files.Packets || i != len(cs) {
		t.Errorf("stored %d packets, %d written, %d sent", i, st.Files.Packets, len(cs))
	}
	if len(get(objstore.SnifferKey("sniffer-a"))) == 0 {
		t.Error("no sniffer record")
	}
}

func TestSpoolOptions(t *testing.T) {
	b := &memBucket{}
	for _, tc := range []struct {
		in, want time.Duration
	}{{0, time.Hour}, {2 * time.Hour, time.Hour}, {5 * time.Minute, 5 * time.Minute}} {
		c := Config{Upload: Upload{Bucket: b}}
		ro := ring.Options{MaxDuration: tc.in}
		if err := spoolOptions(c, &ro, func(string, ...any) {}); err != nil {
			t.Fatal(err)
		}
		if ro.MaxDuration != tc.want || ro.MaxSpan != objstore.MaxFileSpan || !ro.Spool {
			t.Errorf("max duration %v: options %+v", tc.in, ro)
		}
	}
	c := Config{Upload: Upload{Bucket: b}}
	if err := spoolOptions(c, &ring.Options{Format: pcapfile.FormatPcap}, func(string, ...any) {}); err == nil {
		t.Error("classic pcap accepted for upload")
	}
	c = config("")
	c.Read, c.Upload.Bucket, c.Upload.Sniffer = "x.pcap", b, "s"
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "spool") {
		t.Errorf("upload without a directory: %v", err)
	}
	c = config(t.TempDir())
	c.Read, c.HTTP, c.Upload.Bucket, c.Upload.Sniffer = filepath.Join(t.TempDir(), "x.pcap"), "", b, "no/slash"
	capturetest.WriteCases(t, c.Read, capturetest.Cases(t, "acl", 5, 1, 1400))
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "sniffer id") {
		t.Errorf("bad sniffer id: %v", err)
	}
}
