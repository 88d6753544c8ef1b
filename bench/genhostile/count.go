package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// The legitimate traffic is `vrsniff gen -numbered`: the inner frames of
// case i carry i in their source MAC, 02:4e:ii:ii:ii:ii.
var numberedMAC = []byte{0x02, 0x4e}

// frameNumber returns the case number of a numbered inner frame.
func frameNumber(b []byte) (uint32, bool) {
	if len(b) < 12 || string(b[6:8]) != string(numberedMAC) {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[8:12]), true
}

// whole reports whether an inner frame is as long as its IP header says:
// a frame cut, or put together from fragments of different datagrams, is
// not. Frames other than IP are taken as they are.
func whole(b []byte) bool {
	off := 12
	if len(b) >= off+2 && binary.BigEndian.Uint16(b[off:]) == 0x8100 {
		off += 4
	}
	if len(b) < off+2 {
		return false
	}
	ip := b[off+2:]
	switch binary.BigEndian.Uint16(b[off:]) {
	case 0x0800:
		return len(ip) >= 20 && int(binary.BigEndian.Uint16(ip[2:])) == len(ip)
	case 0x86dd:
		return len(ip) >= 40 && 40+int(binary.BigEndian.Uint16(ip[4:])) == len(ip)
	}
	return true
}

// count prints the tally of the numbered frames 0..sent-1 in the capture
// files under the given directories.
func count(args []string) error {
	fl := flag.NewFlagSet("count", flag.ExitOnError)
	sent := fl.Int("sent", 0, "numbered frames sent: numbers 0 to `N`-1")
	exclude := fl.String("exclude", "", "leave out files whose name matches the `glob`")
	fl.Parse(args)
	if *sent <= 0 || fl.NArg() == 0 {
		return errors.New("need -sent and at least one directory")
	}
	t, err := tallyFiles(*sent, *exclude, fl.Args())
	if err != nil {
		return err
	}
	fmt.Printf("found=%d sent=%d kept_pct=%.3f duplicate=%d cut=%d outside=%d other=%d files=%d\n",
		t.found, *sent, 100*float64(t.found)/float64(*sent), t.dup, t.cut, t.outside, t.other, t.files)
	return nil
}

// tally counts what count found: frames found whole (each number once),
// found again, cut, numbered past the range, other packets, and files.
type tally struct {
	found, dup, cut, outside, other, files int
}

// tallyFiles reads every capture file under paths (the rejects
// directory and the files whose name matches exclude left out) and counts
// the numbered frames 0..sent-1 found whole: not cut, as long as their IP
// header says.
func tallyFiles(sent int, exclude string, paths []string) (tally, error) {
	var t tally
	seen := make([]bool, sent)
	for _, dir := range paths {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "rejects" {
					return filepath.SkipDir
				}
				return nil
			}
			name := strings.TrimSuffix(d.Name(), ".part")
			if !strings.HasSuffix(name, ".pcapng") && !strings.HasSuffix(name, ".pcap") {
				return nil
			}
			if ok, _ := filepath.Match(exclude, d.Name()); ok {
				return nil
			}
			t.files++
			return eachPacket(path, func(p *mirror.Packet) {
				b := p.Data
				i, ok := frameNumber(b)
				if !ok {
					t.other++
					return
				}
				if p.WireLen != len(b) || !whole(b) {
					t.cut++
					return
				}
				switch {
				case int(i) >= sent:
					t.outside++
				case seen[i]:
					t.dup++
				default:
					seen[i] = true
					t.found++
				}
			})
		})
		if err != nil {
			return t, err
		}
	}
	return t, nil
}

// eachPacket calls f for every packet of a capture file.
func eachPacket(path string, f func(*mirror.Packet)) error {
	r, c, err := pcapfile.Open(path)
	if err != nil {
		return err
	}
	defer c.Close()
	err = r.Guard(func() error {
		var p mirror.Packet
		for {
			if err := r.Next(&p); err != nil {
				return err
			}
			f(&p)
		}
	})
	if err != nil && err != io.EOF {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
