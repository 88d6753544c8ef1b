package upload

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/ring"
)

// event is one request the fake bucket served, in the order served.
type event struct{ op, key string }

// fakeBucket is an in-memory bucket that records its requests and fails
// them on demand.
type fakeBucket struct {
	mu        sync.Mutex
	objects   map[string][]byte
	puts      map[string]int
	events    []event
	multipart map[string]bool // uploads in progress, by key

	down atomic.Bool // every request fails
	// beforePut, if set, is called as an object is stored, before it is.
	beforePut func(key string, data []byte)
}

var errDown = errors.New(`put "http://vrsniff:vrsniffsecret@127.0.0.1:17480/b/k?X-Amz-Signature=0123abcd&X-Amz-Credential=vrsniff%2F2026": 503 Service Unavailable`)

func newFakeBucket() *fakeBucket {
	return &fakeBucket{objects: map[string][]byte{}, puts: map[string]int{}, multipart: map[string]bool{}}
}

func (b *fakeBucket) PutReader(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if b.down.Load() {
		// A multipart upload that failed half way is left in progress.
		io.CopyN(io.Discard, r, size/2)
		b.mu.Lock()
		b.multipart[key] = true
		b.mu.Unlock()
		return errDown
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(data)) != size {
		return fmt.Errorf("put %s: %d bytes, announced %d", key, len(data), size)
	}
	return b.put("PutReader", key, data)
}

func (b *fakeBucket) PutBytes(ctx context.Context, key string, data []byte, contentType string) error {
	if b.down.Load() {
		return errDown
	}
	return b.put("PutBytes", key, slices.Clone(data))
}

func (b *fakeBucket) put(op, key string, data []byte) error {
	if b.beforePut != nil {
		b.beforePut(key, data)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = data
	b.puts[key]++
	b.events = append(b.events, event{op, key})
	return nil
}

func (b *fakeBucket) AbortUploads(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	if b.down.Load() {
		return 0, errDown
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for k := range b.multipart {
		if strings.HasPrefix(k, prefix) {
			delete(b.multipart, k)
			n++
		}
	}
	b.events = append(b.events, event{"AbortUploads", prefix})
	return n, nil
}

func (b *fakeBucket) get(key string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.objects[key]
	return d, ok
}

func (b *fakeBucket) putCount(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.puts[key]
}

func (b *fakeBucket) eventList() []event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.events)
}

// keys lists the stored keys ending in suffix, sorted.
func (b *fakeBucket) keys(suffix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ks []string
	for k := range b.objects {
		if strings.HasSuffix(k, suffix) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// fakeIndex is a flow index that lists its records' UDP source ports and
// offsets as JSON.
type fakeIndex struct{ recs [][3]int64 }

func (x *fakeIndex) Full() bool { return false }

func (x *fakeIndex) Add(p *mirror.Packet, off int64, length int) {
	x.recs = append(x.recs, [3]int64{int64(binary.BigEndian.Uint16(p.Frame[34:])), off, int64(length)})
}

func (x *fakeIndex) WriteTo(w io.Writer) (int64, error) {
	b, _ := json.Marshal(x.recs)
	n, err := w.Write(b)
	return int64(n), err
}

func (x *fakeIndex) Reset() { x.recs = x.recs[:0] }

var t0 = time.Date(2026, 11, 30, 23, 59, 30, 0, time.UTC)

// packet i: an Ethernet/IPv4/UDP frame whose UDP source port is i, one
// second after packet i-1, in one of two VN pairs.
func packet(i int) *mirror.Packet {
	f := make([]byte, 14+20+8+32)
	copy(f, []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00})
	f[14] = 0x45
	binary.BigEndian.PutUint16(f[16:], uint16(len(f)-14))
	f[22], f[23] = 64, 17
	copy(f[26:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(f[34:], uint16(i))
	binary.BigEndian.PutUint16(f[36:], 5000)
	binary.BigEndian.PutUint16(f[38:], 40)
	vn := []string{"default-domain:admin:vn-a", "default-domain:admin:vn-b"}
	return &mirror.Packet{
		Timestamp: t0.Add(time.Duration(i) * time.Second),
		Mode:      mirror.ModeJuniper,
		Frame:     f,
		FrameLen:  len(f),
		Meta: mirror.Meta{SrcVN: []byte(vn[i%2]), DstVN: []byte(vn[(i+1)%2]), Direction: mirror.DirIngress,
			Host: netip.AddrFrom4([4]byte{10, 1, 1, 1})},
	}
}

// newSpool opens a spool in dir with a flow index per file.
func newSpool(t *testing.T, dir string, o ring.Options) *ring.Ring {
	t.Helper()
	o.Spool = true
	o.Index = func() ring.Indexer { return &fakeIndex{} }
	if o.FlushEvery == 0 {
		o.FlushEvery = time.Hour
	}
	o.Logger = slog.New(slog.DiscardHandler)
	r, err := ring.New(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// writeFiles writes files of per packets each into r, packets from next
// on, and returns the next packet number.
func writeFiles(t *testing.T, r *ring.Ring, next, files, per int) int {
	t.Helper()
	for range files {
		for range per {
			if err := r.WritePacket(packet(next)); err != nil {
				t.Fatal(err)
			}
			next++
		}
		if err := r.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	return next
}

// waitFor waits for cond, failing the test if it does not come within a
// generous bound (a hang, not a slow machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logBuffer collects log records as text, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

// start runs an Uploader of r into b until the test ends.
func start(t *testing.T, b Bucket, s Spool, c Config) *Uploader {
	t.Helper()
	if c.Sniffer == "" {
		c.Sniffer = "sniffer-1"
	}
	if c.Retry == 0 {
		c.Retry, c.MaxRetry = time.Millisecond, 5*time.Millisecond
	}
	u, err := New(b, s, c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return u
}
