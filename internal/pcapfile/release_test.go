package pcapfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// rssFile is the process's resident memory backed by files, in bytes.
func rssFile(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// Reading a large mapped file does not keep it resident: memory stays
// bounded whatever the file's size.
func TestMappedReadReleasesPages(t *testing.T) {
	const size, rec = 192 << 20, 60000
	name := filepath.Join(t.TempDir(), "big.pcap")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr, 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], rec)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	w.Write(hdr)
	body := bytes.Repeat([]byte{0x5a}, rec)
	n := size / (16 + rec)
	for i := range n {
		var r [16]byte
		binary.LittleEndian.PutUint32(r[0:], uint32(i))
		binary.LittleEndian.PutUint32(r[8:], rec)
		binary.LittleEndian.PutUint32(r[12:], rec)
		w.Write(r[:])
		w.Write(body)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	r, c, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := rssFile(t)
	var peak int64
	var p mirror.Packet
	var sum byte
	for i := 0; ; i++ {
		if err := r.Next(&p); err != nil {
			if i != n {
				t.Fatalf("%d of %d packets: %v", i, n, err)
			}
			break
		}
		for j := 0; j < len(p.Data); j += 4096 {
			sum ^= p.Data[j] // touch every page
		}
		if i%256 == 0 {
			peak = max(peak, rssFile(t)-base)
		}
	}
	if limit := int64(releaseKeep + 2*releaseStep); peak > limit {
		t.Errorf("reading %d MiB kept %d MiB resident, want at most %d MiB", size>>20, peak>>20, limit>>20)
	}
	_ = sum
}
