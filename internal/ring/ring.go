package ring

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

const (
	partSuffix    = ".part"
	sidecarSuffix = ".json"
	// flushAt is how much encoded data a file buffers before it is written
	// out: large writes are cheap, and a buffer only ever ends on a block
	// boundary, so a failed write can be cut back to a valid file.
	flushAt = 64 << 10
	// retryEvery bounds how often a full disk is probed for space.
	retryEvery = time.Second
	// maxName is the longest file name Linux file systems accept.
	maxName = 255
	// maxSeqDigits is the room kept for the sequence number in a name: an
	// int64 in decimal.
	maxSeqDigits = 19
)

// ErrBusy is returned by Delete for the file being written.
var ErrBusy = errors.New("file is being written")

// ErrClosed is returned by WritePacket after Close.
var ErrClosed = errors.New("ring is closed")

// Options configures a Ring. The zero value writes one pcapng file that
// never rotates.
type Options struct {
	Format pcapfile.Format // pcapng by default
	Prefix string          // file name prefix, "vrsniff" by default
	// MaxSize rotates a file once it holds this many bytes (0: no limit).
	MaxSize int64
	// MaxDuration rotates a file after this long (0: no limit); with
	// AlignClock the files are cut at multiples of MaxDuration on the UTC
	// clock (every 5 minutes at :00, :05, …) rather than counted from the
	// file's first packet.
	MaxDuration time.Duration
	AlignClock  bool
	// MaxFiles keeps at most this many closed files, deleting the oldest
	// (0: no limit).
	MaxFiles int
	// MaxBytes keeps the store, open files included, under this many bytes
	// by deleting the oldest closed files (0: no limit).
	MaxBytes int64
	// Split writes one file set per VN pair: vnpair.Undirected keeps both
	// directions of a conversation together, vnpair.Directed one set per
	// (source, destination). The names carry the pair's vnpair.Label.
	Split vnpair.Split
	// FlushEvery is the longest buffered data waits before it is written to
	// the file (1 s by default), which bounds what a crash loses.
	FlushEvery time.Duration
	Logger     *slog.Logger
	Now        func() time.Time // the clock, time.Now by default
}

// Stats is a snapshot of a Ring's counters.
type Stats struct {
	Files     int    `json:"files"`      // files in the store, open ones included
	OpenFiles int    `json:"open_files"` // files being written
	Bytes     int64  `json:"bytes"`      // size of all files
	Packets   uint64 `json:"packets"`    // packets written
	// Dropped counts packets lost because the disk was full.
	Dropped  uint64 `json:"dropped_disk_full"`
	DiskFull bool   `json:"disk_full"`
}

var (
	_ Store         = (*Ring)(nil)
	_ pipeline.Sink = (*Ring)(nil)
)

// encoder is the part of a pcapfile.Writer the ring uses.
type encoder interface {
	WritePacket(p *mirror.Packet) error
	Flush() error
}

// Ring writes packets into a directory of rotating capture files. A file is
// named like dumpcap's ring buffer files,
//
//	<prefix>_<seq>_<YYYYmmddHHMMSS>[_<label>].pcapng
//
// (label: the VN pair's vnpair.Label when split, short enough that every
// name stays within 255 bytes) and carries the suffix ".part" while it is written. When a file is closed a
// sidecar "<name>.json" keeps its Info, so that listing the store stays fast
// and survives restarts.
//
// All methods are safe for concurrent use.
type Ring struct {
	dir    string
	o      Options
	ext    string
	label  int // the longest pair label that keeps every name within maxName
	log    *slog.Logger
	now    func() time.Time
	newEnc func(w io.Writer) (encoder, error)

	mu          sync.Mutex
	seq         int
	closed      []*file // oldest first
	closedBytes int64
	open        map[string]*file // by VN pair key (vnpair.AppendKey; "" without Split)
	key         []byte           // scratch for pair keys
	spare       []byte           // a buffer of a closed file, for the next one
	packets     uint64
	dropped     uint64
	full        bool
	fullDropped uint64
	lastTry     time.Time
	done        bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// file is a capture file of the store; the fields after info are used only
// while it is written.
type file struct {
	seq  int
	info Info // Name is the final name, without ".part"

	f        *os.File
	enc      encoder
	buf      []byte // encoded blocks not yet written to f
	written  int64  // bytes in f, always on a block boundary
	pending  uint64 // packets in buf
	pendLast time.Time
	deadline time.Time
	pairs    map[string]*pairCount
	order    []*pairCount
	last     *pairCount // of the previous packet: traffic comes in runs of one pair
}

type pairCount struct {
	src, dst   string
	n, pending uint64
}

// Write collects what the encoder hands over; the ring decides when it goes
// to disk.
func (f *file) Write(b []byte) (int, error) {
	f.buf = append(f.buf, b...)
	return len(b), nil
}

func (f *file) size() int64 { return f.written + int64(len(f.buf)) }

func (f *file) partPath(dir string) string { return filepath.Join(dir, f.info.Name+partSuffix) }

// New opens the capture directory dir, creating it if needed. Files left by
// an earlier run are listed; ".part" files left by a crash are recovered:
// cut back to their last complete block and renamed. Sequence numbers
// continue after the highest one found.
func New(dir string, o Options) (*Ring, error) {
	if o.Prefix == "" {
		o.Prefix = "vrsniff"
	}
	if strings.ContainsAny(o.Prefix, "/\\") || strings.HasPrefix(o.Prefix, ".") {
		return nil, fmt.Errorf("ring: invalid file prefix %q", o.Prefix)
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Second
	}
	if o.MaxSize < 0 || o.MaxDuration < 0 || o.MaxFiles < 0 || o.MaxBytes < 0 {
		return nil, errors.New("ring: negative limit")
	}
	ext, err := extension(o.Format)
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	label := labelRoom(o.Prefix, ext)
	if label < 0 || (o.Split != vnpair.None && label < vnpair.MinLabel) {
		return nil, fmt.Errorf("ring: file prefix %q too long", o.Prefix)
	}
	r := &Ring{
		dir: dir, o: o, ext: ext, label: label, log: o.Logger, now: o.Now,
		open: make(map[string]*file),
		stop: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.newEnc = func(w io.Writer) (encoder, error) { return newEncoder(w, o.Format) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	if err := r.scan(); err != nil {
		return nil, err
	}
	r.retain()
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

// WritePacket writes p to the current file of its VN pair, opening or
// rotating files as needed. While the disk is full packets are counted and
// dropped, and nil is returned: a full disk must not stop the capture.
func (r *Ring) WritePacket(p *mirror.Packet) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return ErrClosed
	}
	r.key = r.key[:0]
	if r.o.Split != vnpair.None {
		r.key = vnpair.AppendKey(r.key, p.Meta.SrcVN, p.Meta.DstVN, r.o.Split)
	}
	f := r.open[string(r.key)]
	// Reading the clock costs a tenth of writing a small packet: only
	// read it when something depends on it.
	var now time.Time
	clock := func() time.Time {
		if now.IsZero() {
			now = r.now()
		}
		return now
	}
	if r.full || f == nil || !f.deadline.IsZero() {
		clock()
	}
	if r.full {
		// A clock that went back also allows a retry.
		if now.Sub(r.lastTry) < retryEvery && !now.Before(r.lastTry) {
			r.drop(1)
			return nil
		}
		r.lastTry = now
	}
	if f != nil && !f.deadline.IsZero() && !now.Before(f.deadline) {
		if err := r.closeFile(f); err != nil {
			return r.failed(err, now, 1)
		}
		f = nil
	}
	if f == nil {
		var err error
		if f, err = r.openFile(p, now); err != nil {
			return r.failed(err, now, 1)
		}
	}
	if err := f.enc.WritePacket(p); err != nil {
		return fmt.Errorf("write %s: %w", f.info.Name, err)
	}
	if err := f.enc.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", f.info.Name, err)
	}
	r.packets++
	f.pending++
	if f.info.Packets == 0 && f.pending == 1 {
		f.info.First = p.Timestamp
	}
	f.pendLast = p.Timestamp
	// Comparing with the previous packet's pair is cheaper than hashing.
	pc := f.last
	if pc == nil || pc.src != string(p.Meta.SrcVN) || pc.dst != string(p.Meta.DstVN) {
		r.key = vnpair.AppendKey(r.key[:0], p.Meta.SrcVN, p.Meta.DstVN, vnpair.Directed)
		pc = f.pairs[string(r.key)]
		if pc == nil {
			pc = &pairCount{src: string(p.Meta.SrcVN), dst: string(p.Meta.DstVN)}
			f.pairs[string(r.key)] = pc
			f.order = append(f.order, pc)
		}
		f.last = pc
	}
	pc.pending++

	// After a full disk the first packet goes to disk at once: that is what
	// proves the space is back.
	if len(f.buf) >= flushAt || r.full {
		if err := r.flushFile(f); err != nil {
			// flushFile counted the packet as dropped.
			return r.failed(r.closeBroken(f, err), clock(), 0)
		}
	}
	if r.full {
		r.full = false
		r.log.Info("capture disk has space again, resumed writing",
			"dir", r.dir, "dropped", r.fullDropped)
	}
	if r.o.MaxSize > 0 && f.size() >= r.o.MaxSize {
		if err := r.closeFile(f); err != nil {
			return r.failed(err, clock(), 0)
		}
	}
	return nil
}

// closeBroken closes f after a failed write, which left it cut back to its
// last complete block; err is returned.
func (r *Ring) closeBroken(f *file, err error) error {
	if r.open[r.keyOf(f)] == f {
		if cerr := r.closeFile(f); cerr != nil && !isDiskFull(err) {
			r.log.Warn("cannot close capture file", "file", f.info.Name, "err", cerr)
		}
	}
	return err
}

// failed handles an error of the write path: a full disk switches the ring
// to dropping packets, lost more of them, and is not an error for the
// caller; anything else is returned.
func (r *Ring) failed(err error, now time.Time, lost uint64) error {
	if !isDiskFull(err) {
		return err
	}
	r.enterFull(now, err)
	r.drop(lost)
	return nil
}

func (r *Ring) enterFull(now time.Time, err error) {
	if !r.full {
		r.full = true
		r.fullDropped = 0
		r.log.Warn("capture disk full, dropping packets until space is available",
			"dir", r.dir, "err", err)
	}
	r.lastTry = now
	r.closeAll()
}

func (r *Ring) drop(n uint64) {
	r.dropped += n
	r.fullDropped += n
}

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// fileName is the name of file seq, opened at stamp (YYYYmmddHHMMSS, UTC),
// for the VN pair labelled label ("" when not split).
func (r *Ring) fileName(seq int, stamp, label string) string {
	if label != "" {
		label = "_" + label
	}
	return fmt.Sprintf("%s_%05d_%s%s%s", r.o.Prefix, seq, stamp, label, r.ext)
}

// labelRoom is the longest pair label that keeps every name the ring writes
// within maxName bytes. The longest is a sidecar's temporary name,
// "." + <prefix>_<seq>_<stamp>_<label><ext> + ".json.tmp".
func labelRoom(prefix, ext string) int {
	return maxName - len(".") - len(prefix) - len("_") - maxSeqDigits - len("_") - len("20060102150405") -
		len("_") - len(ext) - len(sidecarSuffix+".tmp")
}

func (r *Ring) openFile(p *mirror.Packet, now time.Time) (*file, error) {
	label := ""
	if r.o.Split != vnpair.None {
		label = vnpair.Label(p.Meta.SrcVN, p.Meta.DstVN, r.o.Split, r.label)
	}
	stamp := now.UTC().Format("20060102150405")
	var fh *os.File
	var name string
	seq := r.seq
	for tries := 0; ; tries++ {
		seq++
		name = r.fileName(seq, stamp, label)
		var err error
		fh, err = os.OpenFile(filepath.Join(r.dir, name+partSuffix), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			break
		}
		// A name taken by someone else is skipped; a few tries are enough.
		if !errors.Is(err, fs.ErrExist) || tries == 10 {
			return nil, fmt.Errorf("create capture file: %w", err)
		}
		if _, err := os.Stat(filepath.Join(r.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("create capture file: %w", err)
		}
	}
	r.seq = seq
	f := &file{
		seq:   seq,
		info:  Info{Name: name, Open: true},
		f:     fh,
		buf:   r.spare,
		pairs: make(map[string]*pairCount),
	}
	r.spare = nil
	if f.buf == nil {
		f.buf = make([]byte, 0, flushAt+16<<10)
	}
	if d := r.o.MaxDuration; d > 0 {
		if r.o.AlignClock {
			f.deadline = now.Truncate(d).Add(d)
		} else {
			f.deadline = now.Add(d)
		}
	}
	enc, err := r.newEnc(f)
	if err != nil {
		fh.Close()
		os.Remove(f.partPath(r.dir))
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	f.enc = enc
	r.open[string(r.key)] = f
	return f, nil
}

// flushFile writes f's buffer to the file. A failed write is cut back to
// the last block boundary, so the file stays valid; the packets that were in
// the buffer count as dropped.
func (r *Ring) flushFile(f *file) error {
	if len(f.buf) == 0 {
		return nil
	}
	n := int64(len(f.buf))
	_, err := f.f.Write(f.buf)
	f.buf = f.buf[:0]
	if err != nil {
		if terr := f.f.Truncate(f.written); terr != nil {
			r.log.Error("cannot cut capture file back after failed write", "file", f.info.Name, "err", terr)
		}
		f.f.Seek(f.written, io.SeekStart)
		r.packets -= f.pending
		r.drop(f.pending)
		f.pending = 0
		for _, pc := range f.order {
			pc.pending = 0
		}
		if f.info.Packets == 0 {
			f.info.First = time.Time{}
		}
		return fmt.Errorf("write %s: %w", f.info.Name, err)
	}
	f.written += n
	f.info.Packets += f.pending
	if f.pending > 0 {
		f.info.Last = f.pendLast
	}
	f.pending = 0
	for _, pc := range f.order {
		pc.n += pc.pending
		pc.pending = 0
	}
	if r.o.MaxBytes > 0 {
		r.retain()
	}
	return nil
}

// closeFile flushes and closes f and renames it to its final name. A file
// that holds no packet is removed. Retention runs afterwards.
func (r *Ring) closeFile(f *file) error {
	err := r.flushFile(f)
	delete(r.open, r.keyOf(f))
	if cerr := f.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close %s: %w", f.info.Name, cerr)
	}
	part := f.partPath(r.dir)
	if f.info.Packets == 0 {
		os.Remove(part)
		return err
	}
	if rerr := os.Rename(part, filepath.Join(r.dir, f.info.Name)); rerr != nil {
		// The data is on disk as .part; the next start recovers it.
		r.log.Error("cannot rename closed capture file", "file", part, "err", rerr)
		if err == nil {
			err = rerr
		}
		return err
	}
	f.info.Open = false
	f.info.Size = f.written
	f.info.Pairs = f.pairList()
	r.spare = f.buf[:0]
	f.f, f.enc, f.buf, f.pairs, f.order, f.last = nil, nil, nil, nil, nil, nil
	if serr := r.writeSidecar(&f.info); serr != nil {
		// Without a sidecar the file is still listed: the next start
		// rebuilds its info from the file.
		if !isDiskFull(serr) {
			r.log.Warn("cannot write capture file info", "file", f.info.Name, "err", serr)
		}
	}
	r.closed = append(r.closed, f)
	r.closedBytes += f.info.Size
	r.retain()
	return err
}

func (r *Ring) keyOf(f *file) string {
	for k, g := range r.open {
		if g == f {
			return k
		}
	}
	return ""
}

func (f *file) pairList() []pipeline.Pair {
	ps := make([]pipeline.Pair, 0, len(f.order))
	for _, pc := range f.order {
		if n := pc.n + pc.pending; n > 0 {
			ps = append(ps, pipeline.Pair{SrcVN: pc.src, DstVN: pc.dst, Packets: n})
		}
	}
	slices.SortFunc(ps, func(a, b pipeline.Pair) int {
		if a.Packets != b.Packets {
			if a.Packets > b.Packets {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a.SrcVN, b.SrcVN); c != 0 {
			return c
		}
		return strings.Compare(a.DstVN, b.DstVN)
	})
	return ps
}

// closeAll closes every open file. Errors other than a full disk are
// returned; a full disk switches the ring to dropping packets.
func (r *Ring) closeAll() error {
	var errs []error
	for _, f := range r.openFiles() {
		if err := r.closeFile(f); err != nil {
			if !isDiskFull(err) {
				errs = append(errs, err)
			} else if !r.full {
				r.enterFull(r.now(), err)
			}
		}
	}
	return errors.Join(errs...)
}

// openFiles returns the open files in sequence order.
func (r *Ring) openFiles() []*file {
	fs := make([]*file, 0, len(r.open))
	for _, f := range r.open {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b *file) int { return a.seq - b.seq })
	return fs
}

// retain deletes the oldest closed files beyond MaxFiles and MaxBytes.
func (r *Ring) retain() {
	for len(r.closed) > 0 {
		over := r.o.MaxFiles > 0 && len(r.closed) > r.o.MaxFiles
		if !over && r.o.MaxBytes > 0 {
			over = r.usage() > r.o.MaxBytes
		}
		if !over {
			return
		}
		f := r.closed[0]
		if err := r.remove(f); err != nil {
			r.log.Error("cannot delete old capture file", "file", f.info.Name, "err", err)
			return
		}
	}
}

func (r *Ring) remove(f *file) error {
	if err := os.Remove(filepath.Join(r.dir, f.info.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", f.info.Name, err)
	}
	if err := os.Remove(filepath.Join(r.dir, f.info.Name+sidecarSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", f.info.Name+sidecarSuffix, err)
	}
	i := slices.Index(r.closed, f)
	r.closed = slices.Delete(r.closed, i, i+1)
	r.closedBytes -= f.info.Size
	return nil
}

func (r *Ring) usage() int64 {
	n := r.closedBytes
	for _, f := range r.open {
		n += f.size()
	}
	return n
}

func (r *Ring) loop() {
	defer r.wg.Done()
	t := time.NewTicker(r.o.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.tick()
		}
	}
}

// tick writes out buffered data and closes files whose time is up, so that
// a quiet capture still rotates and a crash loses at most FlushEvery.
func (r *Ring) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	now := r.now()
	for _, f := range r.openFiles() {
		var err error
		if !f.deadline.IsZero() && !now.Before(f.deadline) {
			err = r.closeFile(f)
		} else {
			err = r.flushFile(f)
		}
		if err != nil {
			err = r.closeBroken(f, err)
			if isDiskFull(err) {
				r.enterFull(now, err)
				return
			}
			r.log.Warn("capture file write failed", "err", err)
		}
	}
}

// Rotate closes the current files; the next packets open new ones.
func (r *Ring) Rotate() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return ErrClosed
	}
	return r.closeAll()
}

// Close writes out and closes all files; every file of the store is then
// complete. A full disk is not an error here: what it cost is in Stats.
func (r *Ring) Close() error {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return nil
	}
	r.done = true
	err := r.closeAll()
	r.mu.Unlock()
	close(r.stop)
	r.wg.Wait()
	return err
}

// Stats returns the ring's counters.
func (r *Ring) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{
		Files:     len(r.closed) + len(r.open),
		OpenFiles: len(r.open),
		Bytes:     r.usage(),
		Packets:   r.packets,
		Dropped:   r.dropped,
		DiskFull:  r.full,
	}
}

func (f *file) snapshot() Info {
	in := f.info
	if f.f != nil {
		in.Name += partSuffix
		in.Size = f.size()
		in.Packets += f.pending
		if f.pending > 0 {
			in.Last = f.pendLast
		}
		in.Pairs = f.pairList()
	} else {
		in.Pairs = slices.Clone(in.Pairs)
	}
	if in.Pairs == nil {
		in.Pairs = []pipeline.Pair{}
	}
	return in
}

// List returns the files of the store, oldest first; files being written
// end in ".part" and have Open set.
func (r *Ring) List() ([]Info, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := append(slices.Clone(r.closed), r.openFiles()...)
	slices.SortFunc(all, func(a, b *file) int { return a.seq - b.seq })
	infos := make([]Info, len(all))
	for i, f := range all {
		infos[i] = f.snapshot()
	}
	return infos, nil
}

// lookup finds the file called name; the caller holds r.mu.
func (r *Ring) lookup(op, name string) (*file, error) {
	notExist := &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.Contains(name, "..") || strings.HasPrefix(name, ".") {
		return nil, notExist
	}
	if base, ok := strings.CutSuffix(name, partSuffix); ok {
		for _, f := range r.open {
			if f.info.Name == base {
				return f, nil
			}
		}
		return nil, notExist
	}
	for _, f := range r.closed {
		if f.info.Name == name {
			return f, nil
		}
	}
	return nil, notExist
}

// Open opens a file of the store for reading. A file being written is
// first brought up to date, and reads as a valid capture up to its last
// packet at the time of the call.
func (r *Ring) Open(name string) (io.ReadSeekCloser, Info, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.lookup("open", name)
	if err != nil {
		return nil, Info{}, err
	}
	path := filepath.Join(r.dir, f.info.Name)
	if f.f != nil {
		path += partSuffix
		if err := r.flushFile(f); err != nil {
			// The file is closed and renamed, or removed if it was empty.
			if err := r.failed(r.closeBroken(f, err), r.now(), 0); err != nil {
				return nil, Info{}, err
			}
			return nil, Info{}, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, Info{}, fmt.Errorf("open %s: %w", name, err)
	}
	return fh, f.snapshot(), nil
}

// Delete removes a closed file and its sidecar. The file being written
// cannot be deleted (ErrBusy).
func (r *Ring) Delete(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.lookup("delete", name)
	if err != nil {
		return err
	}
	if f.f != nil {
		return fmt.Errorf("delete %s: %w", name, ErrBusy)
	}
	return r.remove(f)
}

// DiskUsage returns the bytes used by the store's files, data still
// buffered for open files included.
func (r *Ring) DiskUsage() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.usage()
}
