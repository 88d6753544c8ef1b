package ring

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// faultKind is why the store cannot write; a new kind is logged, a lasting
// one is not.
type faultKind uint8

const (
	faultFull  faultKind = iota + 1 // ENOSPC, EDQUOT
	faultDir                        // the directory is gone and cannot be created
	faultWrite                      // any other failure: read-only file system, I/O error, permissions
)

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Healthy returns nil while the store can write, otherwise why it cannot:
// an error wrapping ErrDiskFull, ErrDirMissing or ErrWrite, and the cause.
// It tells the outcome of the last attempt: while the store cannot write,
// it is tried again at most every second when packets come, and the
// directory is checked every Options.FlushEvery. After Close it returns
// ErrClosed. It does no I/O, so a health check may call it often.
func (r *Ring) Healthy() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.health()
}

func (r *Ring) health() error {
	if r.done {
		return ErrClosed
	}
	if r.fault == nil && r.spool.full {
		return r.spool.err
	}
	return r.fault
}

// writeFailed handles a failure of the write path that lost the packets in lost
// (not yet counted) and more: the store drops packets until it can write
// again, and a new kind of failure is logged once. A failure that came from
// a removed directory, now created again, ends there.
func (r *Ring) writeFailed(err error, now time.Time, lost uint64) {
	if err == nil {
		return
	}
	r.c.writeErrs++
	kind := faultWrite
	switch {
	case errors.Is(err, ErrDirMissing):
		kind = faultDir
	case isDiskFull(err):
		kind = faultFull
	default:
		changed, derr := r.checkDir()
		if derr != nil {
			kind, err = faultDir, derr
		} else if changed {
			r.drop(lost, false)
			return
		}
	}
	r.enterFault(kind, err, now)
	r.drop(lost, kind == faultFull)
}

// enterFault switches the store to dropping packets, closing every file so
// that each stays valid.
func (r *Ring) enterFault(kind faultKind, err error, now time.Time) {
	r.lastTry = now
	if r.fault != nil && r.faultKind == kind {
		return
	}
	r.faultKind, r.faultDropped = kind, 0
	switch kind {
	case faultFull:
		r.fault = fmt.Errorf("capture directory %s: %w: %w", r.dir, ErrDiskFull, err)
		r.log.Warn("capture disk full, dropping packets until space is available", "dir", r.dir, "err", err)
	case faultDir:
		r.fault = err
		if !errors.Is(err, ErrDirMissing) {
			r.fault = fmt.Errorf("%w: %s: %w", ErrDirMissing, r.dir, err)
		}
		r.log.Warn("capture directory missing and cannot be created, dropping packets until it can", "dir", r.dir, "err", err)
	default:
		r.fault = fmt.Errorf("capture directory %s: %w: %w", r.dir, ErrWrite, err)
		r.log.Warn("capture files cannot be written, dropping packets until they can", "dir", r.dir, "err", err)
	}
	if cerr := r.closeAll(); cerr != nil {
		r.log.Debug("closing capture files after a failure", "err", cerr)
	}
}

// recovered ends a failure episode.
func (r *Ring) recovered() {
	if r.faultKind == faultFull {
		r.log.Info("capture disk has space again, resumed writing", "dir", r.dir, "dropped", r.faultDropped)
	} else {
		r.log.Info("capture files can be written again, resumed writing", "dir", r.dir, "dropped", r.faultDropped)
	}
	r.fault, r.faultKind = nil, 0
}

// drop counts n packets lost by the store.
func (r *Ring) drop(n uint64, diskFull bool) {
	r.c.dropped += n
	if diskFull {
		r.c.droppedFull += n
	}
	if r.fault != nil {
		r.faultDropped += n
	}
}

// fileID tells a directory from another one at the same path.
type fileID struct{ dev, ino uint64 }

// statID identifies the directory at path.
func statID(path string) (fileID, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	if !st.IsDir() {
		return fileID{}, fmt.Errorf("%s: not a directory", path)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, fmt.Errorf("%s: no file identity", path)
	}
	return fileID{uint64(sys.Dev), sys.Ino}, nil
}

// checkDir makes sure the store writes into the directory at its path. When
// that was removed or replaced, packets written since went into files
// nobody can see: the open files are given up (their packets counted as
// lost), the closed ones forgotten, the directory created again if needed
// and listed afresh. It reports whether that happened; the error, wrapping
// ErrDirMissing, says that the directory cannot be created.
func (r *Ring) checkDir() (bool, error) {
	id, err := statID(r.dir)
	if err == nil && id == r.dirID {
		return false, nil
	}
	if r.dirID != (fileID{}) {
		var lost uint64
		files := len(r.closed) + len(r.open)
		for _, f := range r.openFiles() {
			lost += f.info.Packets
			r.discard(f)
		}
		r.closed, r.closedBytes, r.dirID = nil, 0, fileID{}
		r.checkSpool()
		r.log.Warn("capture directory removed or replaced; its files are forgotten", "dir", r.dir,
			"files", files, "lost", lost)
	}
	if err != nil {
		if merr := os.MkdirAll(r.dir, 0o755); merr != nil {
			return true, fmt.Errorf("%w: %s: %w", ErrDirMissing, r.dir, merr)
		}
		if id, err = statID(r.dir); err != nil {
			return true, fmt.Errorf("%w: %s: %w", ErrDirMissing, r.dir, err)
		}
		r.log.Warn("capture directory created again", "dir", r.dir)
	}
	r.dirID = id
	r.c.dirRecreated++
	if err := r.scan(); err != nil {
		r.log.Warn("cannot list the capture directory", "dir", r.dir, "err", err)
	}
	if r.fault != nil && r.faultKind == faultDir {
		r.recovered()
	}
	return true, nil
}

// removed reports whether the open file fh was unlinked.
func removed(fh *os.File) bool {
	st, err := fh.Stat()
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Nlink == 0
}

// discard gives up an open file whose directory entry is gone: its data on
// disk is counted as lost, its buffered packets as dropped.
func (r *Ring) discard(f *file) {
	r.forget(f)
	f.f.Close()
	r.drop(f.pending, false)
	r.c.lost += f.info.Packets
	r.release(f)
}

// lostFile gives up an open file that someone removed while it was written.
func (r *Ring) lostFile(f *file) {
	n := f.info.Packets + f.pending
	r.discard(f)
	r.log.Warn("capture file removed while it was written; its packets are lost, the next ones go to a new file",
		"file", f.info.Name+partSuffix, "lost", n)
}
