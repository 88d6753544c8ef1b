package ring

import (
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

func TestDiskFull(t *testing.T) {
	dir := testenv.MountTmpfs(t, "256k")
	logs := &testenv.SyncBuffer{}
	clk := &fakeClock{t: t0}
	r := newTestRing(t, dir, Options{MaxSize: 40 << 10, Logger: debugLogger(logs), Now: clk.Now})
	// 300 packets of about 1.2 kB: more than the 256 kB disk holds.
	i := 0
	write := func(n int) {
		for range n {
			clk.Set(t0.Add(time.Duration(i) * 10 * time.Millisecond))
			if err := r.WritePacket(testPacket(i, 2, 1000)); err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
			i++
		}
	}
	write(300)
	st := r.Stats()
	if !st.DiskFull || st.Dropped == 0 || st.Packets+st.Dropped != 300 {
		t.Fatalf("stats after filling the disk: %+v", st)
	}
	if n := strings.Count(logs.String(), "capture disk full"); n != 1 {
		t.Fatalf("disk full logged %d times:\n%s", n, logs)
	}
	infos, lines := checkStore(t, r, dir)
	if st.Files != len(infos) || len(lines) != int(st.Packets) {
		t.Fatalf("%d files with %d packets on disk, stats %+v", len(infos), len(lines), st)
	}
	// While full, packets are dropped cheaply: no retry within a second.
	for range 100 {
		if err := r.WritePacket(testPacket(i, 2, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if st2 := r.Stats(); !st2.DiskFull || st2.Dropped != st.Dropped+100 || st2.Files != st.Files {
		t.Fatalf("stats: %+v, before %+v", st2, st)
	}

	// Space comes back.
	for _, in := range infos[:len(infos)-1] {
		if err := r.Delete(in.Name); err != nil {
			t.Fatal(err)
		}
	}
	dropped := r.Stats().Dropped
	write(100) // a second of traffic: the retry finds space
	st = r.Stats()
	if st.DiskFull || st.Dropped == dropped || st.Dropped >= dropped+100 {
		t.Fatalf("not resumed: %+v", st)
	}
	if n := strings.Count(logs.String(), "resumed writing"); n != 1 || strings.Count(logs.String(), "capture disk full") != 1 {
		t.Fatalf("resume logged %d times:\n%s", n, logs)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	infos, lines = checkStore(t, r, dir)
	var listed uint64
	for _, in := range infos {
		listed += in.Packets
	}
	if int(listed) != len(lines) || len(lines) == 0 {
		t.Fatalf("List counts %d packets, files hold %d", listed, len(lines))
	}
	// What is on disk is in the order written.
	for j := 1; j < len(lines); j++ {
		if lines[j] <= lines[j-1] && !(len(lines[j]) > len(lines[j-1])) {
			t.Fatalf("packets out of order: %q after %q", lines[j], lines[j-1])
		}
	}
}
