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

// genmirror's inner frames: destination and source MAC. Frame i carries i
// at byte 60 and is 64 or 1514 bytes long.
var (
	legitDst = []byte{2, 0, 0, 0, 0, 1}
	legitSrc = []byte{2, 0, 0, 0, 0, 2}
)

// count prints the tally of the genmirror frames 0..sent-1 in the
// capture files under the given directories.
func count(args []string) error {
	fl := flag.NewFlagSet("count", flag.ExitOnError)
	sent := fl.Int("sent", 0, "genmirror frames sent: numbers 0 to `N`-1")
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
// the genmirror frames 0..sent-1 found whole: their own length, not cut.
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
				if len(b) < 12 || string(b[:6]) != string(legitDst) || string(b[6:12]) != string(legitSrc) {
					t.other++
					return
				}
				if len(b) < 64 || p.WireLen != len(b) || (len(b) != 64 && len(b) != 1514) {
					t.cut++
					return
				}
				i := binary.BigEndian.Uint32(b[60:])
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
