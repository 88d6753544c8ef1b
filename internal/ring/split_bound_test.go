package ring

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// spoofed is packet i with the VN pair of spoofer n.
func spoofed(i, n int) *mirror.Packet {
	p := testPacket(i, 1, 20)
	p.Meta.SrcVN = []byte("default-domain:evil:spoof-" + strconv.Itoa(n))
	p.Meta.DstVN = []byte("default-domain:admin:vn-db")
	return p
}

// seqOf is the sequence number in a file name.
func seqOf(t *testing.T, name string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.Split(name, "_")[1])
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// 20,000 spoofed VN pairs used to open 20,000 files: past the fd limit,
// and the HTTP server could not accept. Now at most MaxOpen split files
// and the other set's are open, the memory stays small, the overflow is
// counted and logged once, and idle files give their place, least recently
// used first.
func TestSplitFloodBounded(t *testing.T) {
	const pairs = 20000
	dir := t.TempDir()
	logs := &testenv.SyncBuffer{}
	clk := &fakeClock{t: t0}
	fds0, heap0 := openFDs(t), heapInUse()
	r := newTestRing(t, dir, Options{Split: vnpair.Undirected, Logger: debugLogger(logs), Now: clk.Now})
	maxFDs := 0
	for i := range pairs {
		if err := r.WritePacket(spoofed(i, i)); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			maxFDs = max(maxFDs, openFDs(t))
		}
	}
	if limit := fds0 + DefaultMaxOpen + 1; maxFDs > limit {
		t.Errorf("%d file descriptors open during the flood, limit %d", maxFDs, limit)
	}
	// Per open file: the file, a small buffer, a pair table.
	if grew := int64(heapInUse()) - int64(heap0); grew > 8<<20 {
		t.Errorf("heap grew by %d bytes", grew)
	}
	st := r.Stats()
	if st.OpenFiles != DefaultMaxOpen+1 || st.SplitOverflow != pairs-DefaultMaxOpen || st.SplitClosed != 0 || st.Dropped != 0 {
		t.Fatalf("after the flood: %+v", st)
	}
	if n := len(dirFiles(t, dir)); n != DefaultMaxOpen+1 {
		t.Fatalf("%d files in the directory", n)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "more active VN pairs than split files") {
		t.Fatalf("flood logged:\n%s", logs)
	}
	before, _ := r.List()
	firstSeq := seqOf(t, before[0].Name)

	// A minute later every file is idle: 300 new pairs take the places of
	// 256, least recently used first; the last 44 find none.
	clk.Set(t0.Add(DefaultSplitIdle))
	for i := range 300 {
		if err := r.WritePacket(spoofed(pairs+i, pairs+i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := openFDs(t); n > fds0+DefaultMaxOpen+1 {
		t.Errorf("%d file descriptors open, limit %d", n, fds0+DefaultMaxOpen+1)
	}
	st = r.Stats()
	if st.OpenFiles != DefaultMaxOpen+1 || st.SplitClosed != DefaultMaxOpen || st.SplitOverflow != pairs-DefaultMaxOpen+44 {
		t.Fatalf("after the second wave: %+v", st)
	}
	// Spoofer 0 comes back after its file was closed: a new file, with a
	// new sequence number.
	clk.Set(t0.Add(2 * DefaultSplitIdle))
	if err := r.WritePacket(spoofed(pairs+300, 0)); err != nil {
		t.Fatal(err)
	}
	infos, _ := r.List()
	again := infos[len(infos)-1]
	if !again.Open || !strings.HasSuffix(again.Name, ".spoof-0.pcapng.part") || seqOf(t, again.Name) <= firstSeq {
		t.Fatalf("spoofer 0 reopened as %+v", again)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "\n"); n > 3 {
		t.Errorf("%d lines logged:\n%s", n, logs)
	}
	infos, lines := checkStore(t, r, dir)
	if len(lines) != pairs+301 {
		t.Fatalf("files hold %d packets, %d written", len(lines), pairs+301)
	}
	var others []Info
	for _, in := range infos {
		if strings.HasSuffix(in.Name, "_"+OtherLabel+".pcapng") {
			others = append(others, in)
		} else if in.Packets != 1 || len(in.Pairs) != 1 {
			t.Errorf("%+v", in)
		}
	}
	if len(others) != 1 || others[0].Packets != pairs-DefaultMaxOpen+44 || len(others[0].Pairs) != DefaultMaxPairs ||
		others[0].PairsOther != others[0].Packets-DefaultMaxPairs {
		t.Fatalf("other set: %+v", others)
	}
}

// A small table shows the order: the least recently used idle file closes
// first, a busy one never; a pair without room waits in the other set.
func TestSplitLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: t0}
	r := newTestRing(t, dir, Options{Split: vnpair.Undirected, MaxOpen: 2, SplitIdle: 10 * time.Second, Now: clk.Now})
	var want []string
	write := func(sec, n int) {
		t.Helper()
		clk.Set(t0.Add(time.Duration(sec) * time.Second))
		r.tick() // as the flush loop does every second
		p := spoofed(len(want), n)
		if err := r.WritePacket(p); err != nil {
			t.Fatal(err)
		}
		want = append(want, wantLine(p))
	}
	open := func() (names []string) {
		infos, _ := r.List()
		for _, in := range infos {
			if in.Open {
				names = append(names, in.Name[len("vrsniff_00000_20261126120000_"):])
			}
		}
		return names
	}
	label := func(n int) string {
		return vnpair.Label([]byte("default-domain:evil:spoof-"+strconv.Itoa(n)), []byte("default-domain:admin:vn-db"), vnpair.Undirected, 100) + ".pcapng.part"
	}
	write(0, 1)
	write(1, 2)
	write(5, 1)  // 2 is now the least recently used
	write(8, 3)  // nothing idle for 10 s: other
	write(12, 3) // 2 idle for 11 s: closed, 3 takes its place
	if got := open(); !slices.Equal(got, []string{label(1), OtherLabel + ".pcapng.part", label(3)}) {
		t.Fatalf("open: %q", got)
	}
	write(13, 2) // 1 idle for 8 s, 3 busy: other again
	write(16, 2) // 1 idle for 11 s: closed; 2 reopens with a new number
	if got := open(); !slices.Equal(got, []string{OtherLabel + ".pcapng.part", label(3), label(2)}) {
		t.Fatalf("open: %q", got)
	}
	if st := r.Stats(); st.SplitClosed != 2 || st.SplitOverflow != 2 || st.OpenFiles != 3 {
		t.Fatalf("%+v", st)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	infos, lines := checkStore(t, r, dir)
	// Files in sequence order: 1, 2, other, 3, 2 again.
	var got []string
	for _, in := range infos {
		for range in.Packets {
			got = append(got, in.Name[len("vrsniff_00001_20261126120000_"):]+" "+lines[0])
			lines = lines[1:]
		}
	}
	wantFiles := []string{label(1), label(1), label(2), OtherLabel + ".pcapng.part", OtherLabel + ".pcapng.part", label(3), label(2)}
	order := []int{0, 2, 1, 3, 5, 4, 6} // packets in file order
	if len(got) != len(order) {
		t.Fatalf("files hold %q", got)
	}
	for i, k := range order {
		w := strings.TrimSuffix(wantFiles[i], ".part") + " " + want[k]
		if got[i] != w {
			t.Errorf("packet %d: %q, want %q", i, got[i], w)
		}
	}
}

// With DropOther, packets of pairs without room are dropped and counted,
// and no other set is written.
func TestSplitDropOther(t *testing.T) {
	dir := t.TempDir()
	r := newTestRing(t, dir, Options{Split: vnpair.Directed, MaxOpen: 4, DropOther: true})
	for i := range 100 {
		if err := r.WritePacket(spoofed(i, i%10)); err != nil {
			t.Fatal(err)
		}
	}
	st := r.Stats()
	if st.OpenFiles != 4 || st.SplitOverflow != 60 || st.Dropped != 60 || st.Packets+st.Pending != 40 {
		t.Fatalf("%+v", st)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	infos, lines := checkStore(t, r, dir)
	if len(infos) != 4 || len(lines) != 40 {
		t.Fatalf("%d files with %d packets", len(infos), len(lines))
	}
	for _, n := range dirFiles(t, dir) {
		if strings.Contains(n, OtherLabel) {
			t.Errorf("%s written", n)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, infos[0].Name)); err != nil {
		t.Fatal(err)
	}
}
