package ring

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// FuzzParseName checks that names the ring makes parse back to their
// sequence number, and that no name makes the parser panic.
func FuzzParseName(f *testing.F) {
	f.Add("vrsniff_00001_20261126120000.pcapng", 7, int64(1764158400), []byte("default-domain:a:b"), []byte("x/y"))
	f.Add("vrsniff_123456_20261126120000_a_b.pcapng", 123456, int64(0), []byte{}, []byte("_.."))
	f.Add("vrsniff__.pcapng", 0, int64(-1), []byte(nil), []byte(nil))
	r := &Ring{o: Options{Prefix: "vrsniff"}, ext: ".pcapng"}
	f.Fuzz(func(t *testing.T, name string, seq int, unix int64, src, dst []byte) {
		r.parseName(name)
		if seq < 0 || unix < 0 || unix > 253402300799 {
			return
		}
		made := fmt.Sprintf("vrsniff_%05d_%s_%s_%s.pcapng", seq, time.Unix(unix, 0).UTC().Format("20060102150405"), slugVN(src), slugVN(dst))
		if got, ok := r.parseName(made); !ok || got != seq {
			t.Fatalf("parseName(%q) = %d, %v", made, got, ok)
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
