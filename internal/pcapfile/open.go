package pcapfile

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Open opens a capture file for reading. A regular file is mapped into
// memory, privately, so that packets are read where the page cache holds
// them instead of being copied by read(2) — on a large file that copy is a
// fifth of decap's time. Pages far behind the reader are let go of, so
// memory does not grow with the file; nothing may write to the packets'
// bytes (a page let go of is read back from the file). Anything else (a pipe, a FIFO) is
// read through a buffer. Close the returned closer when done with the
// packets.
//
// A mapped file that shrinks while it is read (truncated by another
// program) ends the packets with a FormatError whose cause is ErrShrunk,
// after the last packet wholly within its new size. Run the code that uses
// the packets under Reader.Guard: bytes of a packet already handed out
// when the file shrinks fault when touched, which Guard turns into the
// same error instead of a SIGBUS.
func Open(name string) (*Reader, io.Closer, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil && st.Mode().IsRegular() && st.Size() > 0 && st.Size() == int64(int(st.Size())) {
		data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
		if err == nil {
			unix.Madvise(data, unix.MADV_SEQUENTIAL)
			unix.Madvise(data, unix.MADV_WILLNEED)
			r, err := newReader(&byteBuffer{b: data, end: len(data), f: f})
			if err != nil {
				unix.Munmap(data)
				f.Close()
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			return r, unmapper{data, f}, nil
		}
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, f, nil
}

type unmapper struct {
	data []byte
	f    *os.File
}

func (u unmapper) Close() error { return errors.Join(unix.Munmap(u.data), u.f.Close()) }

// ReadFile reads every packet of a capture file, with copies of their
// bytes: for tools and tests that want a small file whole.
func ReadFile(name string) ([]mirror.Packet, error) {
	r, c, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var ps []mirror.Packet
	err = r.Guard(func() error {
		for {
			var p mirror.Packet
			if err := r.Next(&p); err != nil {
				return err
			}
			p.Data = append([]byte(nil), p.Data...)
			if p.Comments != nil {
				cs := make([][]byte, len(p.Comments))
				for i, c := range p.Comments {
					cs[i] = append([]byte(nil), c...)
				}
				p.Comments = cs
			}
			ps = append(ps, p)
		}
	})
	if err == io.EOF {
		return ps, nil
	}
	return ps, fmt.Errorf("%s: %w", name, err)
}
