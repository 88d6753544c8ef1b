package ring

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// 300,000 spoofed pairs once made a 67 MB sidecar beside a 105 MB file, and
// as large a list in memory and in the API. Now a file lists its busiest
// MaxPairs pairs and counts the rest as other; a busy pair keeps its exact
// count however many spoofed ones come between its packets.
func TestFilePairsBounded(t *testing.T) {
	const spoofs = 30000
	dir := t.TempDir()
	heap0 := heapInUse()
	r := newTestRing(t, dir, Options{})
	busy := 0
	for i := range spoofs {
		p := spoofed(i, i)
		if i%3 == 0 {
			p = testPacket(i, 1, 20) // vn-a -> vn-b
			busy++
		}
		if err := r.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	infos, _ := r.List()
	if len(infos) != 1 || len(infos[0].Pairs) != DefaultMaxPairs {
		t.Fatalf("open file lists %d pairs", len(infos[0].Pairs))
	}
	if grew := int64(heapInUse()) - int64(heap0); grew > 4<<20 {
		t.Errorf("heap grew by %d bytes", grew)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	infos, lines := checkStore(t, r, dir)
	in := infos[0]
	if len(lines) != spoofs || len(in.Pairs) != DefaultMaxPairs {
		t.Fatalf("%d packets, %d pairs", len(lines), len(in.Pairs))
	}
	if top := in.Pairs[0]; top.SrcVN != vns[0] || top.DstVN != vns[1] || top.Packets != uint64(busy) {
		t.Errorf("busiest pair %+v, want %d packets of %s -> %s", top, busy, vns[0], vns[1])
	}
	if in.PairsOther != spoofs-uint64(busy)-uint64(DefaultMaxPairs-1) {
		t.Errorf("other: %d packets", in.PairsOther)
	}
	side, err := os.Stat(filepath.Join(dir, in.Name+sidecarSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if side.Size() > 8<<10 {
		t.Errorf("sidecar of %d bytes", side.Size())
	}
	// What List says is what a restart reads back.
	again := newTestRing(t, dir, Options{})
	after, _ := again.List()
	if len(after) != 1 || after[0].PairsOther != in.PairsOther || len(after[0].Pairs) != len(in.Pairs) {
		t.Fatalf("after restart: %+v", after)
	}
}

// Sidecars are part of the store: MaxBytes holds for everything in the
// directory, and DiskUsage counts them.
func TestMaxBytesCountsSidecars(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 12000
	r := newTestRing(t, dir, Options{MaxSize: 1500, MaxBytes: maxBytes})
	for i := range 400 {
		// Several pairs per file make sidecars of a few hundred bytes.
		if err := r.WritePacket(spoofed(i, i%7)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	var onDisk, sidecars int64
	for _, n := range dirFiles(t, dir) {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		onDisk += st.Size()
		if filepath.Ext(n) == sidecarSuffix {
			sidecars += st.Size()
		}
	}
	if onDisk > maxBytes || onDisk != r.DiskUsage() || onDisk != r.Stats().Bytes || sidecars < onDisk/4 {
		t.Fatalf("%d bytes on disk (%d in sidecars), DiskUsage %d, limit %d", onDisk, sidecars, r.DiskUsage(), maxBytes)
	}
	// A restart counts the same.
	again := newTestRing(t, dir, Options{MaxSize: 1500, MaxBytes: maxBytes})
	if again.DiskUsage() != onDisk {
		t.Fatalf("after restart DiskUsage %d, %d on disk", again.DiskUsage(), onDisk)
	}
}

// A sidecar written before pairs were bounded is cut down to the busiest
// pairs when the store is opened; one too large to read is rebuilt from
// the file.
func TestOldSidecars(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{MaxSize: 300})
	for i := range 4 {
		if err := r.WritePacket(testPacket(i, 1, 200)); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	infos, _ := r.List()
	if len(infos) != 4 {
		t.Fatalf("%d files", len(infos))
	}
	// The first file's sidecar lists 1,000 pairs, the second one's is
	// over a megabyte.
	big := infos[0]
	big.Pairs = nil
	for i := range 1000 {
		big.Pairs = append(big.Pairs, vnpair.Pair{SrcVN: "vn-" + strconv.Itoa(i), DstVN: "x", Packets: uint64(1000 - i)})
	}
	b, _ := json.Marshal(big)
	os.WriteFile(filepath.Join(dir, big.Name+sidecarSuffix), b, 0o644)
	huge := infos[1]
	huge.Pairs = []vnpair.Pair{{SrcVN: string(make([]byte, 2<<20)), DstVN: "x", Packets: 1}}
	b, _ = json.Marshal(huge)
	os.WriteFile(filepath.Join(dir, huge.Name+sidecarSuffix), b, 0o644)

	r2 := newTestRing(t, dir, Options{MaxSize: 300})
	got, _ := r2.List()
	if len(got) != 4 {
		t.Fatalf("%d files", len(got))
	}
	if p := got[0].Pairs; len(p) != DefaultMaxPairs || p[0].SrcVN != "vn-0" || got[0].PairsOther != sumRange(1, 1000-DefaultMaxPairs) {
		t.Errorf("trimmed: %d pairs, other %d", len(p), got[0].PairsOther)
	}
	if got[1].Packets != 1 || len(got[1].Pairs) != 0 {
		t.Errorf("rebuilt: %+v", got[1])
	}
	var onDisk int64
	for _, n := range dirFiles(t, dir) {
		st, _ := os.Stat(filepath.Join(dir, n))
		onDisk += st.Size()
	}
	if r2.DiskUsage() != onDisk || onDisk > 8<<10 {
		t.Errorf("DiskUsage %d, %d on disk", r2.DiskUsage(), onDisk)
	}
}

func sumRange(lo, hi int) uint64 {
	var n uint64
	for i := lo; i <= hi; i++ {
		n += uint64(i)
	}
	return n
}
