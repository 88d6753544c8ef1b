// Package capture is the `vrsniff capture` service: it reads a live source
// (an interface, a UDP socket or a replayed file), decodes and filters the
// mirror traffic, keeps it in rotating capture files and serves them, the
// live stream and the counters over HTTP, and shuts all of it down in an
// order that leaves every file complete. docs/capture.md describes it.
package capture

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/query"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/server"
	"github.com/vrsniff/vrsniff/internal/source"
	"github.com/vrsniff/vrsniff/internal/upload"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// Config is everything the service needs. Exactly one of Interface,
// Listen and Read names the source; at least one of Dir, HTTP and Out says
// where the packets go. Check tells what is wrong with one.
type Config struct {
	Interface string // capture on this interface with AF_PACKET
	Listen    string // receive mirror datagrams on this UDP address (host:port)
	Read      string // replay this capture file
	Realtime  bool   // with Read: at the pace of its timestamps
	// Workers is how many sockets and pipelines share the live traffic
	// (workers.go): 0 for one per CPU the process may use, up to
	// MaxWorkers, which is the most one may ask for; a replayed file
	// always has one.
	Workers int
	// Linger, with Read, keeps serving after the file ends, until Run's
	// context is done; the files are finished (closed and renamed) at the
	// end of the input.
	Linger bool
	// Source holds the AF_PACKET and socket settings (snap length,
	// promiscuous mode, fanout, ring size); the traffic fields (ports,
	// VXLAN ports, mirror VLAN, every UDP port) are taken from Decoder.
	// With several workers the ring size and the UDP receive buffer are
	// per socket, and Fanout names the group all of them join (else one
	// of the process's own).
	Source source.Options

	Decoder mirror.Config  // what is mirror traffic; the reassembly limits
	Filter  *filter.Filter // nil keeps every decoded packet

	// Dir holds the rotating capture files, written with Files; "" for
	// none. Files.Logger is set from Logger. With several workers each
	// writes its own files, named with Files.Prefix and its number
	// ("vrsniff-w03"), and keeps Files.MaxFiles and Files.MaxBytes divided
	// by their number.
	Dir   string
	Files ring.Options
	// KeepRejects keeps the packets that fail to decode, as captured, in
	// Dir/rejects: Files' rotation and retention, raw format, no split.
	KeepRejects bool
	// Upload, with a Bucket, makes Dir a spool whose closed files are
	// uploaded to object storage and then deleted (upload.go).
	Upload Upload

	// HTTP is the API's listen address; "" for none. TLSCert and TLSKey,
	// together, make it HTTPS.
	HTTP            string
	TLSCert, TLSKey string
	// Server holds the API's token and limits; its Store, Stats, Source
	// and Logger are set by New.
	Server server.Options

	// Fleet, if set, is the fleet's bucket that GET /api/query reads
	// (docs/fleet.md, "Query"): usually the one Upload stores into.
	Fleet query.Bucket

	// MetricsAddr, if set, serves GET /metrics alone, without the
	// token, on this address (host:port).
	MetricsAddr string

	StatsEvery time.Duration // log the counters this often; 0 never
	// DropWarnEvery is the shortest time between two warnings about lost
	// packets, each summing up the loss since the one before
	// (DefaultDropWarnEvery when 0).
	DropWarnEvery time.Duration

	// source, if set, stands for the source Interface, Listen or Read
	// names, opened by the caller.
	source source.Source
	// Out, if set, receives the kept packets as one capture stream too.
	Out *Output
	// MaxPackets, if positive, makes Run return once that many packets
	// were kept, by all workers together (0: no limit).
	MaxPackets int64

	// StaleAfter makes /healthz unhealthy (503, vrsniff_healthy 0) when no
	// packet was read for that long, until one is; 0 never. A replayed
	// file that ended is not stale.
	StaleAfter time.Duration
	Logger     *slog.Logger // nil discards
}

// Service is one capture, from New to the end of Run.
type Service struct {
	c       Config
	log     *slog.Logger
	ws      workers
	up      *upload.Uploader // nil without Upload.Bucket
	spool   *spool           // the workers' file rings as the uploader's spool
	srv     *server.Server
	ln      net.Listener // nil without HTTP
	metrics net.Listener // nil without MetricsAddr
	drops   dropWarner
	ran     bool
	ended   atomic.Bool // the input ended and the files are finished
	live    *liveness
	out     *outSink           // nil without Out
	endRun  context.CancelFunc // ends Run (see end)
}

// Stats is a snapshot of the service's counters.
type Stats struct {
	// The counters of the workers, summed.
	Pipeline pipeline.Summary
	Source   source.Stats
	Files    ring.Stats   // zero without Dir
	Rejects  ring.Stats   // zero without KeepRejects
	Upload   upload.Stats // zero without Upload.Bucket
	Out      OutputStats  // zero without Out
	Workers  int          // the workers sharing the capture
	// StreamClients is the live stream clients connected now;
	// StreamDropped the packets they lost, summed over clients.
	StreamClients int
	StreamDropped uint64
	// Ended says that the input ended and the files are finished: a
	// replayed file served with Linger, or a Run that returned.
	Ended bool
}

// New checks c and does every start-up step that can fail: it opens the
// source and the capture files, loads the TLS files and binds the HTTP
// listener, so that a taken port or a bad certificate is an error here,
// before a packet is read. Run starts the capture; Close releases what New
// opened when Run is not called.
func New(c Config) (_ *Service, err error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	var count int
	if count, err = workerCount(c); err != nil {
		return nil, err
	}
	if c.Workers > count {
		c.Logger.Warn("a replayed file is read by one worker, so that its packets stay in order", "workers", c.Workers)
	}
	s := &Service{c: c, log: c.Logger}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	srcs, err := openSources(c, count)
	if err != nil {
		return nil, err
	}
	for _, src := range srcs {
		s.ws = append(s.ws, &worker{src: src, stats: &pipeline.Stats{}})
	}
	s.live = &liveness{staleAfter: c.StaleAfter, read: s.ws.read, ended: s.ended.Load, now: time.Now}
	if c.Dir != "" {
		if err := s.openRings(); err != nil {
			return nil, err
		}
		if err := s.newUploader(c); err != nil {
			return nil, err
		}
		c.Server.Store = s.fileStore()
	}
	c.Server.Stats, c.Server.Logger, c.Server.Health = s.ws, s.log, s.live.check
	c.Server.Capture = captureInfo(c, time.Now())
	if c.Fleet != nil {
		c.Server.Querier = newFleetQuerier(c.Fleet, c.Server.Capture.Version)
	}
	c.Server.Source = func() server.SourceStats {
		st := s.ws.sourceStats()
		return server.SourceStats{Received: st.Received, KernelDrops: st.Dropped}
	}
	if s.srv, err = server.New(c.Server); err != nil {
		return nil, err
	}
	if c.HTTP != "" {
		if s.ln, err = s.srv.Listen(c.HTTP, c.TLSCert, c.TLSKey); err != nil {
			return nil, err
		}
	}
	if c.MetricsAddr != "" {
		if s.metrics, err = net.Listen("tcp", c.MetricsAddr); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	if c.Out != nil {
		if s.out, err = newOutSink(c, s.end); err != nil {
			return nil, err
		}
	}
	kept := newGate(c.MaxPackets, s.end)
	for _, w := range s.ws {
		var sinks []pipeline.Sink
		if w.files != nil {
			sinks = append(sinks, w.files)
		}
		sinks = append(sinks, s.srv.Hub())
		if s.out != nil {
			sinks = append(sinks, s.out)
		}
		sinks = kept.limit(sinks)
		var rejects pipeline.Sink
		if w.rejects != nil {
			rejects = w.rejects
		}
		if w.pl, err = newPipeline(c, w.src, sinks, rejects, w.stats, s.sinkError()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// openRings opens each worker's capture files and, with KeepRejects, its
// rejects files, dividing the retention limits among them.
func (s *Service) openRings() error {
	c, n := s.c, len(s.ws)
	prefix := cmp.Or(c.Files.Prefix, "vrsniff")
	for i, w := range s.ws {
		ro := c.Files
		ro.Logger = s.log
		ro.MaxFiles, ro.MaxBytes = share(ro.MaxFiles, n), share(ro.MaxBytes, n)
		ro.Prefix = filePrefix(prefix, i, n)
		if i == 0 {
			ro.Adopt = otherPrefixes(prefix, n)
		}
		ro.Interface, ro.SourceStats = fileInterface(c, false), ringSource(w.src)
		fo := ro
		logf := s.log.Info
		if i > 0 {
			logf = func(string, ...any) {} // said once for all
		}
		if err := spoolOptions(c, &fo, logf); err != nil {
			return err
		}
		var err error
		if w.files, err = ring.New(c.Dir, fo); err != nil {
			return err
		}
		if c.KeepRejects {
			ro.Format, ro.Split, ro.Prefix = pcapfile.FormatRaw, vnpair.None, filePrefix("rejects", i, n)
			ro.Adopt = nil
			if i == 0 {
				ro.Adopt = otherPrefixes("rejects", n)
			}
			ro.Interface = fileInterface(c, true)
			if w.rejects, err = ring.New(filepath.Join(c.Dir, "rejects"), ro); err != nil {
				return err
			}
		}
	}
	return checkWritable(c.Dir)
}

// MetricsAddr is the address GET /metrics is served on without a token, nil
// without Config.MetricsAddr.
func (s *Service) MetricsAddr() net.Addr {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.Addr()
}

// Addr is the address the HTTP API listens on, nil without one: the port
// chosen when the configured one is 0.
func (s *Service) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Run captures until ctx is done, the source ends (unless lingering over a
// replayed file) or the HTTP server fails. It then closes the source,
// stops the HTTP server (each live stream ends with a complete pcapng),
// closes the files, logs the final counters and returns what went wrong,
// unlogged, for the caller to report: nil for a capture that ended as
// asked. With NOTIFY_SOCKET set it tells systemd READY=1 once it captures
// and serves, WATCHDOG=1 at half of WATCHDOG_USEC while it runs (not
// while it is stuck: see stall), and STOPPING=1 when it shuts down. Run is
// called once.
func (s *Service) Run(ctx context.Context) error {
	if s.ran {
		return errors.New("capture: Run called twice")
	}
	s.ran = true
	c := s.c
	ctx, s.endRun = context.WithCancel(ctx)
	defer s.endRun()
	httpDone := make(chan error, 1)
	httpCtx, httpCancel := context.WithCancel(context.Background())
	defer httpCancel()
	if s.ln != nil {
		go func() { httpDone <- s.srv.Serve(httpCtx, s.ln, c.TLSCert, c.TLSKey) }()
	} else {
		httpDone <- nil
	}
	metricsDone := make(chan error, 1)
	if s.metrics != nil {
		go func() { metricsDone <- s.srv.ServeMetrics(httpCtx, s.metrics) }()
	} else {
		metricsDone <- nil
	}
	drops := s.dropTicker()
	defer drops.Stop()
	s.log.Info("capturing", "interface", c.Interface, "listen", c.Listen, "read", c.Read, "dir", c.Dir, "http", c.HTTP,
		"ports", mirror.FormatPorts(c.Decoder.Traffic.Ports, c.Decoder.Traffic.AutoPorts),
		"vxlan_ports", mirror.FormatPorts(c.Decoder.Traffic.VXLANPorts, false),
		"mirror_vlan", c.Decoder.Traffic.MirrorVLAN, "fragment_copies", s.ws[0].pl.FragmentCopies(),
		"workers", len(s.ws))
	s.live.sample()
	stopUpload := s.startUpload()
	runDone := make(chan error, 1)
	go func() { runDone <- s.ws.run(ctx) }()
	notify(s.log, daemon.SdNotifyReady)
	stopping := sync.OnceFunc(func() { notify(s.log, daemon.SdNotifyStopping) })

	tick := ticker(c.StatsEvery)
	watchdog := ticker(watchdogEvery())
	stalled := make([]stall, len(s.ws))
	var stale <-chan time.Time
	if c.StaleAfter > 0 {
		stale = ticker(sampleEvery(c.StaleAfter))
	}
	var runErr error
	sourceEnded, httpEnded := false, false
loop:
	for {
		select {
		case <-ctx.Done():
			stopping()
			s.ws.closeSources()
			if !sourceEnded {
				runErr = <-runDone
			}
			break loop
		case runErr = <-runDone:
			sourceEnded = true
			if errors.Is(runErr, source.ErrClosed) {
				runErr = nil
			}
			if runErr != nil {
				// Run's caller reports the error, once.
				s.live.failed(runErr)
			} else {
				s.log.Info("source ended")
			}
			if runErr != nil || !c.Linger || c.Read == "" {
				break loop
			}
			// Lingering to serve a replayed file: nothing more will be
			// written, so the files are finished and can be downloaded.
			for _, r := range s.rings() {
				if err := r.Rotate(); err != nil {
					s.log.Warn("close files at the end of the input", "err", err)
				}
			}
			s.ended.Store(true)
		case <-tick:
			s.logStats()
		case now := <-drops.C:
			s.warnDrops(now)
		case <-watchdog:
			if s.ws.stuck(stalled) {
				s.log.Error("no packet read while the kernel drops them: withholding the watchdog ping")
				continue
			}
			notify(s.log, daemon.SdNotifyWatchdog)
		case <-stale:
			s.live.sample()
		case err := <-httpDone:
			httpEnded = true
			if err != nil {
				s.ws.closeSources()
				runErr = err
				if !sourceEnded {
					runErr = errors.Join(err, <-runDone)
				}
				break loop
			}
			httpDone = nil
		}
	}
	if errors.Is(runErr, source.ErrClosed) {
		runErr = nil
	}
	stopping()
	s.ws.closeSources()
	httpCancel()
	s.srv.Hub().Close() // also when no HTTP server runs: its goroutine ends
	var closeErr error
	for _, r := range s.rings() {
		closeErr = errors.Join(closeErr, r.Close())
	}
	stopUpload()
	if s.out != nil {
		s.out.close()
	}
	s.ended.Store(true)
	s.logStats()
	s.warnDrops(time.Now())
	if err := <-metricsDone; err != nil {
		s.log.Error("metrics server", "err", err)
	}
	if !httpEnded {
		// The files are safe; now wait for the HTTP server to end its
		// streams, so that nothing of the service outlives Run.
		if err := <-httpDone; err != nil {
			s.log.Error("http server", "err", err)
		}
	}
	return errors.Join(runErr, closeErr)
}

// ticker ticks every d; nil, never ticking, for d <= 0. The ticker goes
// with the garbage once Run returns.
func ticker(d time.Duration) <-chan time.Time {
	if d <= 0 {
		return nil
	}
	return time.Tick(d)
}

// Rotate closes the capture files being written, and the rejects file,
// and starts new ones; without Dir it does nothing. It may be called from
// any goroutine while Run runs.
func (s *Service) Rotate() error {
	var err error
	for _, r := range s.rings() {
		err = errors.Join(err, r.Rotate())
	}
	if err != nil {
		s.log.Warn("rotate", "err", err)
		return err
	}
	if s.c.Dir != "" {
		s.log.Info("rotated")
	}
	return nil
}

// Close releases what New opened: the source, the listener and the files.
// Run closes them itself; Close after Run does nothing more.
func (s *Service) Close() error {
	err := s.ws.closeSources()
	if s.ln != nil && !s.ran {
		err = errors.Join(err, s.ln.Close())
	}
	if s.srv != nil && !s.ran {
		s.srv.Hub().Close()
	}
	if s.metrics != nil && !s.ran {
		err = errors.Join(err, s.metrics.Close())
	}
	for _, r := range s.rings() {
		err = errors.Join(err, r.Close())
	}
	if !s.ran {
		s.spool.close()
	}
	return err
}

// Stats returns the counters; it may be called at any time.
func (s *Service) Stats() Stats {
	st := Stats{Pipeline: s.ws.Summary(), Source: s.ws.sourceStats(), Ended: s.ended.Load(), Workers: len(s.ws)}
	st.Files, st.Rejects = ringStats(s.ws.files()), ringStats(s.ws.rejects())
	if s.up != nil {
		st.Upload = s.up.Stats()
	}
	if s.out != nil {
		st.Out = s.out.stats()
	}
	if s.srv != nil {
		st.StreamClients, st.StreamDropped = s.srv.Hub().Clients(), s.srv.Hub().Dropped()
	}
	return st
}

// rings returns the rings the service writes.
func (s *Service) rings() []*ring.Ring {
	return append(s.ws.files(), s.ws.rejects()...)
}

// sinkError makes a pipeline's SinkError: a capture never stops for a
// sink; each kind of failure is logged once per worker and the rest
// counted.
func (s *Service) sinkError() func(error) error {
	kinds := map[string]bool{} // a pipeline calls SinkError from one goroutine
	return func(err error) error {
		if k := errKind(err); !kinds[k] && len(kinds) < maxErrKinds {
			kinds[k] = true
			s.log.Warn("write failed; counting further failures of this kind silently", "err", err)
		}
		return nil
	}
}

// maxErrKinds bounds the kinds of sink failure logged one by one.
const maxErrKinds = 32

// errKind names a failure for logging once per kind: its innermost cause,
// without the file names that wrapping adds.
func errKind(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// logStats logs the counters. written is what is on disk in the capture
// files (kept: what passed the filters); store_dropped what the files lost.
func (s *Service) logStats() {
	st := s.Stats()
	sum := st.Pipeline
	args := []any{"read", sum.Read, "kernel_dropped", st.Source.Dropped, "kept", sum.Written}
	if s.c.Dir != "" {
		f := st.Files
		args = append(args, "written", f.Packets, "store_dropped", f.Dropped, "store_lost", f.Lost,
			"store_write_errors", f.WriteErrors, "record_cut", f.Truncated, "split_overflow", f.SplitOverflow)
	}
	if s.up != nil {
		args = append(args, "uploaded_files", st.Upload.Files, "upload_failures", st.Upload.Failures,
			"spool_files", st.Upload.SpoolFiles, "spool_dropped", st.Files.DroppedSpoolFull)
	}
	if s.out != nil {
		o := s.out.stats()
		args = append(args, "out_written", o.Packets, "out_bytes", o.Bytes, "out_errors", o.Errors)
	}
	if s.c.KeepRejects && s.c.Dir != "" {
		args = append(args, "rejects_written", st.Rejects.Packets, "rejects_dropped", st.Rejects.Dropped)
	}
	args = append(args, "filtered", sum.Filtered, "malformed", sum.TotalMalformed(), "sink_errors", sum.SinkErrs,
		"vn_pairs", len(sum.Pairs), "stream_clients", st.StreamClients, "stream_dropped", st.StreamDropped)
	s.log.Info("counters", args...)
	for _, c := range sum.CandidatePorts {
		s.log.Warn("UDP port carries mirror traffic that is not decoded: add it with --port (or --port auto)", "port", c.Port, "datagrams", c.Count)
	}
	if sum.ShortSnap > 0 {
		s.log.Warn("mirror datagrams cut by the snap length inside their metadata: raise --snaplen", "datagrams", sum.ShortSnap)
	}
}
