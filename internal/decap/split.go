package decap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// splitSink writes one file per VN pair into a directory, each under a
// temporary name until the run is over (see output).
type splitSink struct {
	dir    string
	split  vnpair.Split
	opts   pcapfile.Options
	ext    string
	in     os.FileInfo // the input: no file may be written over it (nil: standard input)
	inName string
	avoid  string // another output (the rejects file) no file may be written over; "" if none
	files  map[string]*splitFile
	labels map[string]bool
	key    []byte
}

type splitFile struct {
	out *output
	w   *pcapfile.Writer
}

// maxSplitFiles bounds the open files; VN pairs are few in practice, a
// capture with more is not what --split-by was meant for.
const maxSplitFiles = 1000

func newSplitSink(dir string, split vnpair.Split, opts pcapfile.Options) (*splitSink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if split == vnpair.None {
		split = vnpair.Undirected
	}
	return &splitSink{dir: dir, split: split, opts: opts, ext: ext(opts.Format),
		files: map[string]*splitFile{}, labels: map[string]bool{}}, nil
}

func (s *splitSink) WritePacket(p *mirror.Packet) error {
	s.key = vnpair.AppendKey(s.key[:0], p.Meta.SrcVN, p.Meta.DstVN, s.split)
	sf := s.files[string(s.key)]
	if sf == nil {
		var err error
		if sf, err = s.open(p); err != nil {
			return err
		}
		s.files[string(s.key)] = sf
	}
	return sf.w.WritePacket(p)
}

func (s *splitSink) open(p *mirror.Packet) (*splitFile, error) {
	if len(s.files) >= maxSplitFiles {
		return nil, fmt.Errorf("more than %d VN pairs", maxSplitFiles)
	}
	base := vnpair.Label(p.Meta.SrcVN, p.Meta.DstVN, s.split, maxName-len(s.ext)) + s.ext
	if s.labels[base] {
		// Distinct pairs share a label only if 64 bits of SHA-256 collide:
		// refuse rather than mix them.
		return nil, fmt.Errorf("VN pairs %q -> %q and another one share the file name %s", p.Meta.SrcVN, p.Meta.DstVN, base)
	}
	name := filepath.Join(s.dir, base)
	if st, err := os.Lstat(name); err == nil && s.in != nil && os.SameFile(st, s.in) {
		return nil, &SameFileError{Output: "output " + name, Other: s.inName}
	}
	if s.avoid != "" && samePath(name, s.avoid) {
		return nil, &SameFileError{Output: "output " + name, Other: "rejects file " + s.avoid}
	}
	out, err := createOutput(name, false)
	if err != nil {
		return nil, err
	}
	w, err := pcapfile.NewWriter(out, s.opts)
	if err != nil {
		out.abort()
		return nil, err
	}
	s.labels[base] = true
	return &splitFile{out, w}, nil
}

// maxName is the longest file name Linux file systems accept.
const maxName = 255

// flush writes out what the files buffer.
func (s *splitSink) flush() error {
	var errs []error
	for _, sf := range s.files {
		errs = append(errs, sf.w.Flush())
	}
	return errors.Join(errs...)
}

// finish puts every file in place (keep) or removes them all.
func (s *splitSink) finish(keep bool) error {
	files := make([]*splitFile, 0, len(s.files))
	for _, sf := range s.files {
		files = append(files, sf)
	}
	slices.SortFunc(files, func(a, b *splitFile) int {
		if a.out.name < b.out.name {
			return -1
		}
		return 1
	})
	var errs []error
	for _, sf := range files {
		if keep {
			errs = append(errs, sf.out.commit())
		} else {
			sf.out.abort()
		}
	}
	return errors.Join(errs...)
}
