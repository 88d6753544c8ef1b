package decap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

// The vector path of asyncWriter loops over writev(2): a call writes at
// most IOV_MAX pieces, and may write fewer bytes than asked, ending inside
// a piece. These tests make the kernel write short and check that every
// byte arrives once and in order.

// pieces returns n slices of pattern at varied offsets and lengths around
// size bytes, none a whole number of pages, and a copy of the list to
// compare against (writeVector advances the pieces it is given).
func pieces(pattern []byte, n, size int) (vec, want [][]byte) {
	for i := range n {
		off := i * 7919 % (len(pattern) - size - n)
		vec = append(vec, pattern[off:off+size+i%613])
	}
	return vec, append([][]byte(nil), vec...)
}

func testPattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// Linux writes at most MAX_RW_COUNT (2 GiB less a page) in one writev: a
// vector of more comes out in several calls, the first ending inside a
// piece. More than IOV_MAX pieces take several calls too.
func TestWriteVectorShortWrites(t *testing.T) {
	const maxRW = 1<<31 - 4096
	pattern := testPattern(4 << 20)
	// 1030 pieces of about 2.1 MB: the first 1024 (one writev) are more
	// than maxRW, the six left a second chunk.
	vec, want := pieces(pattern, iovMax+6, 2100000)
	total, first := 0, 0
	for i, p := range want {
		total += len(p)
		if i < iovMax {
			first += len(p)
		}
	}
	if first <= maxRW {
		t.Fatalf("the first writev asks for %d bytes, not more than %d", first, maxRW)
	}

	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w := fds[0], fds[1]
	defer unix.Close(r)
	unix.FcntlInt(uintptr(w), unix.F_SETPIPE_SZ, 1<<20) // fewer wake-ups; any size works

	// The reader compares what arrives with the pieces as it goes: the
	// stream is too long to keep.
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	go func() {
		buf := make([]byte, 1<<20)
		var res result
		i, off := 0, 0 // piece and offset expected next
		for {
			k, err := unix.Read(r, buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil || k == 0 {
				if res.err == nil {
					res.err = err
				}
				got <- res
				return
			}
			// After a difference, only drain: the writer must not block.
			for b := buf[:k]; len(b) > 0 && res.err == nil; {
				if i == len(want) {
					res.err = errors.New("more bytes than the pieces hold")
					break
				}
				m := min(len(b), len(want[i])-off)
				if !bytes.Equal(b[:m], want[i][off:off+m]) {
					res.err = fmt.Errorf("bytes out of order in piece %d at offset %d", i, off)
					break
				}
				b, res.n, off = b[m:], res.n+m, off+m
				if off == len(want[i]) {
					i, off = i+1, 0
				}
			}
		}
	}()

	a := &asyncWriter{fd: w}
	err := a.writeVector(vec)
	unix.Close(w)
	res := <-got
	if err != nil {
		t.Fatalf("writeVector: %v", err)
	}
	if res.err != nil || res.n != total {
		t.Fatalf("the reader got %d of %d bytes: %v", res.n, total, res.err)
	}
}

// A full disk ends the loop with the error, after a short write: what the
// file holds is the start of the vector, byte for byte.
func TestWriteVectorError(t *testing.T) {
	dir := testenv.MountTmpfs(t, "64k")
	f, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pattern := testPattern(1 << 20)
	vec, want := pieces(pattern, 40, 3001) // about 120 KB, for 64 KiB of room
	a := &asyncWriter{fd: int(f.Fd())}
	err = a.writeVector(vec)
	var pe *os.PathError
	if !errors.As(err, &pe) || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("writeVector on a full disk: %v, want a PathError for ENOSPC", err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	stream := bytes.Join(want, nil)
	if len(b) == 0 || len(b) >= len(stream) || !bytes.Equal(b, stream[:len(b)]) {
		t.Fatalf("the file holds %d bytes, not the first of the %d asked for", len(b), len(stream))
	}
}
