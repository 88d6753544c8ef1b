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
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

const (
	partSuffix    = ".part"
	sidecarSuffix = ".json"
	// flushAt is how much encoded data a file buffers before it is written
	// out: large writes are cheap, and a buffer only ever ends on a block
	// boundary, so a failed write can be cut back to a valid file.
	flushAt = 64 << 10
	// retryEvery bounds how often a store that cannot write is tried again.
	retryEvery = time.Second
	// maxName is the longest file name Linux file systems accept.
	maxName = 255
	// maxSeqDigits is the room kept for the sequence number in a name: an
	// int64 in decimal.
	maxSeqDigits = 19
	// logEvery bounds how often a lasting condition (VN pairs without a
	// file of their own) is logged again with its counter.
	logEvery = time.Minute
)

// Defaults of the Options limits.
const (
	DefaultMaxOpen   = 256
	DefaultSplitIdle = time.Minute
	DefaultMaxPairs  = 64
	// DefaultMaxRecord is the largest record Wireshark and tcpdump read
	// (262144 bytes, WTAP_MAX_PACKET_SIZE_STANDARD); a file with a longer
	// one is refused as a whole.
	DefaultMaxRecord = 262144
)

// OtherLabel labels the file set of VN pairs that find no room among the
// split files (Options.MaxOpen). A pair's label always holds '+' or '=',
// so no pair is labelled so.
const OtherLabel = "other"

// otherKey is the key of the other set in Ring.open: vnpair keys start
// with 0 or 1.
const otherKey = "\xff"

var (
	// ErrBusy is returned by Delete for the file being written.
	ErrBusy = errors.New("file is being written")
	// ErrClosed is returned by WritePacket after Close.
	ErrClosed = errors.New("ring is closed")

	// Reasons Healthy gives, wrapped with the directory and the cause.
	ErrDiskFull   = errors.New("disk full")
	ErrDirMissing = errors.New("directory missing and cannot be created")
	ErrWrite      = errors.New("writes fail")
	// ErrSpoolFull: with Options.Spool, the files waiting for upload
	// fill MaxBytes.
	ErrSpoolFull = errors.New("spool full")
)

// Options configures a Ring. The zero value writes one pcapng file that
// never rotates.
type Options struct {
	Format pcapfile.Format // pcapng by default
	Prefix string          // file name prefix, "vrsniff" by default
	// Adopt lists other prefixes whose files, left in the directory by an
	// earlier run (one with another number of workers), this ring lists,
	// serves, retains and spools as its own closed files; its new files
	// keep Prefix.
	Adopt []string
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
	// MaxBytes keeps the store, open files and sidecars included, under
	// this many bytes by deleting the oldest closed files (0: no limit).
	MaxBytes int64
	// Split writes one file set per VN pair: vnpair.Undirected keeps both
	// directions of a conversation together, vnpair.Directed one set per
	// (source, destination). The names carry the pair's vnpair.Label.
	Split vnpair.Split
	// MaxOpen bounds the split files open at once, one per VN pair
	// (DefaultMaxOpen when 0). A pair without an open file takes the place
	// of the least recently used one if that has had no packet for
	// SplitIdle: it is closed as at a rotation, and its pair opens a new
	// file, with a new sequence number, at its next packet. Otherwise the
	// packet goes to the other set (OtherLabel), or is dropped with
	// DropOther, and is counted in Stats.SplitOverflow. At most MaxOpen+1
	// files are open (the other set's).
	MaxOpen int
	// SplitIdle is how long a split file must have had no packet before
	// it gives its place to another pair (DefaultSplitIdle when 0),
	// measured to within FlushEvery. It bounds how fast spoofed pairs can
	// make new files: MaxOpen per SplitIdle.
	SplitIdle time.Duration
	// DropOther drops the packets that would go to the other set.
	DropOther bool
	// MaxPairs bounds the VN pairs counted one by one in a file's Info and
	// sidecar (DefaultMaxPairs when 0): the quietest give way, and their
	// packets are counted in Info.PairsOther.
	MaxPairs int
	// MaxRecord cuts every record to this many bytes (DefaultMaxRecord when
	// 0), so that readers accept the files; cut records are counted in
	// Stats.Truncated.
	MaxRecord int
	// FlushEvery is the longest buffered data waits before it is written to
	// the file (1 s by default), which bounds what a crash loses. It is
	// also how often the directory and the open files are checked for
	// having been removed.
	FlushEvery time.Duration
	// Interface describes the capture in each file's interface
	// description (if_name, if_description, if_filter).
	Interface pcapfile.Interface
	// SourceStats, if set, returns the capture source's cumulative
	// counters: each file's statistics (Info.Received, Info.KernelDropped
	// and the pcapng interface statistics) count what they grew by while
	// the file was open. It is called with the ring's lock held.
	SourceStats func() SourceStats
	// MaxSpan rotates a file before a packet whose timestamp lies MaxSpan
	// or more away from the file's first packet, either way (0: no limit),
	// so that a file covers a bounded stretch of capture time even when a
	// replayed file goes faster than its timestamps.
	MaxSpan time.Duration
	// Index, if set, gives each file a flow index (see Indexer), written
	// at its closing as <name>.flows.parquet beside it.
	Index func() Indexer
	// Spool makes the directory a spool for an uploader: retention never
	// deletes a closed file, Uploaded does once the file is stored
	// elsewhere, and Spooled and Ready tell what waits. When the files
	// reach MaxBytes, the open files are closed (so that they can be
	// uploaded) and new packets are dropped and counted
	// (Stats.DroppedSpoolFull) until uploads make room. MaxFiles does
	// not apply.
	Spool  bool
	Logger *slog.Logger
	Now    func() time.Time // the clock, time.Now by default
}

// SourceStats are the cumulative counters of the capture source that feeds
// a ring, in packets.
type SourceStats struct {
	// Received counts the packets the source read; Dropped those the
	// kernel dropped before it could (ring or socket buffer full).
	Received, Dropped uint64
}

// Stats is a snapshot of a Ring's counters. Packets counts are in packets.
type Stats struct {
	Files     int   `json:"files"`      // files in the store, open ones included
	OpenFiles int   `json:"open_files"` // files being written
	Bytes     int64 `json:"bytes"`      // size of all files and sidecars
	// Packets counts packets on disk: counted once their write succeeded.
	Packets uint64 `json:"packets"`
	// Pending counts packets buffered for the open files, not yet written.
	Pending uint64 `json:"pending"`
	// Dropped counts packets the store lost, whatever the reason: a full
	// disk (also in DroppedDiskFull), failed writes, a format that cannot
	// hold the packet, DropOther.
	Dropped         uint64 `json:"dropped"`
	DroppedDiskFull uint64 `json:"dropped_disk_full"`
	// DroppedSpoolFull counts the packets dropped (also in Dropped)
	// because the spool was full (Options.Spool).
	DroppedSpoolFull uint64 `json:"dropped_spool_full,omitempty"`
	// WriteErrors counts failures of the store: a file that could not be
	// created, written, closed or renamed.
	WriteErrors uint64 `json:"write_errors"`
	// Lost counts packets that were on disk in an open file that someone
	// else removed (the file or the whole directory).
	Lost uint64 `json:"lost"`
	// DirRecreated counts the times the directory was found removed or
	// replaced and the store started again in a new one.
	DirRecreated uint64 `json:"dir_recreated"`
	// Truncated counts records cut to Options.MaxRecord.
	Truncated uint64 `json:"truncated"`
	// SplitOverflow counts packets of VN pairs that found no room among
	// the split files (written to the other set, or dropped with
	// DropOther); SplitClosed counts split files closed to make room.
	SplitOverflow uint64 `json:"split_overflow"`
	SplitClosed   uint64 `json:"split_closed_idle"`
	// Rotated counts the files closed and kept (rotation, Rotate, Close);
	// Removed the closed files deleted, by reason: RemovedMaxFiles and
	// RemovedMaxBytes by retention, Deleted by Delete.
	Rotated         uint64 `json:"files_rotated"`
	RemovedMaxFiles uint64 `json:"files_removed_max_files"`
	RemovedMaxBytes uint64 `json:"files_removed_max_bytes"`
	Deleted         uint64 `json:"files_deleted"`
	// Uploaded counts the spooled files removed by Uploaded.
	Uploaded uint64 `json:"files_uploaded,omitempty"`
	DiskFull bool   `json:"disk_full"`
	// SpoolFull is set while new packets are dropped for want of room in
	// the spool.
	SpoolFull bool `json:"spool_full,omitempty"`
	// Problem is why the store cannot write (Healthy's error), "" when it
	// can.
	Problem string `json:"problem,omitempty"`
}

// Ring writes packets into a directory of rotating capture files. A file is
// named like dumpcap's ring buffer files,
//
//	<prefix>_<seq>_<YYYYmmddHHMMSS>[_<label>].pcapng
//
// (label: the VN pair's vnpair.Label when split, or OtherLabel, short
// enough that every name stays within 255 bytes) and carries the suffix
// ".part" while it is written. When a file is closed a sidecar
// "<name>.json" keeps its Info, so that listing the store stays fast and
// survives restarts.
//
// The store never stops the capture: packets it cannot write are counted
// and dropped (Stats), the cause is logged once per episode, and Healthy
// says why while it lasts.
//
// All methods are safe for concurrent use.
type Ring struct {
	dir   string
	o     Options
	ext   string
	label int // the longest pair label that keeps every name within maxName
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex
	spareEnc []*pcapfile.Encoder // encoders of closed files, for the next ones
	spareIdx []Indexer           // flow indexes of closed files, reset, for the next ones
	seq      int
	closed   []*file // oldest first
	// closedBytes is the size of the closed files, their sidecars and
	// their flow indexes.
	closedBytes int64
	open        map[string]*file // by VN pair key (vnpair.AppendKey; "" without Split; otherKey)
	lru         fileList         // open split files of a VN pair, most recently used first
	key         []byte           // scratch for pair keys
	spare       []byte           // a buffer of a closed file, for the next one
	coarse      time.Time        // the clock at its last reading: a packet's time of use
	dirID       fileID           // the directory written to; zero while it is missing
	c           counters

	fault        error // why the store cannot write; nil when it can
	faultKind    faultKind
	faultDropped uint64 // in this episode
	lastTry      time.Time

	spool spoolState
	ready chan struct{} // Ready's; holds a token when files were closed since the last receive

	overflowLogged   uint64 // SplitOverflow when last logged
	overflowLoggedAt time.Time

	done bool
	stop chan struct{}
	wg   sync.WaitGroup
}

type counters struct {
	packets, dropped, droppedFull, writeErrs, lost, dirRecreated uint64
	truncated, overflow, splitClosed                             uint64
	rotated, removedFiles, removedBytes, deleted                 uint64
	droppedSpool, uploaded                                       uint64
}

// file is a capture file of the store; the fields after sidecar are used
// only while it is written.
type file struct {
	seq     int
	info    Info  // Name is the final name, without ".part"
	sidecar int64 // bytes of its sidecar, once closed

	key          string // in Ring.open
	f            *os.File
	enc          *pcapfile.Encoder // appends its records to buf
	buf          []byte            // encoded blocks not yet written to f
	written      int64             // bytes in f, always on a block boundary
	pending      uint64            // packets in buf
	pendLast     time.Time
	deadline     time.Time
	used         time.Time // of its last packet, for SplitIdle
	older, newer *file     // in Ring.lru
	inLRU        bool
	pairs        *vnpair.Counter // by directed pair, pending until on disk
	idx          Indexer         // nil without Options.Index
	idxBad       bool            // idx holds records a failed write lost: no index is written
	// At the file's opening: the clock, the source's counters and the
	// store's drops, which its statistics are counted from.
	opened   time.Time
	src0     SourceStats
	dropped0 uint64
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
	if o.MaxSize < 0 || o.MaxDuration < 0 || o.MaxFiles < 0 || o.MaxBytes < 0 || o.MaxOpen < 0 ||
		o.SplitIdle < 0 || o.MaxPairs < 0 || o.MaxRecord < 0 {
		return nil, errors.New("ring: negative limit")
	}
	o.MaxOpen = cmpOr(o.MaxOpen, DefaultMaxOpen)
	o.SplitIdle = cmpOr(o.SplitIdle, DefaultSplitIdle)
	o.MaxPairs = cmpOr(o.MaxPairs, DefaultMaxPairs)
	o.MaxRecord = cmpOr(o.MaxRecord, DefaultMaxRecord)
	ext, err := extension(o.Format)
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	if o.Format == pcapfile.FormatRaw && o.Split != vnpair.None {
		return nil, errors.New("ring: packets as captured are not split by VN pair")
	}
	label := labelRoom(o.Prefix, ext)
	if label < 0 || (o.Split != vnpair.None && label < vnpair.MinLabel) {
		return nil, fmt.Errorf("ring: file prefix %q too long", o.Prefix)
	}
	r := &Ring{
		dir: dir, o: o, ext: ext, label: label, log: o.Logger, now: o.Now,
		open:  make(map[string]*file),
		stop:  make(chan struct{}),
		ready: make(chan struct{}, 1),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	// The options are checked once, here: the first encoder is kept for
	// the first file.
	enc, err := r.newEncoder()
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	r.spareEnc = append(r.spareEnc, enc)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	if r.dirID, err = statID(dir); err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	if err := r.scan(); err != nil {
		return nil, err
	}
	r.retain()
	if len(r.closed) > 0 {
		r.signal()
	}
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// WritePacket writes p to the current file of its VN pair, opening or
// rotating files as needed. A packet the store cannot write (full disk,
// failed writes, missing directory) is counted and dropped, and nil is
// returned: the store must not stop the capture; Healthy says why. The
// error is ErrClosed after Close, or says that the format cannot hold p
// (pcapfile.ErrLinkType).
func (r *Ring) WritePacket(p *mirror.Packet) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return ErrClosed
	}
	// Reading the clock costs a tenth of writing a small packet: only
	// read it when something depends on it.
	var now time.Time
	clock := func() time.Time {
		if now.IsZero() {
			now = r.now()
			r.coarse = now
		}
		return now
	}
	if r.spool.full {
		r.spoolDrop(clock())
		return nil
	}
	if r.fault != nil {
		// A clock that went back also allows a retry.
		if clock().Sub(r.lastTry) < retryEvery && !now.Before(r.lastTry) {
			r.drop(1, r.faultKind == faultFull)
			return nil
		}
		r.lastTry = now
	}
	f, err := r.fileFor(p, clock)
	if err != nil {
		r.writeFailed(err, clock(), 1)
		return nil
	}
	if f == nil {
		return nil // dropped for want of room, and counted
	}
	start := len(f.buf)
	f.buf, err = f.enc.Append(f.buf, p)
	if err != nil {
		r.c.dropped++
		return fmt.Errorf("capture files: %w", err)
	}
	r.recordAdded(f, p, start)
	if f.enc.RecordLen(p) > r.o.MaxRecord {
		r.c.truncated++
	}
	f.pending++
	if f.info.Packets == 0 && f.pending == 1 {
		f.info.First = p.Timestamp
	}
	f.pendLast = p.Timestamp
	f.pairs.AddPending(p.Meta.SrcVN, p.Meta.DstVN)
	f.used = r.coarse
	if f.inLRU {
		r.lru.touch(f)
	}

	// While the store cannot write, the first packet goes to disk at once:
	// that is what proves it can again.
	if len(f.buf) >= flushAt || r.fault != nil {
		if err := r.flushFile(f); err != nil {
			// flushFile counted the packet as dropped.
			r.writeFailed(r.closeBroken(f, err), clock(), 0)
			return nil
		}
	}
	if r.fault != nil {
		r.recovered()
	}
	if r.o.MaxSize > 0 && f.size() >= r.o.MaxSize || f.idx != nil && f.idx.Full() {
		if err := r.closeFile(f); err != nil {
			r.writeFailed(err, clock(), 0)
		}
	}
	return nil
}

// fileFor returns the open file for p, opening one or rotating as needed,
// or nil when p is dropped for want of room (counted).
func (r *Ring) fileFor(p *mirror.Packet, clock func() time.Time) (*file, error) {
	split := r.o.Split != vnpair.None
	r.key = r.key[:0]
	if split {
		r.key = vnpair.AppendKey(r.key, p.Meta.SrcVN, p.Meta.DstVN, r.o.Split)
	}
	f := r.open[string(r.key)]
	if f, err := r.current(f, p, clock); f != nil || err != nil {
		return f, err
	}
	if !split {
		return r.openFile("", "", clock())
	}
	if r.lru.n >= r.o.MaxOpen {
		ok, err := r.makeRoom(clock())
		if err != nil {
			return nil, err
		}
		if !ok {
			return r.overflow(p, clock)
		}
	}
	// openFile may forget the open files (a removed directory): the key
	// is taken first.
	key := string(r.key)
	f, err := r.openFile(key, vnpair.Label(p.Meta.SrcVN, p.Meta.DstVN, r.o.Split, r.label), clock())
	if err != nil {
		return nil, err
	}
	f.inLRU = true
	r.lru.pushFront(f)
	return f, nil
}

// current returns f unless its time is up, or p lies outside the span
// it may cover (Options.MaxSpan), when it is closed.
func (r *Ring) current(f *file, p *mirror.Packet, clock func() time.Time) (*file, error) {
	if f == nil {
		return nil, nil
	}
	if (f.deadline.IsZero() || clock().Before(f.deadline)) && !r.outOfSpan(f, p) {
		return f, nil
	}
	return nil, r.closeFile(f)
}

// makeRoom closes the least recently used split file if it has been idle
// for SplitIdle, and reports whether it did.
func (r *Ring) makeRoom(now time.Time) (bool, error) {
	f := r.lru.tail
	if f == nil || now.Sub(f.used) < r.o.SplitIdle {
		return false, nil
	}
	r.c.splitClosed++
	return true, r.closeFile(f)
}

// overflow handles a packet of a VN pair that finds no room among the
// split files: it goes to the other set, or is dropped.
func (r *Ring) overflow(p *mirror.Packet, clock func() time.Time) (*file, error) {
	r.c.overflow++
	if r.overflowLogged == 0 && r.overflowLoggedAt.IsZero() {
		r.overflowLoggedAt = clock()
		where := "go to the " + OtherLabel + " file set"
		if r.o.DropOther {
			where = "are dropped"
		}
		r.log.Warn("more active VN pairs than split files: packets of further pairs "+where+" (counted)",
			"dir", r.dir, "max_open", r.o.MaxOpen, "idle", r.o.SplitIdle)
	}
	if r.o.DropOther {
		r.drop(1, false)
		return nil, nil
	}
	f, err := r.current(r.open[otherKey], p, clock)
	if f != nil || err != nil {
		return f, err
	}
	return r.openFile(otherKey, OtherLabel, clock())
}

// closeBroken closes f after a failed write, which left it cut back to its
// last complete block; err is returned.
func (r *Ring) closeBroken(f *file, err error) error {
	if f.f != nil {
		if cerr := r.closeFile(f); cerr != nil && !isDiskFull(err) {
			r.log.Debug("cannot close capture file", "file", f.info.Name, "err", cerr)
		}
	}
	return err
}

// fileName is the name of file seq, opened at stamp (YYYYmmddHHMMSS, UTC),
// for the VN pair labelled label ("" when not split).
func (r *Ring) fileName(seq int, stamp, label string) string {
	if label != "" {
		label = "_" + label
	}
	return fmt.Sprintf("%s_%05d_%s%s%s", r.o.Prefix, seq, stamp, label, r.ext)
}

// extension is the file name extension of a format.
func extension(f pcapfile.Format) (string, error) {
	switch f {
	case pcapfile.FormatPcap:
		return ".pcap", nil
	case pcapfile.FormatPcapNG, pcapfile.FormatJuniperVN, pcapfile.FormatRaw:
		return ".pcapng", nil
	}
	return "", fmt.Errorf("unknown format %v", f)
}

// labelRoom is the longest pair label that keeps every name the ring writes
// within maxName bytes. The longest is a sidecar's temporary name,
// "." + <prefix>_<seq>_<stamp>_<label><ext> + ".json.tmp".
func labelRoom(prefix, ext string) int {
	return maxName - len(".") - len(prefix) - len("_") - maxSeqDigits - len("_") - len("20060102150405") -
		len("_") - len(ext) - len(sidecarSuffix+".tmp")
}

// openFile creates the next file, for key in r.open, labelled label. The
// directory is checked first: a file created in a removed directory would
// be lost.
func (r *Ring) openFile(key, label string, now time.Time) (*file, error) {
	if _, err := r.checkDir(); err != nil {
		return nil, err
	}
	enc, err := r.newEncoder()
	if err != nil {
		return nil, err
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
		seq:  seq,
		info: Info{Name: name, Open: true},
		key:  key,
		f:    fh,
		enc:  enc,
		buf:  r.spare,
		used: now,
		// The busiest pairs of the file stay listed; the others are
		// counted together, so that spoofed names cost a bounded table
		// and sidecar.
		pairs:    &vnpair.Counter{Max: r.o.MaxPairs},
		opened:   now,
		src0:     r.sourceStats(),
		dropped0: r.c.dropped,
		idx:      r.newIndexer(),
	}
	f.info.Seq = seq
	r.spare = nil
	if f.buf == nil {
		// Grown as needed: most split files of a flood of spoofed pairs
		// never hold more than a packet.
		f.buf = make([]byte, 0, 4<<10)
	}
	if d := r.o.MaxDuration; d > 0 {
		if r.o.AlignClock {
			f.deadline = now.Truncate(d).Add(d)
		} else {
			f.deadline = now.Add(d)
		}
	}
	f.buf = enc.AppendHeader(f.buf)
	r.open[key] = f
	return f, nil
}

// newEncoder returns an encoder of a closed file, or a new one.
func (r *Ring) newEncoder() (*pcapfile.Encoder, error) {
	if n := len(r.spareEnc); n > 0 {
		e := r.spareEnc[n-1]
		r.spareEnc = r.spareEnc[:n-1]
		return e, nil
	}
	return pcapfile.NewEncoder(pcapfile.Options{Format: r.o.Format, Application: "vrsniff", SnapLen: r.o.MaxRecord,
		Capture: r.o.Interface})
}

func (r *Ring) sourceStats() SourceStats {
	if r.o.SourceStats == nil {
		return SourceStats{}
	}
	return r.o.SourceStats()
}

// finish counts f's statistics over its lifetime into its Info and
// appends them to its buffer as pcapng interface statistics, before it is
// closed: the counts go with the first interface, the capture's, and every
// other interface gets the span only, so that summing over interfaces
// counts nothing twice. docs/capture.md defines the counts.
func (r *Ring) finish(f *file, now time.Time) {
	in := &f.info
	r.countDrops(in, f)
	in.Closed = now
	for id := range f.enc.Interfaces() {
		s := pcapfile.InterfaceStats{Time: now, Start: f.opened, End: now}
		if id == 0 {
			s.Received = in.Received + in.KernelDropped
			s.IfDropped, s.OSDropped = in.KernelDropped, in.StoreDropped
			s.HasReceived, s.HasIfDropped, s.HasOSDropped = true, true, true
		}
		f.buf = f.enc.AppendISB(f.buf, id, s)
	}
}

// countDrops sets in's counts of what was lost since f was opened.
func (r *Ring) countDrops(in *Info, f *file) {
	src := r.sourceStats()
	in.Received = src.Received - f.src0.Received
	in.KernelDropped = src.Dropped - f.src0.Dropped
	in.StoreDropped = r.c.dropped - f.dropped0
	in.Opened = f.opened
}

// maxSpareEnc bounds the encoders of closed files kept for the next ones.
const maxSpareEnc = 8

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
			r.log.Debug("cannot cut capture file back after failed write", "file", f.info.Name, "err", terr)
		}
		f.f.Seek(f.written, io.SeekStart)
		r.drop(f.pending, isDiskFull(err))
		if f.pending > 0 && f.idx != nil {
			f.idxBad = true
		}
		f.pending = 0
		f.pairs.Rollback()
		if f.info.Packets == 0 {
			f.info.First = time.Time{}
		}
		return fmt.Errorf("write %s: %w", f.info.Name, err)
	}
	f.written += n
	f.info.Packets += f.pending
	r.c.packets += f.pending
	if f.pending > 0 {
		f.info.Last = f.pendLast
	}
	f.pending = 0
	f.pairs.Commit()
	if r.o.MaxBytes > 0 {
		r.retain()
	}
	return nil
}

// closeFile flushes and closes f and renames it to its final name. A file
// that holds no packet is removed. Retention runs afterwards. A file
// already closed (or forgotten) is left alone.
func (r *Ring) closeFile(f *file) error {
	if f.f == nil {
		return nil
	}
	if f.info.Packets+f.pending > 0 {
		r.finish(f, r.now())
	}
	err := r.flushFile(f)
	r.forget(f)
	if cerr := f.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close %s: %w", f.info.Name, cerr)
	}
	part := f.partPath(r.dir)
	if f.info.Packets == 0 {
		os.Remove(part)
		r.release(f)
		return err
	}
	// The index goes first: a closed file always has its index, or none
	// was made.
	f.info.IndexSize = r.writeIndex(f)
	if rerr := os.Rename(part, filepath.Join(r.dir, f.info.Name)); rerr != nil {
		r.removeIndex(f.info.Name)
		if errors.Is(rerr, fs.ErrNotExist) {
			// Someone removed it while it was written. A removed
			// directory is reported when it is found.
			r.c.lost += f.info.Packets
			if id, serr := statID(r.dir); serr == nil && id == r.dirID {
				r.log.Warn("capture file removed while it was written; its packets are lost",
					"file", f.info.Name+partSuffix, "lost", f.info.Packets)
			}
			r.release(f)
			return err
		}
		// The data is on disk as .part; the next start recovers it.
		r.log.Error("cannot rename closed capture file", "file", part, "err", rerr)
		r.release(f)
		if err == nil {
			err = rerr
		}
		return err
	}
	f.info.Open = false
	f.info.Size = f.written
	f.info.Pairs, f.info.PairsOther = f.pairs.Pairs()
	r.release(f)
	n, serr := r.writeSidecar(&f.info)
	if serr != nil {
		// Without a sidecar the file is still listed: the next start
		// rebuilds its info from the file.
		if !isDiskFull(serr) {
			r.log.Warn("cannot write capture file info", "file", f.info.Name, "err", serr)
		}
	}
	f.sidecar = n
	r.c.rotated++
	r.closed = append(r.closed, f)
	r.closedBytes += f.closedSize()
	r.retain()
	r.signal()
	return err
}

// forget takes f out of the open files.
func (r *Ring) forget(f *file) {
	if r.open[f.key] == f {
		delete(r.open, f.key)
	}
	if f.inLRU {
		r.lru.remove(f)
		f.inLRU = false
	}
}

// release hands f's buffers on to the next file.
func (r *Ring) release(f *file) {
	r.spare = f.buf[:0]
	if f.enc != nil && len(r.spareEnc) < maxSpareEnc {
		r.spareEnc = append(r.spareEnc, f.enc)
	}
	if f.idx != nil && len(r.spareIdx) < maxSpareEnc {
		f.idx.Reset()
		r.spareIdx = append(r.spareIdx, f.idx)
	}
	f.f, f.enc, f.buf, f.pairs, f.idx = nil, nil, nil, nil, nil
}

// closeAll closes every open file.
func (r *Ring) closeAll() error {
	var errs []error
	for _, f := range r.openFiles() {
		if err := r.closeFile(f); err != nil {
			errs = append(errs, err)
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

// retain deletes the oldest closed files beyond MaxFiles and MaxBytes; a
// spool deletes none, and says whether it is full instead.
func (r *Ring) retain() {
	if r.o.Spool {
		r.checkSpool()
		return
	}
	for len(r.closed) > 0 {
		byCount := r.o.MaxFiles > 0 && len(r.closed) > r.o.MaxFiles
		bySize := !byCount && r.o.MaxBytes > 0 && r.usage() > r.o.MaxBytes
		if !byCount && !bySize {
			return
		}
		f := r.closed[0]
		if err := r.remove(f); err != nil {
			r.log.Error("cannot delete old capture file", "file", f.info.Name, "err", err)
			return
		}
		if byCount {
			r.c.removedFiles++
		} else {
			r.c.removedBytes++
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
	if err := r.removeIndex(f.info.Name); err != nil {
		return err
	}
	i := slices.Index(r.closed, f)
	r.closed = slices.Delete(r.closed, i, i+1)
	r.closedBytes -= f.closedSize()
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
// a quiet capture still rotates and a crash loses at most FlushEvery. It
// also finds a directory or an open file that someone removed, so that
// packets do not go into a file nobody can see.
func (r *Ring) tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	now := r.now()
	r.coarse = now
	if _, err := r.checkDir(); err != nil {
		r.enterFault(faultDir, err, now)
		return
	}
	if r.spool.full {
		// A quiet capture's files are closed too, to be uploaded.
		r.closeForSpool(now)
	}
	for _, f := range r.openFiles() {
		if f.f == nil {
			continue // closed by a failure earlier in the loop
		}
		if removed(f.f) {
			r.lostFile(f)
			continue
		}
		var err error
		if !f.deadline.IsZero() && !now.Before(f.deadline) {
			err = r.closeFile(f)
		} else {
			err = r.flushFile(f)
		}
		if err != nil {
			r.writeFailed(r.closeBroken(f, err), now, 0)
		}
	}
	if r.c.overflow > r.overflowLogged && now.Sub(r.overflowLoggedAt) >= logEvery {
		r.log.Warn("packets of VN pairs without a split file of their own", "dir", r.dir,
			"since_last", r.c.overflow-r.overflowLogged, "total", r.c.overflow)
		r.overflowLogged, r.overflowLoggedAt = r.c.overflow, now
	}
}

// Rotate closes the current files; the next packets open new ones.
func (r *Ring) Rotate() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return ErrClosed
	}
	err := r.closeAll()
	if err != nil {
		r.writeFailed(err, r.now(), 0)
		if isDiskFull(err) {
			return nil
		}
	}
	return err
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
	if err != nil {
		r.c.writeErrs++
		if isDiskFull(err) {
			err = nil
		}
	}
	r.mu.Unlock()
	close(r.stop)
	r.wg.Wait()
	return err
}

// Stats returns the ring's counters.
func (r *Ring) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pending uint64
	for _, f := range r.open {
		pending += f.pending
	}
	s := Stats{
		Files:            len(r.closed) + len(r.open),
		OpenFiles:        len(r.open),
		Bytes:            r.usage(),
		Packets:          r.c.packets,
		Pending:          pending,
		Dropped:          r.c.dropped,
		DroppedDiskFull:  r.c.droppedFull,
		DroppedSpoolFull: r.c.droppedSpool,
		WriteErrors:      r.c.writeErrs,
		Lost:             r.c.lost,
		DirRecreated:     r.c.dirRecreated,
		Truncated:        r.c.truncated,
		SplitOverflow:    r.c.overflow,
		SplitClosed:      r.c.splitClosed,
		Rotated:          r.c.rotated,
		RemovedMaxFiles:  r.c.removedFiles,
		RemovedMaxBytes:  r.c.removedBytes,
		Deleted:          r.c.deleted,
		Uploaded:         r.c.uploaded,
		DiskFull:         r.fault != nil && r.faultKind == faultFull,
		SpoolFull:        r.spool.full,
	}
	if err := r.health(); err != nil {
		s.Problem = err.Error()
	}
	return s
}

// snapshot is f's Info now; for a file being written, with what was lost
// so far.
func (r *Ring) snapshot(f *file) Info {
	in := f.info
	if f.f != nil {
		r.countDrops(&in, f)
		in.Name += partSuffix
		in.Size = f.size()
		in.Packets += f.pending
		if f.pending > 0 {
			in.Last = f.pendLast
		}
		in.Pairs, in.PairsOther = f.pairs.Pairs()
	} else {
		in.Pairs = slices.Clone(in.Pairs)
	}
	if in.Pairs == nil {
		in.Pairs = []vnpair.Pair{}
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
		infos[i] = r.snapshot(f)
	}
	return infos, nil
}

// lookup finds the file called name; the caller holds r.mu.
func (r *Ring) lookup(op, name string) (*file, error) {
	notExist := &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.Contains(name, "..") || strings.HasPrefix(name, ".") {
		return nil, notExist
	}
	// A file keeps one name across its rename: with or without ".part",
	// it is found whether it is still written or closed since.
	base, _ := strings.CutSuffix(name, partSuffix)
	for _, f := range r.open {
		if f.info.Name == base {
			return f, nil
		}
	}
	for _, f := range r.closed {
		if f.info.Name == base {
			return f, nil
		}
	}
	return nil, notExist
}

// Open opens a file of the store for reading. A file being written is
// first brought up to date, and reads as a valid capture up to its last
// packet at the time of the call. The name may be given with or without
// ".part": either finds the file whether it is being written or closed
// since, so a name listed once stays valid across the rename.
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
			r.writeFailed(r.closeBroken(f, err), r.now(), 0)
			return nil, Info{}, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, Info{}, fmt.Errorf("open %s: %w", name, err)
	}
	return fh, r.snapshot(f), nil
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
	if err := r.remove(f); err != nil {
		return err
	}
	r.c.deleted++
	return nil
}

// DiskUsage returns the bytes used by the store's files and sidecars, data
// still buffered for open files included.
func (r *Ring) DiskUsage() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.usage()
}
