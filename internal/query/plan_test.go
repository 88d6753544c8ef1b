package query

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/objstore"
)

// countingBucket serves one object and counts its GETs and bytes.
type countingBucket struct {
	mu          sync.Mutex
	obj         []byte
	gets, bytes int64
}

func (b *countingBucket) Manifests(context.Context, time.Time, time.Time, []string) ([]objstore.Manifest, error) {
	return nil, nil
}

func (b *countingBucket) GetRange(_ context.Context, _ string, off, n int64) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if off < 0 || n <= 0 || off+n > int64(len(b.obj)) {
		return nil, fmt.Errorf("range [%d, %d) outside %d bytes", off, off+n, len(b.obj))
	}
	b.gets++
	b.bytes += n
	return io.NopCloser(bytes.NewReader(b.obj[off : off+n])), nil
}

func testRun(b Bucket) *run {
	return &run{ctx: context.Background(), b: b, o: Options{Parallel: 2}, sem: make(chan struct{}, 2)}
}

// TestRangeReaderAt: reads anywhere give the object's bytes; a read of
// bytes already read costs no GET, and what is read is counted.
func TestRangeReaderAt(t *testing.T) {
	obj := make([]byte, 5*indexBlock+123)
	rnd := rand.New(rand.NewPCG(1, 1))
	for i := range obj {
		obj[i] = byte(rnd.Uint32())
	}
	b := &countingBucket{obj: obj}
	r := testRun(b)
	ra := &rangeReaderAt{r: r, key: "k", size: int64(len(obj))}
	for range 300 {
		off := rnd.Int64N(int64(len(obj)))
		p := make([]byte, rnd.IntN(3*indexBlock))
		n, err := ra.ReadAt(p, off)
		want := obj[off:min(off+int64(len(p)), int64(len(obj)))]
		if n != len(want) || !bytes.Equal(p[:n], want) {
			t.Fatalf("ReadAt(%d bytes, %d) = %d bytes, want %d", len(p), off, n, len(want))
		}
		if (n < len(p)) != (err == io.EOF) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d bytes, %d): %d, %v", len(p), off, n, err)
		}
	}
	if b.bytes != r.indexBytes.Load() {
		t.Errorf("counted %d bytes, the bucket served %d", r.indexBytes.Load(), b.bytes)
	}
	// Everything is held by now (6 blocks): no more GETs.
	gets := b.gets
	p := make([]byte, 8)
	if _, err := ra.ReadAt(p, int64(len(obj))-8); err != nil || !bytes.Equal(p, obj[len(obj)-8:]) {
		t.Fatalf("footer read: %v", err)
	}
	if b.gets != gets {
		t.Errorf("%d GETs for bytes already read", b.gets-gets)
	}
	if _, err := ra.ReadAt(p, int64(len(obj))); err != io.EOF {
		t.Errorf("read at the end: %v, want EOF", err)
	}
}

// block is a little-endian pcapng block of type typ with body.
func block(typ uint32, body []byte) []byte {
	n := 12 + len(body)
	b := binary.LittleEndian.AppendUint32(nil, typ)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

// TestSelector: blocks cut across GETs come out whole; packets of an
// interface not yet described are dropped; what is not a block boundary
// is an error.
func TestSelector(t *testing.T) {
	shb := block(blockSHB, []byte{0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	idb := block(blockIDB, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	epb := func(iface uint32) []byte {
		return block(blockEPB, binary.LittleEndian.AppendUint32(nil, iface)[:4:4])
	}
	var in, want []byte
	in = append(in, shb...)
	in = append(in, idb...)
	in = append(in, epb(0)...)
	in = append(in, epb(1)...) // interface 1 is described after it
	in = append(in, idb...)
	in = append(in, epb(1)...)
	want = append(want, shb...)
	want = append(want, idb...)
	want = append(want, epb(0)...)
	want = append(want, idb...)
	want = append(want, epb(1)...)
	for cut := 1; cut < len(in); cut += 7 {
		s := &selector{}
		var got []byte
		for i := 0; i < len(in); i += cut {
			out, err := s.pass(in[i:min(i+cut, len(in))])
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			got = append(got, out...)
		}
		if !bytes.Equal(got, want) || len(s.pend) != 0 {
			t.Fatalf("cut %d: %d bytes out, %d pending; want %d", cut, len(got), len(s.pend), len(want))
		}
	}
	for name, b := range map[string][]byte{
		"no section header": epb(0),
		"bad length":        append(append([]byte(nil), shb...), 6, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0),
	} {
		if _, err := (&selector{}).pass(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCoalesce: spans within the gap share a GET up to MaxRange; longer
// spans are cut; every byte of every span is kept once, in order.
func TestCoalesce(t *testing.T) {
	r := &run{o: Options{Gap: 10, MaxRange: 100}}
	spans := []span{{0, 20}, {25, 5}, {40, 3}, {200, 250}, {455, 1}, {470, 60}}
	fs := r.coalesce(spans)
	var kept []span
	for _, f := range fs {
		if f.at.n > 100 {
			t.Errorf("GET %+v over MaxRange", f.at)
		}
		for _, k := range f.keep {
			if k.off < f.at.off || k.end() > f.at.end() {
				t.Errorf("kept %+v outside its GET %+v", k, f.at)
			}
			if n := len(kept); n > 0 && kept[n-1].end() == k.off {
				kept[n-1].n += k.n
			} else {
				kept = append(kept, k)
			}
		}
	}
	if fmt.Sprint(kept) != fmt.Sprint(spans) {
		t.Errorf("kept %v, want %v", kept, spans)
	}
	if got := fmt.Sprint(fs[0].at, fs[1].at); !strings.HasPrefix(got, "{0 43} {200 100}") {
		t.Errorf("first GETs %s, want {0 43} {200 100}", got)
	}
}
