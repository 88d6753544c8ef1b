// Package upload empties a capture spool into object storage: each closed
// capture file is stored, then its flow index, then its manifest, last,
// for a capture file is visible to readers only through its manifest; the
// local copy is deleted once the manifest is stored. docs/capture.md
// ("Uploading to object storage") and docs/fleet.md describe it.
package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/secret"
)

// Defaults of the Config fields.
const (
	DefaultParallel = 2
	DefaultRetry    = time.Second
	DefaultMaxRetry = time.Minute
	DefaultRefresh  = time.Minute
)

// Bucket is where the files go: internal/objstore's Store. Keys are
// relative to the store's prefix.
type Bucket interface {
	// PutFile stores size bytes read from r under key, with a multipart
	// upload when they are many; a failed upload leaves nothing under key
	// that a reader would take for the object.
	PutReader(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// PutBytes stores data under key.
	PutBytes(ctx context.Context, key string, data []byte, contentType string) error
	// AbortUploads aborts the multipart uploads in progress whose keys
	// start with prefix and that began more than olderThan ago (0: all),
	// and says how many.
	AbortUploads(ctx context.Context, prefix string, olderThan time.Duration) (int, error)
}

// Spool is the capture directory the files wait in: a ring.Ring made
// with Options.Spool.
type Spool interface {
	// Ready receives when files were closed; Spooled then lists the
	// closed files, oldest first.
	Ready() <-chan struct{}
	Spooled() []ring.Info
	Open(name string) (io.ReadSeekCloser, ring.Info, error)
	// OpenIndex opens a closed file's flow index; fs.ErrNotExist when it
	// has none.
	OpenIndex(name string) (io.ReadCloser, error)
	// Uploaded deletes a stored file, its sidecar and its index; Delete
	// forgets one that is gone from the disk.
	Uploaded(name string) error
	Delete(name string) error
}

// Config configures an Uploader.
type Config struct {
	// Sniffer names this capture in the keys (objstore.CheckSniffer).
	Sniffer string
	// API is the base URL of this capture's HTTP API, Version its build,
	// Interface what it captures: the sniffer record's fields.
	API, Version, Interface string
	// Parallel bounds the files uploaded at once (DefaultParallel when 0).
	Parallel int
	// Retry is the wait after a failure (DefaultRetry when 0); it doubles
	// with each failure in a row up to MaxRetry (DefaultMaxRetry when 0).
	Retry, MaxRetry time.Duration
	// Refresh is how often the sniffer record is written again
	// (DefaultRefresh when 0).
	Refresh time.Duration
	Logger  *slog.Logger     // nil discards
	Now     func() time.Time // the clock, time.Now by default
}

// Stats is a snapshot of an Uploader's counters.
type Stats struct {
	// Files and Bytes count the capture files stored (manifest written)
	// and the bytes of their capture files and indexes; Failures the
	// failed requests and local errors, each retried.
	Files, Bytes, Failures uint64
	// Lag is the age of the oldest file waiting, since its closing; 0
	// when none waits.
	Lag time.Duration
	// SpoolFiles and SpoolBytes are the closed files waiting and their
	// bytes, indexes included.
	SpoolFiles int
	SpoolBytes int64
	// Failing is set from a failure to the next success.
	Failing bool
}

// Uploader uploads a spool's files. Its methods are safe for concurrent
// use; Run and Drain are called one at a time.
type Uploader struct {
	b     Bucket
	spool Spool
	c     Config
	log   *slog.Logger
	now   func() time.Time

	started time.Time

	mu       sync.Mutex
	stale    map[string]bool // files of an earlier run, whose stale uploads are aborted first
	files    uint64
	bytes    uint64
	failures uint64
	failing  bool
	outage   uint64 // failures in this episode
	backoff  time.Duration
}

// New returns an Uploader of spool's files into b. The files already in
// the spool are taken as left by an earlier run.
func New(b Bucket, spool Spool, c Config) (*Uploader, error) {
	if err := objstore.CheckSniffer(c.Sniffer); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	if c.Parallel < 0 || c.Retry < 0 || c.MaxRetry < 0 || c.Refresh < 0 {
		return nil, errors.New("upload: negative limit")
	}
	c.Parallel = cmpOr(c.Parallel, DefaultParallel)
	c.Retry = cmpOr(c.Retry, DefaultRetry)
	c.MaxRetry = max(cmpOr(c.MaxRetry, DefaultMaxRetry), c.Retry)
	c.Refresh = cmpOr(c.Refresh, DefaultRefresh)
	u := &Uploader{b: b, spool: spool, c: c, log: c.Logger, now: c.Now, stale: map[string]bool{}}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.now == nil {
		u.now = time.Now
	}
	for _, in := range spool.Spooled() {
		u.stale[in.Name] = true
	}
	u.started = u.now()
	return u, nil
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Run uploads the spool's files as they close, and writes the sniffer
// record at once and every Refresh, until ctx is done. While the store
// fails, files wait in the spool and are tried again after a growing
// pause; the failure is logged once as it starts and once as it ends.
// Uploads under way when ctx ends are abandoned: their files stay in the
// spool for the next run, which aborts their multipart uploads. Run
// returns nil once ctx is done.
func (u *Uploader) Run(ctx context.Context) error {
	u.putSniffer(ctx)
	t := time.NewTicker(u.c.Refresh)
	defer t.Stop()
	u.loop(ctx, false, t.C, func() { u.putSniffer(ctx) })
	return nil
}

// Drain uploads the files in the spool and returns when it is empty, or
// with ctx's error when ctx ends first: at the end of a capture, what it
// wrote last is stored before the program exits.
func (u *Uploader) Drain(ctx context.Context) error {
	if !u.loop(ctx, true, nil, nil) {
		return fmt.Errorf("upload: %d files left in the spool: %w", len(u.spool.Spooled()), ctx.Err())
	}
	return nil
}

// result is the end of one file's upload.
type result struct {
	name string
	err  error
}

// loop uploads files, at most Parallel at once, oldest first, until ctx
// is done or, with drain, the spool is empty (reported by the result).
func (u *Uploader) loop(ctx context.Context, drain bool, tick <-chan time.Time, onTick func()) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan result)
	busy := map[string]bool{}
	var wait <-chan time.Time // set while pausing after a failure
	defer func() {
		// Uploads cut short by ctx report, so that none outlives the loop.
		cancel()
		for range busy {
			<-done
		}
	}()
	for {
		if wait == nil {
			waiting := u.start(ctx, busy, done)
			if drain && waiting == 0 && len(busy) == 0 {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-u.spool.Ready():
		case <-tick:
			onTick()
		case <-wait:
			wait = nil
		case res := <-done:
			delete(busy, res.name)
			if res.err == nil {
				u.succeeded()
				continue
			}
			if ctx.Err() != nil {
				return false // cut short, not a failure of the store
			}
			if d := u.failed(res.err); wait == nil {
				wait = time.After(d)
			}
		}
	}
}

// start starts uploading the spooled files not busy yet, up to Parallel
// in all, and returns how many files wait, busy ones included.
func (u *Uploader) start(ctx context.Context, busy map[string]bool, done chan<- result) int {
	files := u.spool.Spooled()
	for _, in := range files {
		if len(busy) >= u.c.Parallel {
			break
		}
		if busy[in.Name] {
			continue
		}
		busy[in.Name] = true
		u.mu.Lock()
		stale := u.stale[in.Name]
		u.mu.Unlock()
		go func() {
			err := u.upload(ctx, in, stale)
			if err == nil && stale {
				u.mu.Lock()
				delete(u.stale, in.Name)
				u.mu.Unlock()
			}
			done <- result{in.Name, err}
		}()
	}
	return len(files)
}

// upload stores one closed file: the capture file, its index, then the
// manifest, and deletes it from the spool. A file from an earlier run
// (stale) first has the multipart uploads left under its keys aborted.
// Uploading the same file again writes the same keys with the same
// content, so a crash between the manifest and the delete costs only a
// second upload.
func (u *Uploader) upload(ctx context.Context, in ring.Info, stale bool) error {
	first := in.First
	if first.IsZero() {
		// A file listed from its size and time only.
		first = in.Last
	}
	base := objstore.FileBase(u.c.Sniffer, first, uint64(in.Seq))
	if stale {
		if _, err := u.b.AbortUploads(ctx, base, 0); err != nil {
			return fmt.Errorf("abort stale uploads of %s: %w", in.Name, err)
		}
	}
	m := objstore.Manifest{
		Version: 1, Sniffer: u.c.Sniffer, Seq: uint64(in.Seq),
		Pcap: base + objstore.SuffixPcap, PcapSize: in.Size, HeaderLen: in.HeaderLen,
		First: in.First, Last: in.Last, Packets: in.Packets, Pairs: in.Pairs, PairsOther: in.PairsOther,
		Received: in.Received, KernelDropped: in.KernelDropped, StoreDropped: in.StoreDropped,
	}
	fh, _, err := u.spool.Open(in.Name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Deleted through the API, or by someone else.
			u.log.Warn("capture file left the spool before it was uploaded", "file", in.Name)
			if err := u.spool.Delete(in.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("forget %s: %w", in.Name, err)
			}
			return nil
		}
		return fmt.Errorf("read %s: %w", in.Name, err)
	}
	sum := sha256.New()
	err = u.put(ctx, m.Pcap, fh, in.Size, contentPcapng, sum)
	fh.Close()
	if err != nil {
		return fmt.Errorf("store %s: %w", in.Name, err)
	}
	m.PcapSHA256 = hex.EncodeToString(sum.Sum(nil))
	if in.IndexSize > 0 {
		ix, err := u.spool.OpenIndex(in.Name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Gone with its file (checked below), or never written.
		case err != nil:
			return fmt.Errorf("read index of %s: %w", in.Name, err)
		default:
			err = u.put(ctx, base+objstore.SuffixIndex, ix, in.IndexSize, contentParquet, nil)
			ix.Close()
			if err != nil {
				return fmt.Errorf("store index of %s: %w", in.Name, err)
			}
			m.Index, m.IndexSize = base+objstore.SuffixIndex, in.IndexSize
		}
	}
	m.Uploaded = u.now().UTC()
	b, err := json.Marshal(&m)
	if err != nil {
		return err
	}
	if err := u.b.PutBytes(ctx, base+objstore.SuffixManifest, append(b, '\n'), contentJSON); err != nil {
		return fmt.Errorf("store manifest of %s: %w", in.Name, err)
	}
	if err := u.spool.Uploaded(in.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete uploaded %s: %w", in.Name, err)
	}
	u.mu.Lock()
	u.files++
	u.bytes += uint64(in.Size + m.IndexSize)
	u.mu.Unlock()
	return nil
}

// The content types of the stored objects.
const (
	contentPcapng  = "application/x-pcapng"
	contentParquet = "application/vnd.apache.parquet"
	contentJSON    = "application/json"
)

// put stores size bytes of r under key, hashing them into sum (if not
// nil) as they are read; a file that does not hold size bytes is an error.
func (u *Uploader) put(ctx context.Context, key string, r io.Reader, size int64, contentType string, sum hash.Hash) error {
	cr := &countingReader{r: r, sum: sum}
	if err := u.b.PutReader(ctx, key, cr, size, contentType); err != nil {
		return err
	}
	if cr.n != size {
		return fmt.Errorf("%s: read %d bytes of %d", key, cr.n, size)
	}
	return nil
}

// countingReader counts and hashes what is read through it; it hides any
// Seek of the reader below, so that the client reads it once, in order.
type countingReader struct {
	r   io.Reader
	sum hash.Hash
	n   int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.sum != nil {
		c.sum.Write(p[:n])
	}
	return n, err
}

// putSniffer writes the sniffer record: who this capture is and that it
// is alive now.
func (u *Uploader) putSniffer(ctx context.Context) {
	rec := objstore.Sniffer{ID: u.c.Sniffer, API: u.c.API, Version: u.c.Version, Interface: u.c.Interface,
		Started: u.started.UTC(), LastSeen: u.now().UTC()}
	b, err := json.Marshal(&rec)
	if err == nil {
		err = u.b.PutBytes(ctx, objstore.SnifferKey(u.c.Sniffer), append(b, '\n'), contentJSON)
	}
	if err != nil {
		if ctx.Err() == nil {
			u.failed(fmt.Errorf("store sniffer record: %w", err))
		}
		return
	}
	u.succeeded()
}

// failed counts a failure and returns how long to wait before the next
// try; the first of an episode is logged.
func (u *Uploader) failed(err error) time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.failures++
	u.outage++
	u.backoff = min(max(u.backoff*2, u.c.Retry), u.c.MaxRetry)
	if !u.failing {
		u.failing = true
		u.log.Warn("object store failing: capture files wait in the spool and are tried again",
			"sniffer", u.c.Sniffer, "err", redact(err.Error()))
	}
	return u.backoff
}

// succeeded ends a failure episode, if one was under way.
func (u *Uploader) succeeded() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.backoff = 0
	if u.failing {
		u.failing = false
		u.log.Info("object store reachable again, uploads resumed", "sniffer", u.c.Sniffer, "failures", u.outage)
		u.outage = 0
	}
}

// secrets matches what an error may quote of the credentials: the
// signature and access key of a request URL or an Authorization header.
var secrets = regexp.MustCompile(`(?i)(X-Amz-(?:Credential|Signature|Security-Token)=|Credential=|Signature=)[^&\s,"]*`)

// redact hides the credentials an error message may quote: those of a
// URL's userinfo and of a request's signature.
func redact(s string) string { return secrets.ReplaceAllString(secret.RedactURL(s), "${1}REDACTED") }

// Stats returns the counters, and the spool's state now.
func (u *Uploader) Stats() Stats {
	files := u.spool.Spooled()
	u.mu.Lock()
	st := Stats{Files: u.files, Bytes: u.bytes, Failures: u.failures, Failing: u.failing, SpoolFiles: len(files)}
	u.mu.Unlock()
	for _, in := range files {
		st.SpoolBytes += in.Size + in.IndexSize
	}
	if len(files) > 0 {
		t := files[0].Closed
		if t.IsZero() {
			t = files[0].Last
		}
		st.Lag = max(u.now().Sub(t), 0)
	}
	return st
}
