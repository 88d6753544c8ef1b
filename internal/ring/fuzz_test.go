package ring

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// FuzzParseName checks that names the ring makes for any VN pair parse back
// to their sequence number, stay within 255 bytes (the sidecar's temporary
// name included) and inside the directory, and that no name makes the
// parser panic.
func FuzzParseName(f *testing.F) {
	f.Add("vrsniff_00001_20261126120000.pcapng", 7, int64(1764158400), []byte("default-domain:a:b"), []byte("x/y"), false)
	f.Add("vrsniff_123456_20261126120000_a_b.pcapng", 123456, int64(0), []byte{}, []byte("_.."), true)
	f.Add("vrsniff__.pcapng", 0, int64(-1), []byte(nil), []byte(nil), false)
	f.Add("vrsniff_00002_20261126120000_a+b.pcapng", math.MaxInt, int64(253402300799), bytes.Repeat([]byte("k8s-x:"), 40), []byte("../../etc"), true)
	for _, split := range []vnpair.Split{vnpair.Undirected, vnpair.Directed} {
		if _, err := New(f.TempDir(), Options{Split: split, Prefix: strings.Repeat("p", 160)}); err == nil {
			f.Fatal("a prefix that leaves no room for labels is accepted")
		}
	}
	r := &Ring{o: Options{Prefix: "vrsniff"}, ext: ".pcapng", label: labelRoom("vrsniff", ".pcapng")}
	f.Fuzz(func(t *testing.T, name string, seq int, unix int64, src, dst []byte, directed bool) {
		r.parseName(name)
		if seq < 0 || unix < 0 || unix > 253402300799 {
			return
		}
		split := vnpair.Undirected
		if directed {
			split = vnpair.Directed
		}
		made := r.fileName(seq, time.Unix(unix, 0).UTC().Format("20060102150405"), vnpair.Label(src, dst, split, r.label))
		if got, ok := r.parseName(made); !ok || got != seq {
			t.Fatalf("parseName(%q) = %d, %v", made, got, ok)
		}
		if n := len("." + made + sidecarSuffix + ".tmp"); n > maxName {
			t.Fatalf("%q: its longest form has %d bytes", made, n)
		}
		if filepath.Base(made) != made || strings.HasPrefix(made, ".") {
			t.Fatalf("%q leaves the directory", made)
		}
	})
}

// FuzzRecover feeds arbitrary ".part" files to New: it must not fail or
// panic, and a recovered file that is listed with packets reads cleanly to
// its end.
func FuzzRecover(f *testing.F) {
	var good bytes.Buffer
	w, err := pcapfile.NewWriter(&good, pcapfile.Options{})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		w.WritePacket(testPacket(i, 2, 20))
	}
	w.Flush()
	b := good.Bytes()
	f.Add(b)
	f.Add(b[:len(b)-7])
	f.Add(b[:40])
	f.Add([]byte{})
	f.Add([]byte("not a capture file at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		const name = "vrsniff_00003_20261126120000.pcapng"
		if err := os.WriteFile(filepath.Join(dir, name+".part"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := New(dir, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		infos, _ := r.List()
		if r.seq != 3 {
			t.Fatalf("sequence %d after recovery", r.seq)
		}
		for _, in := range infos {
			if in.Packets == 0 {
				continue
			}
			fh, err := os.Open(filepath.Join(dir, in.Name))
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			rd, err := pcapfile.NewReader(fh)
			if err != nil {
				t.Fatal(err)
			}
			var p mirror.Packet
			var n uint64
			for err = rd.Next(&p); err == nil; err = rd.Next(&p) {
				n++
			}
			if !errors.Is(err, io.EOF) || n != in.Packets {
				t.Fatalf("recovered file: %d packets then %v, listed %d", n, err, in.Packets)
			}
		}
	})
}
