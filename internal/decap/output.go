package decap

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// A SameFileError refuses a run, before anything is written, whose output
// would be written over its input (the same path, a hard link, a symbolic
// link to it) or over another of its outputs.
type SameFileError struct {
	Output string // the output, as "what path": "output out.pcapng"
	Other  string // the input or the other output, alike
}

func (e *SameFileError) Error() string {
	return fmt.Sprintf("%s and %s are the same file: refusing to write over it", e.Output, e.Other)
}

// output is a file written under a temporary name in its own directory and
// renamed over its final name by commit: an existing file is only ever
// replaced by a complete one, and a run that fails leaves it as it was.
type output struct {
	*os.File
	name    string // the final path
	tmp     string // the temporary path; "" when writing to name directly
	replace bool   // an existing file is replaced: its data reaches the disk before the rename
}

// createOutput starts writing the file name. When follow is set, a symbolic
// link is followed (the file it points to is replaced, as a user naming it
// expects) and an existing file that is not a regular one (/dev/null, a
// FIFO) is written directly, since it cannot be replaced by a rename. Names
// derived from packet data are not followed: whatever is at that name in
// the output directory is replaced.
func createOutput(name string, follow bool) (*output, error) {
	o := &output{name: name}
	st, err := os.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	case st.Mode()&fs.ModeSymlink != 0 && follow:
		if target, err := filepath.EvalSymlinks(name); err == nil {
			o.name = target
			st, err = os.Stat(target)
			if err != nil {
				return nil, err
			}
		} else {
			st = nil // dangling: replace the link
		}
	}
	if st != nil {
		switch {
		case st.IsDir():
			return nil, &fs.PathError{Op: "create", Path: name, Err: syscall.EISDIR}
		case !st.Mode().IsRegular() && st.Mode()&fs.ModeSymlink == 0 && follow:
			f, err := os.OpenFile(o.name, os.O_WRONLY, 0)
			if err != nil {
				return nil, err
			}
			o.File = f
			return o, nil
		}
		o.replace = st.Mode().IsRegular()
	}
	dir, base := filepath.Split(o.name)
	if len(base) > 100 {
		base = base[:100]
	}
	for tries := 0; ; tries++ {
		var r [6]byte
		rand.Read(r[:])
		o.tmp = filepath.Join(dir, "."+base+"."+hex.EncodeToString(r[:])+".tmp")
		// Created as os.Create would create the file itself, with the
		// permissions the umask allows.
		o.File, err = os.OpenFile(o.tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || tries == 10 {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	}
	if o.replace {
		// The new file takes the old one's permissions and, where allowed,
		// its owner.
		o.Chmod(st.Mode().Perm())
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			o.Chown(int(s.Uid), int(s.Gid))
		}
	}
	return o, nil
}

// commit closes the file and puts it in place.
func (o *output) commit() error {
	if o.tmp == "" {
		return o.Close()
	}
	var err error
	if o.replace {
		err = o.Sync()
	}
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.tmp, o.name)
	}
	if err != nil {
		os.Remove(o.tmp)
		return fmt.Errorf("write %s: %w", o.name, err)
	}
	return nil
}

// cutToLastRecord cuts the file after its last complete record (pcap or
// pcapng), for a file whose writing failed part way. It fails when not even
// the file header is complete.
func (o *output) cutToLastRecord() error {
	if _, err := o.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r, err := pcapfile.NewReader(o.File)
	if err != nil {
		return err
	}
	var p mirror.Packet
	for {
		err = r.Next(&p)
		if err == nil {
			continue
		}
		if err == io.EOF {
			return nil
		}
		var fe *pcapfile.FormatError
		if !errors.As(err, &fe) || fe.Offset <= 0 {
			return err
		}
		if err := o.Truncate(fe.Offset); err != nil {
			return err
		}
		return nil
	}
}

// abort closes and removes the file, leaving whatever was at its name.
func (o *output) abort() {
	o.Close()
	if o.tmp != "" {
		os.Remove(o.tmp)
	}
}

// sameFile reports whether the files at a and b, both existing, are one
// (device and inode: hard links and symbolic links included).
func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// samePath reports whether a and b name one file: the same existing file,
// or, for names not yet created, the same path once the directories'
// symbolic links are resolved.
func samePath(a, b string) bool {
	return sameFile(a, b) || resolve(a) == resolve(b)
}

func resolve(name string) string {
	abs, err := filepath.Abs(name)
	if err != nil {
		return name
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(d, filepath.Base(abs))
	}
	return abs
}
