package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
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
names as keys. SIGHUP rotates the files; SIGINT/SIGTERM close them cleanly
and end the process within 5 seconds. Under systemd (Type=notify) it sends
READY=1 once it captures and serves, STOPPING=1 and watchdog pings.

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
		metricsAddr = fs.String("metrics-addr", "", "also serve GET /metrics alone, without the token, on `addr` (e.g. 10.0.0.5:9108)")
		tokenFile   = fs.String("token-file", "", "bearer token `file` required by the HTTP API (at least 16 bytes; a file other users can read is refused)")
		tlsCert     = fs.String("tls-cert", "", "TLS certificate `file` for the HTTP API")
		tlsKey      = fs.String("tls-key", "", "TLS key `file` for the HTTP API")
		snaplen     = fs.Int("snaplen", 0, "bytes kept of each captured packet (0: 262144)")
		promisc     = fs.Bool("promisc", true, "put the interface into promiscuous mode")
		fanout      = fs.Uint("fanout", 0, "AF_PACKET fanout group `id` (0: none)")
		ringMB      = fs.Int("ring-mb", 64, "AF_PACKET ring size in `MiB`")
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
	flt.register(fs)
	srvf.register(fs)
	if err := presetFlags(fs, args, os.Environ()); err != nil {
		return usageErr("capture", err.Error())
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
	if *staleAfter < 0 {
		return usageErr("capture", fmt.Sprintf("--stale-after %v: must not be negative", *staleAfter))
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

	if *dir == "" && *httpAddr == "" {
		return usageErr("capture", "nothing would be kept: give --dir (files) and/or --http (API, live stream)")
	}

	svc, err := capture.New(capture.Config{
		Interface: *iface, Listen: *listen, Read: *read, Realtime: *realtime, Linger: *linger, Workers: 1,
		Source: source.Options{
			SnapLen: *snaplen, Promisc: *promisc, Fanout: uint16(*fanout),
			RingBlockSize: 1 << 20, RingBlocks: max(*ringMB, 4),
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
	})
	if err != nil {
		return fail("capture", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
