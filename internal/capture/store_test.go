package capture

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// withSrcVN returns a Juniper-header mirror payload like p with its source
// VN (TLV 3) set to name.
func withSrcVN(t *testing.T, p []byte, name string) []byte {
	t.Helper()
	var out []byte
	for i := 0; ; {
		if i+2 > len(p) {
			t.Fatal("payload ends inside its metadata")
		}
		typ, n := p[i], int(p[i+1])
		if typ == 255 {
			return append(out, p[i:]...)
		}
		if typ == 3 {
			out = append(append(out, 3, byte(len(name))), name...)
		} else {
			out = append(out, p[i:i+2+n]...)
		}
		i += 2 + n
	}
}

// openFDs counts the descriptors this process has open.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// Spoofed VN names once opened a file per pair until the capture ran out
// of descriptors and its HTTP server stopped accepting, with a warning per
// packet. Now at most MaxOpen split files are open, the rest of the pairs
// go to the other set, and the condition is logged once.
func TestSplitFlood(t *testing.T) {
	const pairs, maxOpen = 3000, 16
	dir := t.TempDir()
	c := config(dir)
	c.Listen, c.Files.Split, c.Files.MaxOpen = testenv.FreeAddr(t, "udp"), vnpair.Undirected, maxOpen
	r := start(t, c)
	fds0 := openFDs(t)
	base := capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 31, 1, 9000))[0]
	var ps [][]byte
	for i := range pairs {
		ps = append(ps, withSrcVN(t, base, "default-domain:evil:spoof-"+strconv.Itoa(i)))
	}
	testenv.SendUDP(t, c.Listen, ps)
	r.waitWritten(pairs)
	// The split files, the other set's, and a connection or two of the API.
	if n := openFDs(t); n > fds0+maxOpen+1+2 {
		t.Errorf("%d descriptors open, %d before the flood", n, fds0)
	}
	if l := r.list(); len(l) != maxOpen+1 {
		t.Errorf("API lists %d files", len(l))
	}
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := r.svc.Stats()
	if st.Files.Packets != pairs || st.Files.SplitOverflow != pairs-maxOpen || st.Files.Dropped != 0 {
		t.Errorf("final counters %+v", st.Files)
	}
	closed, parts := capturetest.CaptureFiles(t, dir)
	if len(parts) != 0 || len(closed) != maxOpen+1 {
		t.Fatalf("%d files, %d left open", len(closed), len(parts))
	}
	if n := r.warns.Load(); n != 1 {
		t.Errorf("%d warnings", n)
	}
}

// With its directory removed under it, the capture used to write on into
// unlinked files and report them written. Now it creates the directory
// again, goes on there, and the counters add up: what is on disk is what
// was written less what was lost with the old directory.
func TestDirRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "captures")
	c := config(dir)
	c.Listen = testenv.FreeAddr(t, "udp")
	r := start(t, c)
	ps := capturetest.UDPPayloads(t, capturetest.Cases(t, "acl", 32, 300, 9000))
	testenv.SendUDP(t, c.Listen, ps[:200])
	r.waitWritten(200)
	recreated := r.svc.Stats().Files.DirRecreated
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	r.waitFor("the directory created again", func() bool { return r.svc.Stats().Files.DirRecreated > recreated })
	testenv.SendUDP(t, c.Listen, ps[200:])
	r.waitWritten(300)
	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	closed, parts := capturetest.CaptureFiles(t, dir)
	if len(parts) != 0 {
		t.Fatalf("left open: %v", parts)
	}
	onDisk := uint64(0)
	for _, n := range closed {
		onDisk += uint64(len(tshark(t, filepath.Join(dir, n), "frame.len")))
	}
	st := r.svc.Stats()
	f := st.Files
	if onDisk != 100 || f.Packets-f.Lost != onDisk || f.Packets+f.Dropped != 300 || st.Pipeline.Written != 300 {
		t.Errorf("%d packets on disk; counters %+v, kept %d", onDisk, f, st.Pipeline.Written)
	}
}
