package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vrsniff/vrsniff/internal/decap"
	"github.com/vrsniff/vrsniff/internal/extract"
	"github.com/vrsniff/vrsniff/internal/filter"
)

const extractUsage = `usage: vrsniff extract --dir DIR --since T1 [--until T2] [filter flags] [-w FILE|-] [inner filter expression]

Writes the packets that vrsniff capture stored in DIR between T1 and T2
([T1, T2): T1 included, T2 not) as one pcapng, merged from every file that
overlaps the window, the file still being written included, in time order,
with their metadata comments. Files are chosen by the times in their
sidecars; files removed by retention while the extract runs are skipped
with a warning.

Times are RFC 3339 (2026-03-01T12:00:00Z, 2026-03-01T13:00:00.5+01:00),
"now", or relative to now: -15m, -1h30m, -90s. --until defaults to now.

  vrsniff extract --dir /var/lib/vrsniff --since -15m --vn vn-web -w web.pcapng
  vrsniff extract --dir /var/lib/vrsniff --since 2026-03-01T12:00:00Z --until 2026-03-01T12:05:00Z \
      -w - tcp port 443 | wireshark -k -i -

Words after the flags form a tcpdump expression applied to the inner frames
(the same as --bpf). FILE is written under a temporary name and renamed
into place at the end: a run that fails leaves an existing FILE as it was.
A FILE that is one of the capture files is refused. Without -w the pcapng
goes to standard output, unless that is a terminal.

Exit status: 0 done, 1 failure, 2 usage, 3 done but some files were
skipped (removed meanwhile, unreadable, cut short; see the warnings).

flags:
`

func runExtract(args []string) int {
	fs := newFlagSet("extract", extractUsage)
	var (
		flt     filterFlags
		dir     = fs.String("dir", "", "capture `directory` (vrsniff capture --dir)")
		since   = fs.String("since", "", "start of the window (`time`, included)")
		until   = fs.String("until", "now", "end of the window (`time`, excluded)")
		out     = fs.StringP("write", "w", "-", "output `FILE` (pcapng), - for standard output")
		maxOpen = fs.Int("max-open", extract.DefaultMaxOpen, "most capture files open at once (`N`), 64 KiB of buffer each; more files overlapping one instant is an error")
		quiet   = fs.Bool("quiet", false, "no summary on standard error")
	)
	flt.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if err := flt.trailing(fs.Args()); err != nil {
		return usageErr("extract", err.Error())
	}
	if *dir == "" || *since == "" {
		return usageErr("extract", "want --dir and --since (see vrsniff extract --help)")
	}
	t1, t2, err := extract.ParseWindow(*since, *until, time.Now())
	if err != nil {
		return usageErr("extract", err.Error())
	}
	if *maxOpen < 1 {
		return usageErr("extract", fmt.Sprintf("--max-open %d: want at least 1", *maxOpen))
	}
	f, err := filter.New(flt.o)
	if err != nil {
		return usageErr("extract", err.Error())
	}
	if *out == "-" && isTerminal(os.Stdout) {
		return usageErr("extract", "standard output is a terminal: give -w FILE, or pipe it")
	}
	srcs, err := extract.Dir(*dir)
	if err != nil {
		return fail("extract", err)
	}
	if *out != "-" {
		for _, s := range srcs {
			for _, p := range s.Paths {
				if decap.SamePath(*out, p) {
					return usageErr("extract", fmt.Sprintf("output %s and capture file %s are the same file: refusing to write over it", *out, p))
				}
			}
		}
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o := extract.Options{Since: t1, Until: t2, Filter: f, MaxOpen: *maxOpen, Application: "vrsniff extract", Log: log}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	st, err := writeExtract(ctx, *out, srcs, o)
	if err != nil {
		return fail("extract", err)
	}
	if !*quiet {
		fmt.Fprintf(os.Stderr, "%d packets of %d in the window, from %d files (%d outside it not opened), %s to %s\n",
			st.Written, st.Read, st.Files, st.Skipped, t1.Format(time.RFC3339Nano), t2.Format(time.RFC3339Nano))
		if n := st.Warnings(); n > 0 {
			fmt.Fprintf(os.Stderr, "%d files skipped or cut short: %d removed meanwhile, %d unreadable\n", n, st.Vanished, st.Broken)
		}
	}
	if st.Warnings() > 0 {
		return exitPartial
	}
	return exitOK
}

// writeExtract writes the extract to standard output ("-") or, safely, to
// the file name.
func writeExtract(ctx context.Context, name string, srcs []extract.Source, o extract.Options) (extract.Stats, error) {
	if name == "-" {
		return extract.Write(ctx, os.Stdout, srcs, o)
	}
	f, err := decap.Create(name)
	if err != nil {
		return extract.Stats{}, err
	}
	st, err := extract.Write(ctx, io.Writer(f), srcs, o)
	if err == nil {
		err = f.Commit()
	} else {
		f.Abort()
	}
	if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted: nothing written")
	}
	return st, err
}
