package ring

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// fakeSource stands for the capture source's cumulative counters.
type fakeSource struct {
	mu sync.Mutex
	s  SourceStats
}

func (f *fakeSource) Stats() SourceStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s
}

func (f *fakeSource) Set(received, dropped uint64) {
	f.mu.Lock()
	f.s = SourceStats{Received: received, Dropped: dropped}
	f.mu.Unlock()
}

// TestFileDrops checks that a closed file records what was lost while it
// was open, in its sidecar, its Info and its pcapng interface statistics,
// and that its interface is described as the capture.
func TestFileDrops(t *testing.T) {
	dir := t.TempDir()
	src := &fakeSource{}
	src.Set(10, 3) // before the file: not its own
	clock := &fakeClock{t: t0}
	iface := pcapfile.Interface{Name: "eth1", Description: "vrsniff decoded mirror traffic from eth1, ports 8099",
		Filter: "src-vn default-domain:admin:vn-a"}
	// One split file at a time, the other pairs dropped: every packet of
	// a second pair is a store drop.
	r := newTestRing(t, dir, Options{Split: vnpair.Undirected, MaxOpen: 1, SplitIdle: time.Hour, DropOther: true,
		Interface: iface, SourceStats: src.Stats, Now: clock.Now})
	write := func(i, pairs int) {
		t.Helper()
		if err := r.WritePacket(testPacket(i, pairs, 10)); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 1)
	src.Set(110, 53)
	write(1, 2) // the second pair: dropped
	write(3, 2)
	write(4, 1)
	// The file being written shows what was lost so far.
	if infos, _ := r.List(); len(infos) != 1 || infos[0].KernelDropped != 50 || infos[0].StoreDropped != 2 || !infos[0].Closed.IsZero() {
		t.Errorf("open file listed as %+v", infos)
	}
	clock.Set(t0.Add(time.Minute))
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Dropped != 2 || st.Rotated != 1 {
		t.Fatalf("stats: %d dropped, %d rotated; want 2 and 1", st.Dropped, st.Rotated)
	}
	infos, err := r.List()
	if err != nil || len(infos) != 1 {
		t.Fatalf("List: %v, %v", infos, err)
	}
	in := infos[0]
	want := Info{Received: 100, KernelDropped: 50, StoreDropped: 2, Opened: t0, Closed: t0.Add(time.Minute)}
	if in.Received != want.Received || in.KernelDropped != want.KernelDropped || in.StoreDropped != want.StoreDropped ||
		!in.Opened.Equal(want.Opened) || !in.Closed.Equal(want.Closed) {
		t.Errorf("info %+v, want the counts and span of %+v", in, want)
	}

	b, err := os.ReadFile(filepath.Join(dir, in.Name+sidecarSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var side map[string]any
	if err := json.Unmarshal(b, &side); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(side["source_received"], side["kernel_dropped"], side["store_dropped"]) != "100 50 2" {
		t.Errorf("sidecar %s lacks the drop counts", b)
	}

	path := filepath.Join(dir, in.Name)
	recv, ifDrop, osDrop := testenv.InterfaceStats(t, path)
	if fmt.Sprint(recv, ifDrop, osDrop) != "[150] [50] [2]" {
		t.Errorf("tshark reads the ISB as received %v, dropped %v, dropped by OS %v; want 150, 50, 2", recv, ifDrop, osDrop)
	}
	rows := testenv.TsharkRows(t, "-r", path, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.interface_description")
	if len(rows) != 2 || rows[0][0] != iface.Name || rows[0][1] != iface.Description {
		t.Errorf("tshark reads the interface as %q, want %q, %q", rows, iface.Name, iface.Description)
	}

	// A restart reads the counts back from the sidecar.
	r.Close()
	again := newTestRing(t, dir, Options{})
	infos, _ = again.List()
	if len(infos) != 1 || infos[0].KernelDropped != 50 || infos[0].StoreDropped != 2 {
		t.Errorf("restart lists %+v", infos)
	}
}

// TestRemovedCounts checks the rotation and retention counters.
func TestRemovedCounts(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{MaxFiles: 2})
	for i := range 4 {
		if err := r.WritePacket(testPacket(i, 1, 10)); err != nil {
			t.Fatal(err)
		}
		if err := r.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	infos, _ := r.List()
	if err := r.Delete(infos[0].Name); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if st.Rotated != 4 || st.RemovedMaxFiles != 2 || st.RemovedMaxBytes != 0 || st.Deleted != 1 {
		t.Errorf("rotated %d, removed %d (max files) %d (max bytes), deleted %d; want 4, 2, 0, 1",
			st.Rotated, st.RemovedMaxFiles, st.RemovedMaxBytes, st.Deleted)
	}
}

// Classic pcap has no room for statistics: only the sidecar has them.
func TestFileDropsPcap(t *testing.T) {
	dir := t.TempDir()
	src := &fakeSource{}
	r := newTestRing(t, dir, Options{Format: pcapfile.FormatPcap, SourceStats: src.Stats})
	if err := r.WritePacket(testPacket(0, 1, 10)); err != nil {
		t.Fatal(err)
	}
	src.Set(40, 10)
	if err := r.WritePacket(testPacket(1, 1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	infos, _ := r.List()
	if len(infos) != 1 || infos[0].Received != 40 || infos[0].KernelDropped != 10 || infos[0].StoreDropped != 0 {
		t.Fatalf("infos %+v", infos)
	}
	ps, err := pcapfile.ReadFile(filepath.Join(dir, infos[0].Name))
	if err != nil || len(ps) != 2 {
		t.Fatalf("the pcap file reads as %d packets, %v", len(ps), err)
	}
	st, err := os.Stat(filepath.Join(dir, infos[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != infos[0].Size {
		t.Errorf("file size %d, listed %d", st.Size(), infos[0].Size)
	}
}
