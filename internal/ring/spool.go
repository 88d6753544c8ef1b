package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// IndexSuffix ends the name of a file's flow index: "<name>.flows.parquet".
const IndexSuffix = ".flows.parquet"

// IndexName is the name of the flow index of the capture file name.
func IndexName(name string) string { return name + IndexSuffix }

// Indexer builds the flow index of one capture file (internal/flowindex's
// Builder). The ring calls it with its lock held, from the packet path:
// Add must not block.
type Indexer interface {
	// Add counts p, whose record (a whole pcapng block, or a classic pcap
	// record with its header) lies at byte offset off of the file and is
	// length bytes long. p is valid during the call only.
	Add(p *mirror.Packet, off int64, length int)
	// WriteTo writes the index of the packets added since the last Reset.
	WriteTo(w io.Writer) (int64, error)
	// Reset forgets the packets added, for the next file.
	Reset()
	// Full reports that the next packet may not find room in the index
	// as its own flow: the ring then closes the file, so that every
	// packet of a file is found through its index's flows.
	Full() bool
}

// spoolState is a spool's fullness (Options.Spool).
type spoolState struct {
	full    bool
	err     error  // Healthy's while full
	dropped uint64 // in this episode
}

// recordAdded notes the record that Append put into f.buf from start on:
// its offset and length go to the flow index, and the first one's offset
// is the file's HeaderLen. In pcapng, Append may describe an interface
// before the packet block; the block ends with its own length.
func (r *Ring) recordAdded(f *file, p *mirror.Packet, start int) {
	end := len(f.buf)
	n := end - start
	if r.o.Format != pcapfile.FormatPcap {
		n = int(binary.LittleEndian.Uint32(f.buf[end-4:]))
	}
	off := f.written + int64(end-n)
	if f.info.Packets == 0 && f.pending == 0 {
		f.info.HeaderLen = off
	}
	if f.idx != nil {
		f.idx.Add(p, off, n)
	}
}

// outOfSpan reports whether p lies MaxSpan or more away from the first
// packet of f.
func (r *Ring) outOfSpan(f *file, p *mirror.Packet) bool {
	if r.o.MaxSpan <= 0 || f.info.Packets+f.pending == 0 {
		return false
	}
	d := p.Timestamp.Sub(f.info.First)
	return d >= r.o.MaxSpan || -d >= r.o.MaxSpan
}

func (r *Ring) newIndexer() Indexer {
	if r.o.Index == nil {
		return nil
	}
	if n := len(r.spareIdx); n > 0 {
		x := r.spareIdx[n-1]
		r.spareIdx = r.spareIdx[:n-1]
		return x
	}
	return r.o.Index()
}

// closedSize is what a closed file takes on disk with its sidecar and
// index.
func (f *file) closedSize() int64 { return f.info.Size + f.sidecar + f.info.IndexSize }

// writeIndex writes f's flow index beside it, through a temporary name so
// that an index on disk is always whole, and returns its size; 0 when it
// has none. A file whose index cannot be written stays without one: the
// index speeds reading up, the packets are what must not be lost.
func (r *Ring) writeIndex(f *file) int64 {
	if f.idx == nil {
		return 0
	}
	if f.idxBad {
		r.log.Debug("capture file kept without its flow index: a failed write lost some of its packets", "file", f.info.Name)
		return 0
	}
	name := IndexName(f.info.Name)
	tmp := filepath.Join(r.dir, "."+name+".tmp")
	n, err := writeTo(tmp, f.idx)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(r.dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		if !isDiskFull(err) {
			r.log.Warn("cannot write flow index; the capture file is kept without it", "file", f.info.Name, "err", err)
		}
		return 0
	}
	return n
}

func writeTo(path string, w io.WriterTo) (int64, error) {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := w.WriteTo(fh)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// removeIndex deletes the flow index of the file name, if it has one.
func (r *Ring) removeIndex(name string) error {
	err := os.Remove(filepath.Join(r.dir, IndexName(name)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", IndexName(name), err)
	}
	return nil
}

// indexSize is the size of the flow index of the file name, 0 without one.
func (r *Ring) indexSize(name string) int64 {
	st, err := os.Stat(filepath.Join(r.dir, IndexName(name)))
	if err != nil || !st.Mode().IsRegular() {
		return 0
	}
	return st.Size()
}

// checkSpool notes whether the spool is full: when its files exceed
// MaxBytes, packets are dropped until Uploaded makes room. Each episode is
// logged once as it starts and once as it ends.
func (r *Ring) checkSpool() {
	if !r.o.Spool || r.o.MaxBytes == 0 {
		return
	}
	use := r.usage()
	switch full := use > r.o.MaxBytes; {
	case full && !r.spool.full:
		r.spool = spoolState{full: true, err: fmt.Errorf("capture directory %s: %w: %d bytes wait for upload, limit %d",
			r.dir, ErrSpoolFull, use, r.o.MaxBytes)}
		r.log.Warn("spool full: capture files are not uploaded fast enough; dropping packets until uploads make room",
			"dir", r.dir, "bytes", use, "max_bytes", r.o.MaxBytes, "files", len(r.closed))
	case !full && r.spool.full:
		r.log.Info("spool has room again, resumed writing", "dir", r.dir, "dropped", r.spool.dropped)
		r.spool = spoolState{}
	}
}

// spoolDrop drops a packet for want of room in the spool. The open files
// are closed first, so that they can be uploaded and room made.
func (r *Ring) spoolDrop(now time.Time) {
	r.closeForSpool(now)
	r.c.dropped++
	r.c.droppedSpool++
	r.spool.dropped++
}

func (r *Ring) closeForSpool(now time.Time) {
	if len(r.open) == 0 {
		return
	}
	if err := r.closeAll(); err != nil {
		r.writeFailed(err, now, 0)
	}
}

// signal tells Ready's receiver that files were closed.
func (r *Ring) signal() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

// Ready receives after files were closed (and, at first, when files of an
// earlier run are in the store): Spooled then lists them. Receives may
// coalesce: one can stand for several files.
func (r *Ring) Ready() <-chan struct{} { return r.ready }

// Spooled lists the closed files, oldest first: with Options.Spool, the
// files waiting for upload.
func (r *Ring) Spooled() []Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	infos := make([]Info, len(r.closed))
	for i, f := range r.closed {
		infos[i] = r.snapshot(f)
	}
	return infos
}

// Uploaded removes a closed file stored elsewhere, with its sidecar and
// flow index, and counts it in Stats.Uploaded; the room it made ends a
// full spool. The file being written is ErrBusy; an unknown one, an
// error wrapping fs.ErrNotExist.
func (r *Ring) Uploaded(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.lookup("uploaded", name)
	if err != nil {
		return err
	}
	if f.f != nil {
		return fmt.Errorf("uploaded %s: %w", name, ErrBusy)
	}
	if err := r.remove(f); err != nil {
		return err
	}
	r.c.uploaded++
	r.checkSpool()
	return nil
}

// OpenIndex opens the flow index of the closed file name for reading; an
// error wrapping fs.ErrNotExist when the file has none.
func (r *Ring) OpenIndex(name string) (io.ReadCloser, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if f.f != nil || f.info.IndexSize == 0 {
		return nil, &fs.PathError{Op: "open", Path: IndexName(name), Err: fs.ErrNotExist}
	}
	fh, err := os.Open(filepath.Join(r.dir, IndexName(f.info.Name)))
	if err != nil {
		return nil, err // not a nil *os.File in the interface
	}
	return fh, nil
}

// Packet block types of pcapng: enhanced, simple and the obsolete packet
// block.
const (
	blockSHB = 0x0a0d0d0a
	blockEPB = 6
	blockSPB = 3
	blockPB  = 2
)

// headerLen finds where the first packet record of a capture file starts:
// 24 in classic pcap, after the section header and the blocks before the
// first packet block in pcapng (the whole file when it has none).
func headerLen(path string) (int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	var h [12]byte
	if _, err := io.ReadFull(fh, h[:]); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if binary.LittleEndian.Uint32(h[:]) != blockSHB {
		return 24, nil // classic pcap: the file header
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if binary.BigEndian.Uint32(h[8:]) == 0x1a2b3c4d {
		bo = binary.BigEndian
	}
	var off int64
	for {
		if _, err := fh.ReadAt(h[:8], off); err != nil {
			if err == io.EOF {
				return off, nil
			}
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		switch bo.Uint32(h[:]) {
		case blockEPB, blockSPB, blockPB:
			return off, nil
		}
		n := bo.Uint32(h[4:])
		if n < 12 || n%4 != 0 {
			return 0, fmt.Errorf("read %s: bad block length %d at %d", path, n, off)
		}
		off += int64(n)
	}
}
