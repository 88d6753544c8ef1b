package pcapfile

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Open opens a capture file for reading. A regular file is mapped into
// memory, privately and writable, so that packets are read where the page
// cache holds them instead of being copied by read(2) — on a large file
// that copy is a fifth of decap's time. Anything else (a pipe, a FIFO) is
// read through a buffer. Close the returned closer when done with the
// packets.
func Open(name string) (*Reader, io.Closer, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil && st.Mode().IsRegular() && st.Size() > 0 && st.Size() == int64(int(st.Size())) {
		data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
		if err == nil {
			f.Close()
			unix.Madvise(data, unix.MADV_SEQUENTIAL)
			unix.Madvise(data, unix.MADV_WILLNEED)
			r, err := NewReaderBytes(data)
			if err != nil {
				unix.Munmap(data)
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			return r, unmapper(data), nil
		}
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, f, nil
}

type unmapper []byte

func (u unmapper) Close() error { return unix.Munmap(u) }

// ReadFile reads every packet of a capture file, with copies of their
// bytes: for tools and tests that want a small file whole.
func ReadFile(name string) ([]mirror.Packet, error) {
	r, c, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var ps []mirror.Packet
	for {
		var p mirror.Packet
		switch err := r.Next(&p); {
		case err == io.EOF:
			return ps, nil
		case err != nil:
			return ps, fmt.Errorf("%s: %w", name, err)
		}
		p.Data = append([]byte(nil), p.Data...)
		ps = append(ps, p)
	}
}
