package main

import (
	"encoding/binary"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// Every K-th datagram leaves as two outer fragments that the decoder puts
// back together: each inner frame comes out once, whole, with its number.
func TestBigEveryFragmentsReassemble(t *testing.T) {
	const n, k = 50, 10
	name := filepath.Join(t.TempDir(), "m.pcap")
	if err := run(n, name, k, 1500); err != nil {
		t.Fatal(err)
	}
	r, c, err := pcapfile.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d := mirror.NewDecoder(mirror.Config{})
	var frames, held, next int
	err = r.Guard(func() error {
		for {
			var p mirror.Packet
			if err := r.Next(&p); err != nil {
				return err
			}
			frames++
			if len(p.Data) > 1514 {
				t.Errorf("frame %d is %d bytes, more than the MTU allows", frames, len(p.Data))
			}
			switch st := d.Decode(&p); st {
			case mirror.Held:
				held++
			case mirror.Decoded:
				size := 64
				if next%k == k-1 {
					size = 1514
				}
				if len(p.Frame) != size || p.FrameLen != size {
					t.Errorf("datagram %d: inner frame %d bytes (of %d), want %d", next, len(p.Frame), p.FrameLen, size)
				}
				if i := binary.BigEndian.Uint32(p.Frame[60:]); i != uint32(next) {
					t.Errorf("datagram %d carries number %d", next, i)
				}
				next++
			default:
				t.Errorf("frame %d: status %d (%v)", frames, st, p.Err)
			}
		}
	})
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if next != n || held != n/k || frames != n+n/k {
		t.Fatalf("%d frames, %d held, %d decoded; want %d, %d, %d", frames, held, next, n+n/k, n/k, n)
	}
}
