package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/secret"
	"github.com/vrsniff/vrsniff/internal/server"
	"github.com/vrsniff/vrsniff/internal/source"
	"github.com/vrsniff/vrsniff/internal/upload"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

const captureUsage = `usage: vrsniff capture (-i IFACE | --listen ADDR | -r FILE) [--dir DIR] [--http ADDR] [-w FILE|-] [flags] [inner filter expression]

Captures vRouter mirror traffic, decodes it, keeps it in rotating capture
files and serves them (list, download, live stream, metrics) over HTTP.

  -i IFACE       AF_PACKET on the sniffer's interface; no IP address needed
  --listen ADDR  a UDP socket, where the analyzer IP is local (e.g. :8099)
  -r FILE        replay a capture file (--realtime to keep its pace)

With -w, the decoded packets also go to one capture file, or with -w - to
standard output as one pcapng stream, a packet at a time, for Wireshark:

  vrsniff capture -i eth1 -w - host 10.0.0.1 and port 80 | wireshark -k -i -

Words after the flags form a tcpdump expression applied to the inner frames
(the same as --bpf). -c N stops after N packets; -a duration:SECONDS,
-a packets:N and -a filesize:KB (of the -w file) stop as dumpcap's do.

Every flag can also be set in a YAML file given with --config, with the flag
names as keys, and in a VRSNIFF_ variable (VRSNIFF_ROTATE_SIZE=100M); the
command line wins over the variable, which wins over the file. SIGHUP
rotates the files; SIGINT/SIGTERM close them cleanly and end the process
within 5 seconds. Under systemd (Type=notify) it sends READY=1 once it
captures and serves, STOPPING=1 and watchdog pings.

flags:
`

func runCapture(args []string) int {
	fs := newFlagSet("capture", captureUsage)
	var (
		dec         decoderFlags
		flt         filterFlags
		srvf        serverFlags
		rotateSize  sizeFlag
		maxBytes    sizeFlag
		iface       = fs.StringP("interface", "i", "", "capture on `interface` with AF_PACKET")
		listen      = fs.String("listen", "", "receive mirror datagrams on the UDP socket `addr:port`")
		read        = fs.StringP("read", "r", "", "replay the capture `file`")
		write       = fs.StringP("write", "w", "", "also write the kept packets to this capture `file`, - for standard output (packet-buffered into a pipe)")
		unbuf       = fs.BoolP("packet-buffered", "U", false, "with -w: write each packet out as soon as it is kept (the default with -w - when standard output is not a file)")
		count       = fs.Int64P("count", "c", 0, "stop after `N` packets kept (0: no limit)")
		autostop    = fs.StringArrayP("autostop", "a", nil, "stop on a `condition`: duration:SECONDS, packets:N or filesize:KB (of the -w file); repeatable, the first met stops")
		realtime    = fs.Bool("realtime", false, "with --read: replay at the pace of the timestamps")
		linger      = fs.Bool("linger", false, "with --read: keep serving after the file ends, until signalled")
		dir         = fs.String("dir", "", "write rotating capture files into `directory` (none if empty)")
		format      = fs.StringP("format", "F", "pcapng", "`format` of the files and of -w: pcapng or pcap")
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
		metricsAddr = fs.String("metrics-addr", "", "also serve GET /metrics alone, without the token, on `addr` (e.g. 10.0.0.5:9108)")
		tokenFile   = fs.String("token-file", "", "bearer token `file` required by the HTTP API (at least 16 bytes; a file other users can read is refused)")
		tlsCert     = fs.String("tls-cert", "", "TLS certificate `file` for the HTTP API")
		tlsKey      = fs.String("tls-key", "", "TLS key `file` for the HTTP API")
		snaplen     = fs.IntP("snaplen", "s", 0, "`bytes` kept of each captured packet (0: 262144)")
		promisc     = fs.Bool("promisc", true, "put the interface into promiscuous mode")
		fanout      = fs.Uint("fanout", 0, "AF_PACKET fanout group `id` that every worker's socket joins (0: a group of this process's own)")
		workers     = fs.Int("workers", 0, fmt.Sprintf("`N` sockets and pipelines sharing the traffic, one file set each (0: one per CPU available, at most %d; --read: 1)", capture.MaxWorkers))
		ringMB      = fs.Int("ring-mb", 64, fmt.Sprintf("AF_PACKET ring size in `MiB` of each worker's socket, at least %d (0: %d)", capture.MinRingMiB, source.DefaultRingBlocks))
		statsEvery  = fs.Duration("stats-every", time.Minute, "log the counters this often (0: never)")
		staleAfter  = fs.Duration("stale-after", 0, "/healthz answers 503 when no packet was read for this `duration` (0: never)")
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
	var sf storeFlags
	sf.register(fs)
	fs.Var((*sizeFlag)(&sf.c.PartSize), "s3-part-size", "with --store: part `size` of the multipart uploads (at least 5M; default 16M)")
	var (
		snifferID      = fs.String("sniffer-id", "", "with --store: this sniffer's `id` in the bucket's keys (default: the host name)")
		uploadParallel = fs.Int("upload-parallel", upload.DefaultParallel, "with --store: files uploaded at once (`N`)")
		uploadDrain    = fs.Duration("upload-drain", capture.DefaultDrain, "with --store: how long the files left at the end are uploaded before the capture exits (negative: none; the rest waits for the next start)")
		apiURL         = fs.String("api-url", "", "with --store: the `URL` other sniffers and users reach this capture's HTTP API at, for its record in the bucket")
	)
	flt.register(fs)
	srvf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if err := presetFlags(fs, os.Environ()); err != nil {
		return usageErr("capture", err.Error())
	}
	if err := flt.trailing(fs.Args()); err != nil {
		return usageErr("capture", err.Error())
	}
	log, err := newLogger(*logLevel, *logFormat)
	if err != nil {
		return usageErr("capture", err.Error())
	}
	stop, err := parseAutostop(*autostop)
	if err != nil {
		return usageErr("capture", err.Error())
	}
	if *count != 0 && (stop.packets == 0 || *count < stop.packets) {
		stop.packets = *count
	}
	if stop.kilobytes > 0 && *write == "" {
		return usageErr("capture", "-a filesize needs -w (it is the size of that file)")
	}
	if *unbuf && *write == "" {
		return usageErr("capture", "-U needs -w (it is how that file is written)")
	}
	// Flags that would be ignored are refused: the operator meant something.
	if *keepRejects && *dir == "" {
		return usageErr("capture", "--keep-rejects needs --dir (the rejects go to DIR/rejects)")
	}
	if *linger && (*read == "" || *httpAddr == "") {
		return usageErr("capture", "--linger needs --read and --http (it keeps serving a replayed file)")
	}
	if *fanout > math.MaxUint16 {
		return usageErr("capture", fmt.Sprintf("--fanout %d: want a group id 0-65535", *fanout))
	}
	for _, a := range []struct{ flag, network, addr string }{{"--listen", "udp", *listen}, {"--http", "tcp", *httpAddr}} {
		if err := checkHostPort(a.network, a.addr); err != nil {
			return usageErr("capture", fmt.Sprintf("%s %q: %v", a.flag, a.addr, err))
		}
	}
	cfg, err := dec.config()
	if err != nil {
		return usageErr("capture", err.Error())
	}
	packetFilter, err := filter.New(flt.o)
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
	srvOpts, err := srvf.options(server.Options{Token: token, Version: version, Capture: server.CaptureInfo{Version: version}})
	if err != nil {
		return usageErr("capture", err.Error())
	}

	var out *fileOut
	c := capture.Config{
		Interface: *iface, Listen: *listen, Read: *read, Realtime: *realtime, Linger: *linger, Workers: *workers,
		Source: source.Options{
			SnapLen: *snaplen, Promisc: *promisc, Fanout: uint16(*fanout),
			RingBlockSize: 1 << 20, RingBlocks: *ringMB,
		},
		Decoder: cfg, Filter: packetFilter,
		Dir: *dir, KeepRejects: *keepRejects,
		Files: ring.Options{
			Format: ff, MaxSize: int64(rotateSize), MaxDuration: *rotateEvery, AlignClock: *align,
			MaxFiles: *maxFiles, MaxBytes: int64(maxBytes), Split: split,
			MaxOpen: *splitOpen, SplitIdle: *splitIdle, DropOther: !*splitOther,
			MaxPairs: *filePairs, MaxRecord: int(maxRecord),
		},
		HTTP: *httpAddr, TLSCert: *tlsCert, TLSKey: *tlsKey, Server: srvOpts, MetricsAddr: *metricsAddr,
		StatsEvery: *statsEvery, StaleAfter: *staleAfter, Logger: log,
		MaxPackets: stop.packets,
	}
	if *write != "" {
		out = &fileOut{name: *write}
		c.Out = &capture.Output{W: out, Format: ff, MaxBytes: stop.kilobytes << 10,
			PacketBuffered: *unbuf || *write == "-" && !isRegular(os.Stdout)}
	}
	if sf.c.URL != "" {
		if err := sf.check(); err != nil {
			return usageErr("capture", err.Error())
		}
		if *dir == "" {
			return usageErr("capture", "--store needs --dir: the files wait there (the spool) until they are uploaded")
		}
		if *uploadParallel < 1 {
			return usageErr("capture", "--upload-parallel must be at least 1")
		}
		if fs.Changed("s3-part-size") && sf.c.PartSize < objstore.MinPartSize {
			return usageErr("capture", "--s3-part-size must be at least 5M, S3's smallest part")
		}
		id := *snifferID
		if id == "" {
			if id, err = os.Hostname(); err != nil {
				return fail("capture", fmt.Errorf("sniffer id from the host name: %w", err))
			}
			id, _, _ = strings.Cut(id, ".")
		}
		if err := objstore.CheckSniffer(id); err != nil {
			return usageErr("capture", fmt.Sprintf("%v: give --sniffer-id", err))
		}
		if ff != pcapfile.FormatPcapNG {
			return usageErr("capture", "--store keeps pcapng files: --format pcap cannot be uploaded")
		}
		c.Upload = capture.Upload{Config: upload.Config{Sniffer: id, API: *apiURL, Version: version, Parallel: *uploadParallel},
			Drain: *uploadDrain}
	} else if *snifferID != "" || *apiURL != "" || fs.Changed("s3-part-size") {
		return usageErr("capture", "--sniffer-id, --api-url and --s3-part-size go with --store")
	}
	if err := c.Check(); err != nil {
		return usageErr("capture", err.Error()+" (see vrsniff capture --help)")
	}
	if sf.c.URL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		st, err := sf.open(ctx)
		cancel()
		if err != nil {
			return fail("capture", err)
		}
		c.Upload.Bucket, c.Fleet = st, st
	}
	if *write == "-" && isTerminal(os.Stdout) {
		return usageErr("capture", "standard output is a terminal: give -w FILE, or pipe it")
	}
	svc, err := capture.New(c)
	if err != nil {
		return fail("capture", err)
	}
	// The file is created once the capture could start: a capture that
	// cannot leaves an existing file as it was.
	if err := out.open(); err != nil {
		svc.Close()
		return fail("capture", err)
	}
	defer out.close()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if stop.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, stop.duration)
		defer cancel()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			_ = svc.Rotate() // logged by Rotate
		}
	}()
	if err := runBounded(ctx, svc.Run, stopTimeout); err != nil {
		return fail("capture", err)
	}
	err = svc.OutputErr()
	if errors.Is(err, syscall.EPIPE) && *write == "-" {
		log.Info("standard output closed by its reader: capture ended")
		err = nil
	}
	if err := errors.Join(err, out.close()); err != nil {
		return fail("capture", err)
	}
	return exitOK
}

// stopTimeout bounds the shutdown that SIGTERM or SIGINT starts: the
// process ends within it whatever the capture is doing (a disk write that
// does not return, a client that does not read). It exceeds the HTTP
// server's own grace for requests in flight.
const stopTimeout = 4500 * time.Millisecond

// runBounded runs run until it returns, or until stop after ctx is done:
// then it gives up on run, whose files stay open (.part, recovered by the
// next start), and says so.
func runBounded(ctx context.Context, run func(context.Context) error, stop time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(stop)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("did not stop within %v of the signal; exiting with the files being written left as .part (the next start recovers them)", stop)
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

// checkHostPort refuses an address that no bind could take ("" passes):
// a missing or out-of-range port is a usage error, not a failure to bind.
// A service name (http) is looked up in /etc/services.
func checkHostPort(network, addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		if _, lerr := net.LookupPort(network, port); lerr != nil || port == "" {
			return fmt.Errorf("port %q: want 0 to 65535 or a service name", port)
		}
	}
	return nil
}

// autostop is what the -c and -a flags stop a capture at; zero: never.
type autostop struct {
	duration  time.Duration
	packets   int64
	kilobytes int64
}

// parseAutostop reads dumpcap's -a conditions: duration:SECONDS,
// packets:N, filesize:KB, each given alone or several separated by commas
// (as a YAML list or a VRSNIFF_AUTOSTOP variable gives them); the lowest of
// each kind counts.
func parseAutostop(args []string) (autostop, error) {
	var a autostop
	var conds []string
	for _, arg := range args {
		conds = append(conds, strings.Split(arg, ",")...)
	}
	for _, c := range conds {
		kind, v, _ := strings.Cut(c, ":")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return a, fmt.Errorf("-a %q: want %s:N with N a positive integer", c, kind)
		}
		lower := func(cur, n int64) int64 {
			if cur == 0 || n < cur {
				return n
			}
			return cur
		}
		switch kind {
		case "duration":
			if n > math.MaxInt64/int64(time.Second) {
				return a, fmt.Errorf("-a %q: too long", c)
			}
			a.duration = time.Duration(lower(int64(a.duration/time.Second), n)) * time.Second
		case "packets":
			a.packets = lower(a.packets, n)
		case "filesize":
			if n > math.MaxInt64>>10 {
				return a, fmt.Errorf("-a %q: too large", c)
			}
			a.kilobytes = lower(a.kilobytes, n)
		default:
			return a, fmt.Errorf("-a %q: unknown condition %q (want duration:SECONDS, packets:N or filesize:KB)", c, kind)
		}
	}
	return a, nil
}

// fileOut is the -w output: standard output for "-", else a file created
// by open, once the capture could start. Its methods accept a nil
// receiver, for no -w.
type fileOut struct {
	name string
	f    *os.File
}

func (o *fileOut) open() error {
	if o == nil {
		return nil
	}
	if o.name == "-" {
		o.f = os.Stdout
		// A reader that goes away (wireshark closed) makes writes fail
		// with EPIPE, which ends the capture cleanly, instead of SIGPIPE
		// killing the process with its files unfinished.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
		return nil
	}
	f, err := os.Create(o.name)
	if err != nil {
		return err
	}
	o.f = f
	return nil
}

func (o *fileOut) Write(b []byte) (int, error) { return o.f.Write(b) }

// close closes the file (not standard output), once.
func (o *fileOut) close() error {
	if o == nil || o.f == nil || o.f == os.Stdout {
		return nil
	}
	f := o.f
	o.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", o.name, err)
	}
	return nil
}
