package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/vrsniff/vrsniff/internal/decap"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

const decapUsage = `usage: vrsniff decap [flags] IN OUT [inner filter expression]

Decodes a capture (pcap or pcapng) of vRouter mirror traffic into the
mirrored frames. IN and OUT may be "-" for standard input and output:

  vrsniff decap raw.pcap - | wireshark -k -i -

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
	fs := flag.NewFlagSet("decap", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, decapUsage); fs.PrintDefaults() }
	var (
		dec      decoderFlags
		flt      filterFlags
		format   = fs.String("format", "pcapng", "output `format`: pcapng (metadata as comments), pcap, juniper-vn (link type 184)")
		nanos    = fs.Bool("nanos", false, "nanosecond timestamps in --format pcap")
		splitBy  = fs.String("split-by", "", "`vn`: one output file per VN pair, both directions together, OUT is a directory; vn-direction: one per source -> destination")
		rejects  = fs.String("rejects", "", "write packets that fail to decode, as captured, to `FILE` (pcapng)")
		jsonOut  = fs.Bool("json", false, "print the summary as JSON on stdout (or stderr when OUT is -)")
		quiet    = fs.Bool("quiet", false, "no summary")
		progress = fs.Bool("progress", isTerminal(os.Stderr), "progress line on stderr")
		maxIfs   = fs.Int("max-interfaces", pcapfile.DefaultMaxInterfaces, "most distinct interfaces a pcapng input may describe (`N`)")
	)
	dec.register(fs)
	flt.register(fs)
	if err := fs.Parse(args); err != nil {
		return usageCode(err)
	}
	if fs.NArg() < 2 {
		fs.Usage()
		return usageErr("decap", "want IN and OUT")
	}
	inName, outName := fs.Arg(0), fs.Arg(1)
	if rest := fs.Args()[2:]; len(rest) > 0 {
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
	flt2, err := filter.New(flt.o)
	if err != nil {
		return usageErr("decap", err.Error())
	}
	if *maxIfs < 1 {
		return usageErr("decap", fmt.Sprintf("--max-interfaces %d: want at least 1", *maxIfs))
	}
	opts := decap.Options{Format: f, Nanosecond: *nanos, Decoder: cfg, Filter: flt2, Split: split, MaxInterfaces: *maxIfs}
	if *progress && !*quiet {
		opts.Progress = os.Stderr
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	stats, runErr := decap.RunFiles(ctx, decap.Files{In: inName, Out: outName, Rejects: *rejects}, opts)
	if se := (*decap.SameFileError)(nil); errors.As(runErr, &se) {
		return usageErr("decap", se.Error())
	}
	sum := stats.Summary()
	// A run that failed before reading anything has no summary to give.
	if !*quiet && (runErr == nil || sum.Read > 0) {
		if *jsonOut {
			w := os.Stdout
			if outName == "-" {
				w = os.Stderr
			}
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(sum)
		} else {
			printSummary(os.Stderr, &sum)
		}
	}
	if runErr != nil {
		if errors.Is(runErr, pcapfile.ErrInterfaceLimit) {
			runErr = fmt.Errorf("%w; see --max-interfaces", runErr)
		}
		return fail("decap", runErr)
	}
	if malformed(&sum) > 0 || len(sum.CandidatePorts) > 0 {
		return exitPartial
	}
	return exitOK
}

// malformed counts packets that failed to decode, leaving out non-mirror
// traffic dropped on request.
func malformed(s *pipeline.Summary) uint64 {
	return s.TotalMalformed() - s.Malformed[mirror.ErrNotMirror.String()]
}

func printSummary(w io.Writer, s *pipeline.Summary) {
	fmt.Fprintf(w, "%d packets read (%d bytes)", s.Read, s.ReadBytes)
	if s.Merged > 0 {
		fmt.Fprintf(w, ", %d outer fragments merged", s.Merged)
	}
	if s.Duplicates > 0 {
		fmt.Fprintf(w, ", %d duplicate fragments", s.Duplicates)
	}
	fmt.Fprintln(w)
	var dec []string
	var total uint64
	var onPorts uint64
	for _, c := range s.CandidatePorts {
		onPorts += c.Count
	}
	for _, m := range mirror.Modes() {
		if n := s.Decoded[m.String()]; n > 0 {
			d := fmt.Sprintf("%d %s", n, m)
			if m == mirror.ModeOther && onPorts > 0 {
				d += fmt.Sprintf(", %d of them mirror traffic on a port not decoded", onPorts)
			}
			if m == mirror.ModeJuniper && len(s.Overlays) > 0 {
				var in []string
				for _, o := range slices.Sorted(maps.Keys(s.Overlays)) {
					in = append(in, fmt.Sprintf("%d in %s", s.Overlays[o], o))
				}
				d += " (" + strings.Join(in, ", ") + ")"
			}
			dec = append(dec, d)
			total += n
		}
	}
	fmt.Fprintf(w, "%d decoded", total)
	if len(dec) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(dec, ", "))
	}
	fmt.Fprintf(w, ", %d filtered out, %d written", s.Filtered, s.Written)
	if s.Truncated > 0 {
		fmt.Fprintf(w, ", %d truncated by the snap length", s.Truncated)
	}
	if s.SinkErrs > 0 {
		fmt.Fprintf(w, ", %d not writable in this format", s.SinkErrs)
	}
	fmt.Fprintln(w)
	if s.TimeClamped > 0 {
		fmt.Fprintf(w, "%d timestamps out of range (before 1970 or after 2262), clamped\n", s.TimeClamped)
	}
	if n := s.TotalMalformed(); n > 0 {
		var rs []string
		for _, r := range mirror.Reasons() {
			if c := s.Malformed[r.String()]; c > 0 {
				rs = append(rs, fmt.Sprintf("%d %s", c, r))
			}
		}
		fmt.Fprintf(w, "%d not decoded (%s)\n", n, strings.Join(rs, ", "))
	}
	printHints(w, s)
	if len(s.Pairs) > 0 {
		fmt.Fprintln(w, "top VN pairs decoded, before filters (source -> destination):")
		for i, p := range s.Pairs {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more\n", len(s.Pairs)-10)
				break
			}
			fmt.Fprintf(w, "  %10d  %s -> %s\n", p.Packets, orDash(p.SrcVN), orDash(p.DstVN))
		}
	}
}

// printHints tells the user what would decode more of the input.
func printHints(w io.Writer, s *pipeline.Summary) {
	for _, c := range s.CandidatePorts {
		fmt.Fprintf(w, "UDP port %d carries mirror traffic (%d datagrams): decode it with --port %d (or --port auto)\n", c.Port, c.Count, c.Port)
	}
	if s.ShortSnap > 0 {
		fmt.Fprintf(w, "%d mirror datagrams were cut by the snap length inside their metadata: capture with a larger snap length (tcpdump -s 0)\n", s.ShortSnap)
	}
	var mirrored uint64
	for m, n := range s.Decoded {
		if m != mirror.ModeOther.String() {
			mirrored += n
		}
	}
	if s.Read > 0 && mirrored == 0 && s.TotalMalformed()-s.Malformed[mirror.ErrNotMirror.String()] == 0 && len(s.CandidatePorts) == 0 {
		fmt.Fprintln(w, "no mirror traffic found: check the mirror's UDP port (--port, --vxlan-port) or --mirror-vlan")
	}
}

// orDash shows a VN name as comments do, and "-" for none.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return string(mirror.AppendName(nil, []byte(s)))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func usageErr(cmd, msg string) int {
	fmt.Fprintf(os.Stderr, "vrsniff %s: %s\n", cmd, msg)
	return exitUsage
}

func fail(cmd string, err error) int {
	fmt.Fprintf(os.Stderr, "vrsniff %s: %v\n", cmd, err)
	return exitFailure
}
