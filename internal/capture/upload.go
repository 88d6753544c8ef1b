package capture

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vrsniff/vrsniff/internal/flowindex"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/server"
	"github.com/vrsniff/vrsniff/internal/upload"
)

// DefaultDrain is how long, at the end of a capture, the files left in the
// spool are uploaded before Run returns (Upload.Drain).
const DefaultDrain = 30 * time.Second

// Upload makes Config.Dir a spool emptied into object storage
// (docs/capture.md, "Uploading to object storage").
type Upload struct {
	// Bucket is the store, opened by the caller (objstore); nil uploads
	// nothing.
	Bucket upload.Bucket
	// Config names the sniffer and sets the uploads' limits; Logger is
	// set from the service's, and Interface, when empty, from the source.
	upload.Config
	// Index makes each file's flow index (a flowindex.Builder when nil).
	Index func() ring.Indexer
	// Drain is how long the files left at the end are uploaded before Run
	// returns (DefaultDrain when 0, none when negative); what is left
	// then waits for the next start.
	Drain time.Duration
}

// The object store is the uploader's bucket.
var _ upload.Bucket = (*objstore.Store)(nil)

// spoolOptions turns the files' options into a spool's: no retention by
// deletion, a flow index per file, files that cover at most
// objstore.MaxFileSpan (rotation capped to it) and are pcapng.
func spoolOptions(c Config, ro *ring.Options, log func(msg string, args ...any)) error {
	if c.Upload.Bucket == nil {
		return nil
	}
	if ro.Format == pcapfile.FormatPcap {
		return errors.New("uploaded files are pcapng: classic pcap cannot be uploaded")
	}
	if ro.MaxDuration == 0 || ro.MaxDuration > objstore.MaxFileSpan {
		log("rotating files at least every stored file's longest span", "max_duration", objstore.MaxFileSpan)
		ro.MaxDuration = objstore.MaxFileSpan
	}
	ro.MaxSpan = objstore.MaxFileSpan
	ro.Spool, ro.Index = true, c.Upload.Index
	if ro.Index == nil {
		ro.Index = func() ring.Indexer { return flowindex.NewBuilder(flowindex.Options{}) }
	}
	return nil
}

// newUploader makes the uploader of the workers' files.
func (s *Service) newUploader(c Config) error {
	if c.Upload.Bucket == nil {
		return nil
	}
	uc := c.Upload.Config
	uc.Logger = s.log
	if uc.Interface == "" {
		uc.Interface = c.Interface + c.Listen + c.Read // exactly one is set
	}
	if uc.Version == "" {
		uc.Version = c.Server.Capture.Version
	}
	s.spool = newSpool(s.ws.files())
	up, err := upload.New(c.Upload.Bucket, s.spool, uc)
	if err != nil {
		return err
	}
	s.up = up
	return nil
}

// startUpload runs the uploader until the returned function is called,
// after the files were closed: it stops it, uploads what is left for
// Upload.Drain, and logs what stays in the spool.
func (s *Service) startUpload() func() {
	if s.up == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.up.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
		defer s.spool.close()
		d := s.c.Upload.Drain
		if d == 0 {
			d = DefaultDrain
		}
		if d < 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if err := s.up.Drain(ctx); err != nil {
			s.log.Warn("capture files left in the spool, uploaded at the next start", "dir", s.c.Dir, "err", err)
		}
	}
}

// spoolStore is the store of a capture that uploads: the ring's files,
// and the uploads' counters.
type spoolStore struct {
	store
	up *upload.Uploader
}

var _ server.UploadCounters = spoolStore{}

func (s spoolStore) UploadStats() server.UploadStats {
	st := s.up.Stats()
	return server.UploadStats{Files: st.Files, Bytes: st.Bytes, Failures: st.Failures, Lag: st.Lag,
		SpoolFiles: st.SpoolFiles, SpoolBytes: st.SpoolBytes}
}

// fileStore is what the server serves of the files.
func (s *Service) fileStore() server.Store {
	if s.up != nil {
		return spoolStore{store(s.ws.files()), s.up}
	}
	return store(s.ws.files())
}

// checkUpload checks the parts of c that uploading needs.
func checkUpload(c Config) error {
	if c.Upload.Bucket != nil && c.Dir == "" {
		return fmt.Errorf("uploading to object storage needs a directory for the spool")
	}
	return nil
}
