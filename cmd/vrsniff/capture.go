package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/secret"
	"github.com/vrsniff/vrsniff/internal/server"
	"github.com/vrsniff/vrsniff/internal/source"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

const captureUsage = `usage: vrsniff capture (-i IFACE | --listen ADDR | --read FILE) [--dir DIR] [--http ADDR] [flags]

Captures vRouter mirror traffic, decodes it, keeps it in rotating capture
files and serves them (list, download, live stream, metrics) over HTTP.

  -i IFACE       AF_PACKET on the sniffer's interface; no IP address needed
  --listen ADDR  a UDP socket, where the analyzer IP is local (e.g. :8099)
  --read FILE    replay a capture file (--realtime to keep its pace)

Every flag can also be set in a YAML file given with --config, with the flag
names as keys. SIGHUP rotates the files; SIGINT/SIGTERM close them cleanly.

flags:
`

func runCapture(args []string) int {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, captureUsage); fs.PrintDefaults() }
	var (
		dec         decoderFlags
		flt         filterFlags
		srvf        serverFlags
		rotateSize  sizeFlag
		maxBytes    sizeFlag
		iface       = fs.String("i", "", "capture on `interface` with AF_PACKET")
		listen      = fs.String("listen", "", "receive mirror datagrams on the UDP socket `addr:port`")
		read        = fs.String("read", "", "replay the capture `file`")
		realtime    = fs.Bool("realtime", false, "with --read: replay at the pace of the timestamps")
		linger      = fs.Bool("linger", false, "with --read: keep serving after the file ends, until signalled")
		dir         = fs.String("dir", "", "write rotating capture files into `directory` (none if empty)")
		format      = fs.String("format", "pcapng", "file `format`: pcapng or pcap")
		rotateEvery = fs.Duration("rotate-every", 0, "start a new file after this `duration` (0: never)")
		align       = fs.Bool("align", true, "align --rotate-every to the wall clock")
		maxFiles    = fs.Int("max-files", 0, "keep at most `N` closed files (0: no limit)")
		splitBy     = fs.String("split-by", "", "`vn`: one file set per VN pair, both directions together; vn-direction: one per source -> destination")
		splitOpen   = fs.Int("split-max-open", ring.DefaultMaxOpen, "with --split-by: split files open at once, one per VN pair; another pair takes the place of the least recently used one idle for --split-idle, or goes to the \"other\" set")
		splitIdle   = fs.Duration("split-idle", ring.DefaultSplitIdle, "with --split-by: how long a split file must have had no packet before another VN pair may take its place")
		splitOther  = fs.Bool("split-other", true, "with --split-by: write packets of VN pairs that find no room to the \"other\" file set (false: drop them; counted either way)")
		filePairs   = fs.Int("max-file-pairs", ring.DefaultMaxPairs, "VN pairs listed per capture file (sidecar and API), busiest first; the packets of the others are counted together")
		keepRejects = fs.Bool("keep-rejects", false, "keep packets that fail to decode, as captured, in DIR/rejects")
		httpAddr    = fs.String("http", "", "serve the HTTP API on `addr` (e.g. 127.0.0.1:8080)")
		tokenFile   = fs.String("token-file", "", "bearer token `file` required by the HTTP API (at least 16 bytes; a file other users can read is refused)")
		tlsCert     = fs.String("tls-cert", "", "TLS certificate `file` for the HTTP API")
		tlsKey      = fs.String("tls-key", "", "TLS key `file` for the HTTP API")
		snaplen     = fs.Int("snaplen", 0, "bytes kept of each captured packet (0: 262144)")
		promisc     = fs.Bool("promisc", true, "put the interface into promiscuous mode")
		fanout      = fs.Uint("fanout", 0, "AF_PACKET fanout group `id` (0: none)")
		ringMB      = fs.Int("ring-mb", 64, "AF_PACKET ring size in `MiB`")
		statsEvery  = fs.Duration("stats-every", time.Minute, "log the counters this often (0: never)")
		logLevel    = fs.String("log-level", "info", "log `level`: debug, info, warn, error")
		logFormat   = fs.String("log-format", "text", "log `format`: text or json")
		_           = fs.String("config", "", "read flags from this YAML `file`")
	)
	rotateSize = 100 << 20
	maxRecord := sizeFlag(ring.DefaultMaxRecord)
	fs.Var(&maxRecord, "max-record", "cut longer records to this `size` in the capture files (at most 256K, the most Wireshark reads)")
	fs.Var(&rotateSize, "rotate-size", "start a new file at this `size` (e.g. 100M; 0: never)")
	fs.Var(&maxBytes, "max-bytes", "keep at most this `size` of closed files (e.g. 10G; 0: no limit)")
	dec.register(fs)
	flt.register(fs)
	srvf.register(fs)
	if path := configArg(args); path != "" {
		if err := applyConfig(fs, path); err != nil {
			return usageErr("capture", err.Error())
		}
	}
	if err := fs.Parse(args); err != nil {
		return usageCode(err)
	}
	if fs.NArg() > 0 {
		return usageErr("capture", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	log, err := newLogger(*logLevel, *logFormat)
	if err != nil {
		return usageErr("capture", err.Error())
	}
	nsrc := 0
	for _, s := range []string{*iface, *listen, *read} {
		if s != "" {
			nsrc++
		}
	}
	if nsrc != 1 {
		return usageErr("capture", "give exactly one of -i, --listen and --read")
	}
	cfg, err := dec.config()
	if err != nil {
		return usageErr("capture", err.Error())
	}
	flt2, err := filter.New(flt.o)
	if err != nil {
		return usageErr("capture", err.Error())
	}
	ff, err := pcapfile.ParseFormat(*format)
	if err != nil || (ff != pcapfile.FormatPcapNG && ff != pcapfile.FormatPcap) {
		return usageErr("capture", fmt.Sprintf("--format %q: want pcapng or pcap", *format))
	}
	split, err := vnpair.ParseSplit(*splitBy)
	if err != nil {
		return usageErr("capture", err.Error())
	}
	if *splitOpen < 1 || *splitIdle <= 0 || *filePairs < 1 {
		return usageErr("capture", "--split-max-open, --split-idle and --max-file-pairs must be positive")
	}
	if maxRecord < 1 || maxRecord > ring.DefaultMaxRecord {
		return usageErr("capture", fmt.Sprintf("--max-record %d: want 1 to %d", maxRecord, ring.DefaultMaxRecord))
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usageErr("capture", "--tls-cert and --tls-key go together")
	}
	token := ""
	if *tokenFile != "" {
		if token, err = secret.ReadToken(*tokenFile, secret.MinTokenLen); err != nil {
			return fail("capture", fmt.Errorf("token file: %w", err))
		}
	}
	if *httpAddr != "" {
		if err := server.CheckListen(*httpAddr, token != ""); err != nil {
			return usageErr("capture", err.Error())
		}
	}
	srvOpts, err := srvf.options(server.Options{Token: token, Logger: log})
	if err != nil {
		return usageErr("capture", err.Error())
	}

	if *dir == "" && *httpAddr == "" {
		return usageErr("capture", "nothing would be kept: give --dir (files) and/or --http (API, live stream)")
	}

	// Source.
	so := source.Options{
		Traffic: cfg.Traffic, SnapLen: *snaplen, Promisc: *promisc, Fanout: uint16(*fanout),
		RingBlockSize: 1 << 20, RingBlocks: max(*ringMB, 4),
	}
	var src source.Source
	switch {
	case *iface != "":
		src, err = source.OpenAFPacket(*iface, so)
	case *listen != "":
		src, err = source.ListenUDP(*listen, so)
	default:
		src, err = source.OpenFile(*read, *realtime)
	}
	if err != nil {
		return fail("capture", err)
	}

	// Sinks.
	stats := &pipeline.Stats{}
	var sinks []pipeline.Sink
	var store ring.Store
	var files, rejects *ring.Ring
	if *dir != "" {
		ro := ring.Options{
			Format: ff, MaxSize: int64(rotateSize), MaxDuration: *rotateEvery, AlignClock: *align,
			MaxFiles: *maxFiles, MaxBytes: int64(maxBytes), Split: split, Logger: log,
			MaxOpen: *splitOpen, SplitIdle: *splitIdle, DropOther: !*splitOther,
			MaxPairs: *filePairs, MaxRecord: int(maxRecord),
		}
		if files, err = ring.New(*dir, ro); err != nil {
			src.Close()
			return fail("capture", err)
		}
		store = files
		sinks = append(sinks, files)
		if *keepRejects {
			ro.Format, ro.Split, ro.Prefix = pcapfile.FormatRaw, vnpair.None, "rejects"
			if rejects, err = ring.New(filepath.Join(*dir, "rejects"), ro); err != nil {
				src.Close()
				return fail("capture", err)
			}
		}
	}
	srvOpts.Store, srvOpts.Stats = store, stats
	srvOpts.Source = func() server.SourceStats {
		s := src.Stats()
		return server.SourceStats{Received: s.Received, KernelDrops: s.Dropped}
	}
	srv, err := server.New(srvOpts)
	if err != nil {
		src.Close()
		return fail("capture", err)
	}
	sinks = append(sinks, srv.Hub())
	// Listen now: a taken port or a bad certificate ends the start-up,
	// before a packet is read.
	var ln net.Listener
	if *httpAddr != "" {
		if ln, err = srv.Listen(*httpAddr, *tlsCert, *tlsKey); err != nil {
			src.Close()
			for _, r := range []*ring.Ring{files, rejects} {
				if r != nil {
					r.Close()
				}
			}
			return fail("capture", err)
		}
	}

	sinkErrs := map[string]bool{} // kinds logged; the pipeline calls SinkError from one goroutine
	pc := pipeline.Config{
		Source: src, Decoder: cfg, Filter: flt2, Sinks: sinks, Stats: stats,
		// A capture never stops for a sink: count, log each kind once.
		SinkError: func(err error) error {
			if k := errKind(err); !sinkErrs[k] && len(sinkErrs) < maxErrKinds {
				sinkErrs[k] = true
				log.Warn("write failed; counting further failures of this kind silently", "err", err)
			}
			return nil
		},
	}
	// Only a rejects ring (--keep-rejects with --dir) makes the decoder
	// keep copies of the fragments it holds.
	if rejects != nil {
		pc.Rejects = rejects
	}
	pl, err := pipeline.New(pc)
	if err != nil {
		src.Close()
		if ln != nil {
			ln.Close()
		}
		for _, r := range []*ring.Ring{files, rejects} {
			if r != nil {
				r.Close()
			}
		}
		return fail("capture", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	httpDone := make(chan error, 1)
	httpCtx, httpCancel := context.WithCancel(context.Background())
	defer httpCancel()
	if ln != nil {
		go func() { httpDone <- srv.Serve(httpCtx, ln, *tlsCert, *tlsKey) }()
	} else {
		httpDone <- nil
	}

	log.Info("capturing", "interface", *iface, "listen", *listen, "read", *read, "dir", *dir, "http", *httpAddr,
		"ports", mirror.FormatPorts(cfg.Traffic.Ports, cfg.Traffic.AutoPorts), "vxlan_ports", mirror.FormatPorts(cfg.Traffic.VXLANPorts, false), "mirror_vlan", cfg.Traffic.MirrorVLAN,
		"fragment_copies", pl.FragmentCopies())
	runDone := make(chan error, 1)
	go func() { runDone <- pl.Run(ctx) }()

	var tick <-chan time.Time
	if *statsEvery > 0 {
		t := time.NewTicker(*statsEvery)
		defer t.Stop()
		tick = t.C
	}
	var runErr error
	sourceEnded := false
loop:
	for {
		select {
		case <-ctx.Done():
			src.Close()
			if !sourceEnded {
				runErr = <-runDone
			}
			break loop
		case runErr = <-runDone:
			sourceEnded = true
			if errors.Is(runErr, source.ErrClosed) {
				runErr = nil
			}
			log.Info("source ended", "err", runErr)
			if runErr != nil || !*linger || *read == "" {
				break loop
			}
			// Lingering to serve a replayed file: nothing more will be
			// written, so the files are finished and can be downloaded.
			for _, r := range []*ring.Ring{files, rejects} {
				if r != nil {
					if err := r.Rotate(); err != nil {
						log.Warn("close files at the end of the input", "err", err)
					}
				}
			}
		case <-hup:
			if files != nil {
				if err := files.Rotate(); err != nil {
					log.Warn("rotate", "err", err)
				} else {
					log.Info("rotated on SIGHUP")
				}
			}
		case <-tick:
			logStats(log, stats, src.Stats(), srv.Hub(), files, rejects)
		case err := <-httpDone:
			if err != nil {
				log.Error("http server", "err", err)
				src.Close()
				runErr = errors.Join(err, <-runDone)
				break loop
			}
			httpDone = nil
		}
	}
	if errors.Is(runErr, source.ErrClosed) {
		runErr = nil
	}
	src.Close()
	httpCancel()
	var closeErr error
	if files != nil {
		closeErr = files.Close()
	}
	if rejects != nil {
		closeErr = errors.Join(closeErr, rejects.Close())
	}
	logStats(log, stats, src.Stats(), srv.Hub(), files, rejects)
	if err := errors.Join(runErr, closeErr); err != nil {
		log.Error("capture ended", "err", err)
		return exitFailure
	}
	return exitOK
}

// logStats logs the counters. written is what is on disk in the capture
// files (kept: what passed the filters); store_dropped what the files lost.
func logStats(log *slog.Logger, s *pipeline.Stats, ss source.Stats, hub *server.Hub, files, rejects *ring.Ring) {
	sum := s.Summary()
	args := []any{"read", sum.Read, "kernel_dropped", ss.Dropped, "kept", sum.Written}
	if files != nil {
		st := files.Stats()
		args = append(args, "written", st.Packets, "store_dropped", st.Dropped, "store_lost", st.Lost,
			"store_write_errors", st.WriteErrors, "record_cut", st.Truncated, "split_overflow", st.SplitOverflow)
	}
	if rejects != nil {
		st := rejects.Stats()
		args = append(args, "rejects_written", st.Packets, "rejects_dropped", st.Dropped)
	}
	args = append(args, "filtered", sum.Filtered, "malformed", sum.TotalMalformed(), "sink_errors", sum.SinkErrs,
		"vn_pairs", len(sum.Pairs), "stream_clients", hub.Clients(), "stream_dropped", hub.Dropped())
	log.Info("counters", args...)
	for _, c := range sum.CandidatePorts {
		log.Warn("UDP port carries mirror traffic that is not decoded: add it with --port (or --port auto)", "port", c.Port, "datagrams", c.Count)
	}
	if sum.ShortSnap > 0 {
		log.Warn("mirror datagrams cut by the snap length inside their metadata: raise --snaplen", "datagrams", sum.ShortSnap)
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

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
