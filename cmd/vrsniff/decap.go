package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vrsniff/vrsniff/internal/decap"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

const decapUsage = `usage: vrsniff decap [flags] IN OUT [inner filter expression]
       vrsniff decap [flags] -r IN -w OUT [inner filter expression]

Decodes a capture (pcap or pcapng) of vRouter mirror traffic into the
mirrored frames. IN and OUT may be "-" for standard input and output:

  vrsniff decap raw.pcap - | wireshark -k -i -
  vrsniff decap -r raw.pcap -w web.pcapng -c 100 host 10.0.1.3

With --split-by vn, OUT is a directory that gets one file per VN pair (both
directions of a conversation together; --split-by vn-direction: one file per
source -> destination). Words after OUT form a tcpdump expression applied to
the inner frames (the same as --bpf, with the same limits).

OUT is written under a temporary name and renamed into place at the end: a
run that fails (a write error, an interruption) leaves an existing OUT as it
was. An OUT that is IN (also through a link) is refused.

Exit status: 0 all decoded, 1 failure (bad input file, an input file that
shrank while being read, I/O error; what was decoded before damage in the
input is written), 2 usage (also: an output that is the input), 3 done but
some packets were malformed (see --rejects) or mirror traffic went to a UDP
port not configured (the summary names it).

pcapng output keeps the input's interfaces: each frame is written to an
interface named like the one it was captured on. Classic pcap output
(--format pcap) has one link type and no interfaces: the frames of every
input interface go into it, packets passed through with another link type
are counted as not writable and left out, and times are microseconds
unless --nanos.

flags:
`

func runDecap(args []string) int {
	fs := newFlagSet("decap", decapUsage)
	var (
		dec      decoderFlags
		flt      filterFlags
		inFlag   = fs.StringP("read", "r", "", "read `IN` (instead of the first argument)")
		outFlag  = fs.StringP("write", "w", "", "write `OUT` (instead of the argument after IN)")
		count    = fs.Int64P("count", "c", 0, "stop after `N` packets written (0: all)")
		format   = fs.StringP("format", "F", "pcapng", "output `format`: pcapng (metadata as comments), pcap, juniper-vn (link type 184)")
		nanos    = fs.Bool("nanos", false, "nanosecond timestamps in --format pcap")
		splitBy  = fs.String("split-by", "", "`vn`: one output file per VN pair, both directions together, OUT is a directory; vn-direction: one per source -> destination")
		rejects  = fs.String("rejects", "", "write packets that fail to decode, as captured, to `FILE` (pcapng)")
		jsonOut  = fs.Bool("json", false, "print the summary as JSON on stdout (or stderr when OUT is -)")
		quiet    = fs.Bool("quiet", false, "no summary")
		unbuf    = fs.BoolP("packet-buffered", "U", false, "write each packet out as soon as it is decoded (the default when OUT is - and not a file, e.g. a pipe into wireshark -k -i -)")
		progress = fs.Bool("progress", isTerminal(os.Stderr), "progress line on stderr")
		maxIfs   = fs.Int("max-interfaces", pcapfile.DefaultMaxInterfaces, "most distinct interfaces a pcapng input may describe (`N`)")
	)
	dec.register(fs)
	flt.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	inName, outName, rest := *inFlag, *outFlag, fs.Args()
	for _, name := range []*string{&inName, &outName} {
		if *name == "" && len(rest) > 0 {
			*name, rest = rest[0], rest[1:]
		}
	}
	if inName == "" || outName == "" {
		return usageErr("decap", "want IN and OUT (see vrsniff decap --help)")
	}
	if *count < 0 {
		return usageErr("decap", fmt.Sprintf("-c %d: must not be negative", *count))
	}
	if len(rest) > 0 {
		if flt.o.BPF != "" {
			return usageErr("decap", "give the inner filter either with --bpf or after OUT, not both")
		}
		flt.o.BPF = strings.Join(rest, " ")
	}
	// Everything is checked before any file is created.
	f, err := pcapfile.ParseFormat(*format)
	if err != nil || f == pcapfile.FormatRaw {
		return usageErr("decap", fmt.Sprintf("--format %q: want pcapng, pcap or juniper-vn", *format))
	}
	split, err := vnpair.ParseSplit(*splitBy)
	if err != nil {
		return usageErr("decap", err.Error())
	}
	if split != vnpair.None && outName == "-" {
		return usageErr("decap", "--split-by writes files: OUT must be a directory, not -")
	}
	cfg, err := dec.config()
	if err != nil {
		return usageErr("decap", err.Error())
	}
	packetFilter, err := filter.New(flt.o)
	if err != nil {
		return usageErr("decap", err.Error())
	}
	if *maxIfs < 1 {
		return usageErr("decap", fmt.Sprintf("--max-interfaces %d: want at least 1", *maxIfs))
	}
	opts := decap.Options{Format: f, Nanosecond: *nanos, Decoder: cfg, Filter: packetFilter, Split: split, MaxInterfaces: *maxIfs, MaxPackets: *count,
		PacketBuffered: *unbuf || outName == "-" && !isRegular(os.Stdout)}
	if *progress && !*quiet {
		opts.Progress = os.Stderr
	}

	report := decap.Report{W: os.Stderr, JSON: *jsonOut}
	switch {
	case *quiet:
		report.W = nil
	case *jsonOut && outName != "-":
		report.W = os.Stdout
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	incomplete, err := decap.RunAndReport(ctx, decap.Files{In: inName, Out: outName, Rejects: *rejects}, opts, report)
	if se := (*decap.SameFileError)(nil); errors.As(err, &se) {
		return usageErr("decap", se.Error())
	}
	if err != nil {
		return fail("decap", err)
	}
	if incomplete {
		return exitPartial
	}
	return exitOK
}

// isRegular reports whether f is a regular file: output to anything else
// (a pipe, a terminal, a socket) has a reader waiting for each packet.
func isRegular(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode().IsRegular()
}
