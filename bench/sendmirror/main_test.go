package main

import (
	"encoding/binary"
	"testing"
)

func ipv4Sum(h []byte) uint16 {
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// Frame c of all workers gets the source 10.128.0.0 + c mod 2^23 and the
// ID c / 2^23: no two share both in the first 2^39 frames. The header
// checksum verifies and the original frame is left alone.
func TestVaryDistinctSourcesAndIDs(t *testing.T) {
	f := make([]byte, 60)
	f[12], f[13], f[14] = 0x08, 0x00, 0x45
	copy(f[26:], []byte{192, 0, 2, 1})
	orig := append([]byte(nil), f...)
	const workers = 2
	for _, start := range []uint64{0, 1<<23 - 100, 1<<39 - 100} {
		for w := range uint64(workers) {
			v := &varier{next: start + w, step: workers}
			for i := range uint64(100) {
				b := v.vary(int(i%64), f)
				c := start + w + i*workers
				id := uint64(binary.BigEndian.Uint16(b[18:]))
				src := binary.BigEndian.Uint32(b[26:])
				if src>>23 != 10<<1|1 {
					t.Fatalf("frame %d: source %#x outside 10.128.0.0/9", c, src)
				}
				if got := id<<23 | uint64(src&(1<<23-1)); got != c%(1<<39) {
					t.Fatalf("frame %d: source %#x and ID %d stand for frame %d", c, src, id, got)
				}
				if s := ipv4Sum(b[14:34]); s != 0xffff {
					t.Fatalf("frame %d: header checksum does not verify (%#x)", c, s)
				}
			}
		}
	}
	if string(f) != string(orig) {
		t.Fatal("the original frame was changed")
	}
}

func TestVaryLeavesNonIPv4Alone(t *testing.T) {
	f := make([]byte, 60)
	f[12], f[13] = 0x86, 0xdd
	v := &varier{step: 1}
	if b := v.vary(0, f); string(b) != string(f) || v.next != 0 {
		t.Fatal("an IPv6 frame was rewritten")
	}
}
