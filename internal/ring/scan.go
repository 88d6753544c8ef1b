package ring

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// parseName returns the sequence number of a file name of this ring,
// "<prefix>_<seq>_<YYYYmmddHHMMSS>[_<label>]<ext>", without ".part". The
// label is not parsed: names written by earlier versions, whose labels
// followed other rules, are listed alike.
func (r *Ring) parseName(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, r.o.Prefix+"_")
	for _, p := range r.o.Adopt {
		if ok {
			break
		}
		rest, ok = strings.CutPrefix(name, p+"_")
	}
	if !ok {
		return 0, false
	}
	if rest, ok = strings.CutSuffix(rest, r.ext); !ok {
		return 0, false
	}
	seqStr, rest, ok := strings.Cut(rest, "_")
	if !ok || len(seqStr) < 5 {
		return 0, false
	}
	seq, err := strconv.Atoi(seqStr)
	if err != nil || seq < 0 {
		return 0, false
	}
	stamp, label, hasLabel := strings.Cut(rest, "_")
	if _, err := time.Parse("20060102150405", stamp); err != nil || len(stamp) != 14 {
		return 0, false
	}
	if hasLabel && (label == "" || strings.ContainsAny(label, "/\\")) {
		return 0, false
	}
	return seq, true
}

// scan lists the files of an earlier run: closed files from their sidecars
// (or rebuilt when a sidecar is missing or stale), ".part" files recovered.
func (r *Ring) scan() error {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("ring: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") {
			continue
		}
		base, part := strings.CutSuffix(name, partSuffix)
		seq, ok := r.parseName(base)
		if !ok {
			continue
		}
		r.seq = max(r.seq, seq)
		var f *file
		if part {
			f, err = r.recover(base)
		} else {
			f, err = r.load(base)
		}
		if err != nil {
			r.log.Warn("skipping capture file", "file", name, "err", err)
			continue
		}
		if f != nil {
			f.seq = seq
			r.closed = append(r.closed, f)
			r.closedBytes += f.closedSize()
		}
	}
	slices.SortFunc(r.closed, func(a, b *file) int { return a.seq - b.seq })
	return nil
}

// load lists a closed file, from its sidecar when that matches the file.
func (r *Ring) load(name string) (*file, error) {
	path := filepath.Join(r.dir, name)
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	seq, _ := r.parseName(name)
	idxSize := r.indexSize(name)
	if b, err := readSidecar(path + sidecarSuffix); err == nil {
		var in Info
		if json.Unmarshal(b, &in) == nil && in.Name == name && in.Size == st.Size() {
			in.Open = false
			fresh := in.Seq == seq && in.IndexSize == idxSize && (in.HeaderLen > 0 || in.Packets == 0)
			in.Seq, in.IndexSize = seq, idxSize
			if in.HeaderLen == 0 && in.Packets > 0 {
				// From a version that did not record it.
				in.HeaderLen, _ = headerLen(path)
			}
			if fresh && len(in.Pairs) <= r.o.MaxPairs {
				return &file{info: in, sidecar: int64(len(b))}, nil
			}
			// From a version that listed every pair (the busiest are
			// kept) or did not record the sequence and header length,
			// or an index that came or went since: written again.
			var other uint64
			in.Pairs, other = vnpair.Top(in.Pairs, r.o.MaxPairs)
			in.PairsOther += other
			n, err := r.writeSidecar(&in)
			if err != nil {
				r.log.Debug("cannot write capture file info", "file", name, "err", err)
			}
			return &file{info: in, sidecar: n}, nil
		}
	}
	// Missing, stale or too large: rebuilt from the file.
	in := r.rebuild(path, name, st)
	in.Seq, in.IndexSize = seq, idxSize
	n, err := r.writeSidecar(&in)
	if err != nil {
		r.log.Debug("cannot write capture file info", "file", name, "err", err)
	}
	return &file{info: in, sidecar: n}, nil
}

// recover turns a ".part" file left by a crash into a closed file: it is
// cut back to its last complete block and renamed. A file without any
// complete packet is removed.
func (r *Ring) recover(name string) (*file, error) {
	part := filepath.Join(r.dir, name+partSuffix)
	final := filepath.Join(r.dir, name)
	if _, err := os.Stat(final); err == nil {
		return nil, fmt.Errorf("recover %s: %s exists too", part, name)
	}
	s, err := scanFile(part)
	if s.cut || err != nil {
		// An index is written once its file is complete: this one is
		// not.
		if err := r.removeIndex(name); err != nil {
			return nil, fmt.Errorf("recover %s: %w", part, err)
		}
	}
	if s.cut {
		// The crash cut the last record: the file ends at the one before.
		if err := os.Truncate(part, s.end); err != nil {
			return nil, fmt.Errorf("recover %s: %w", part, err)
		}
		err = nil
	}
	if (err == nil && s.packets == 0) || (!s.known && headerCut(err)) {
		r.log.Info("removing empty capture file left by a crash", "file", name+partSuffix)
		return nil, os.Remove(part)
	}
	if err != nil {
		// Unreadable: keep it as it is, for someone to look at.
		r.log.Warn("cannot read capture file left by a crash", "file", name+partSuffix, "err", err)
	}
	if err := os.Rename(part, final); err != nil {
		return nil, fmt.Errorf("recover %s: %w", part, err)
	}
	r.log.Info("recovered capture file left by a crash", "file", name, "packets", s.packets)
	return r.load(name)
}

// rebuild derives a file's Info from its content, or from its size and
// modification time when it cannot be read.
func (r *Ring) rebuild(path, name string, st fs.FileInfo) Info {
	in := Info{Name: name, Size: st.Size(), Pairs: []vnpair.Pair{}}
	s, err := scanFile(path)
	if !s.known {
		r.log.Debug("capture file listed from its size and time", "file", name, "err", err)
		in.Last = st.ModTime()
		return in
	}
	in.Packets, in.First, in.Last = s.packets, s.first, s.last
	in.HeaderLen, _ = headerLen(path)
	return in
}

// writeSidecar stores a closed file's Info next to it and returns its
// size; a temporary name and a rename keep a crash from leaving half a
// sidecar.
func (r *Ring) writeSidecar(in *Info) (int64, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return 0, err
	}
	b = append(b, '\n')
	tmp := filepath.Join(r.dir, "."+in.Name+sidecarSuffix+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("write info of %s: %w", in.Name, err)
	}
	if err := os.Rename(tmp, filepath.Join(r.dir, in.Name+sidecarSuffix)); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("write info of %s: %w", in.Name, err)
	}
	return int64(len(b)), nil
}

// maxSidecar bounds the sidecar read back: one written by a version that
// listed every VN pair can be huge, and is rebuilt instead.
const maxSidecar = 1 << 20

// readSidecar reads a sidecar of at most maxSidecar bytes.
func readSidecar(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSidecar+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSidecar {
		return nil, fmt.Errorf("%s: over %d bytes", path, maxSidecar)
	}
	return b, nil
}

// fileScan is what reading a capture file through tells.
type fileScan struct {
	known       bool // the file header could be read
	packets     uint64
	first, last time.Time
	end         int64 // offset after the last complete record
	cut         bool  // the file goes on after end with an incomplete record
}

// scanFile reads a capture file through, for its packet count and times
// and for where its last complete record ends.
func scanFile(path string) (fileScan, error) {
	var s fileScan
	fh, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer fh.Close()
	rd, err := pcapfile.NewReader(fh)
	if err != nil {
		return s, fmt.Errorf("read %s: %w", path, err)
	}
	s.known = true
	s.end = rd.Offset()
	var p mirror.Packet
	for {
		err := rd.Next(&p)
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			var fe *pcapfile.FormatError
			if errors.As(err, &fe) {
				s.cut = true
			}
			return s, fmt.Errorf("read %s: %w", path, err)
		}
		if s.packets == 0 {
			s.first = p.Timestamp
		}
		s.last = p.Timestamp
		s.packets++
		s.end = rd.Offset()
	}
}

// headerCut reports whether err says a file ends inside its header, as
// one does that a crash cut before its first packet.
func headerCut(err error) bool {
	var fe *pcapfile.FormatError
	return errors.As(err, &fe) && !errors.Is(err, pcapfile.ErrUnknownFormat)
}
