package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/vrsniff/vrsniff/internal/decap"
	"github.com/vrsniff/vrsniff/internal/extract"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/query"
)

// storeFlags are the flags that name a fleet's bucket and how to reach it,
// shared by capture, query and store.
type storeFlags struct{ c objstore.Config }

func (s *storeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.c.URL, "store", "", "the fleet's bucket: `s3://BUCKET/PREFIX` (docs/fleet.md)")
	fs.StringVar(&s.c.Endpoint, "s3-endpoint", "", "S3 `endpoint`: https://host:port, http://host:port or host:port (HTTPS); default $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS")
	fs.StringVar(&s.c.Region, "s3-region", "", "S3 `region` (default $AWS_REGION, $AWS_DEFAULT_REGION, else "+objstore.DefaultRegion+")")
	fs.StringVar(&s.c.CredentialsFile, "s3-credentials", "", "AWS shared credentials `file` (default $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials; keys in $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY come first unless this is given)")
	fs.StringVar(&s.c.Profile, "s3-profile", "", "`profile` of the credentials file (default $AWS_PROFILE, else default)")
	fs.StringVar(&s.c.CACert, "s3-ca", "", "PEM `file` of CA certificates trusted for the endpoint beside the system's")
}

// open opens the bucket; "" (no --store) is a usage error of cmd.
func (s *storeFlags) open(ctx context.Context) (*objstore.Store, error) {
	return objstore.Open(ctx, s.c)
}

// check refuses, before anything is opened, a --store or --s3-endpoint
// that no bucket could answer to: a usage error.
func (s *storeFlags) check() error {
	if _, err := objstore.ParseURL(s.c.URL); err != nil {
		return fmt.Errorf("--store %q: %v", s.c.URL, err)
	}
	if scheme, _, ok := strings.Cut(s.c.Endpoint, "://"); ok && scheme != "http" && scheme != "https" {
		return fmt.Errorf("--s3-endpoint %q: want https://host:port, http://host:port or host:port", s.c.Endpoint)
	}
	return nil
}

const storeUsage = `usage: vrsniff store <ls|prune> --store s3://BUCKET/PREFIX [flags]

  ls      list the fleet's sniffers, hours, files and sizes
  prune   delete the hours older than --older-than, whole (no lifecycle rules needed)

Run "vrsniff store <sub-command> -h" for its flags.
`

func runStore(args []string) int {
	if len(args) == 0 {
		return usageErr("store", "want a sub-command: ls or prune (see vrsniff store --help)")
	}
	switch args[0] {
	case "ls":
		return storeLs(args[1:])
	case "prune":
		return storePrune(args[1:])
	case "help":
		if len(args) > 1 {
			return runStore([]string{args[1], "--help"})
		}
		fmt.Fprint(os.Stdout, storeUsage)
		return exitOK
	case "-h", "--help", "-help":
		fmt.Fprint(os.Stdout, storeUsage)
		return exitOK
	}
	return usageErr("store", fmt.Sprintf("unknown sub-command %q (see vrsniff store --help)", args[0]))
}

func storeLs(args []string) int {
	fs := newFlagSet("store ls", "usage: vrsniff store ls --store s3://BUCKET/PREFIX [--json] [flags]\n\nLists the fleet's sniffers (their records: API, version, last seen; stale after a day), hours, files and sizes.\n\nflags:\n")
	var sf storeFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageErr("store ls", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if sf.c.URL == "" {
		return usageErr("store ls", "want --store s3://BUCKET/PREFIX")
	}
	if err := sf.check(); err != nil {
		return usageErr("store ls", err.Error())
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	st, err := sf.open(ctx)
	if err != nil {
		return fail("store ls", err)
	}
	l, err := st.Ls(ctx, time.Now())
	if err != nil {
		return fail("store ls", err)
	}
	if *asJSON {
		err = l.WriteJSON(os.Stdout)
	} else {
		err = l.Print(os.Stdout)
	}
	if err != nil {
		return fail("store ls", err)
	}
	return exitOK
}

func storePrune(args []string) int {
	fs := newFlagSet("store prune", "usage: vrsniff store prune --store s3://BUCKET/PREFIX --older-than AGE [--dry-run] [--sniffers]\n\nDeletes, whole, every hour of stored captures that ended more than AGE ago (7d, 36h, 90m):\ncaptures, flow indexes and manifests, and the hours' unfinished uploads.\n\nflags:\n")
	var sf storeFlags
	sf.register(fs)
	older := fs.String("older-than", "", "`age` of the hours to delete: a Go duration or N days (7d)")
	dry := fs.Bool("dry-run", false, "say what would be deleted, delete nothing")
	sniffers := fs.Bool("sniffers", false, "also delete the records of sniffers not seen within AGE")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageErr("store prune", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if sf.c.URL == "" || *older == "" {
		return usageErr("store prune", "want --store s3://BUCKET/PREFIX and --older-than AGE")
	}
	if err := sf.check(); err != nil {
		return usageErr("store prune", err.Error())
	}
	age, err := parseAge(*older)
	if err != nil {
		return usageErr("store prune", fmt.Sprintf("--older-than %q: %v", *older, err))
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	st, err := sf.open(ctx)
	if err != nil {
		return fail("store prune", err)
	}
	before := time.Now().Add(-age)
	res, err := st.Prune(ctx, before, *dry)
	if err != nil {
		return fail("store prune", err)
	}
	var gone []objstore.Sniffer
	if *sniffers {
		if gone, err = st.PruneSniffers(ctx, before, *dry); err != nil {
			return fail("store prune", err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			objstore.PruneResult
			Sniffers []objstore.Sniffer `json:"sniffers_removed"`
		}{res, gone}); err != nil {
			return fail("store prune", err)
		}
		return exitOK
	}
	verb := "deleted"
	if *dry {
		verb = "would delete"
	}
	fmt.Printf("%s %d hours before %s: %d objects, %d bytes, %d unfinished uploads\n", verb, len(res.Hours),
		before.UTC().Format(time.RFC3339), res.Objects, res.Bytes, res.Uploads)
	for _, s := range gone {
		fmt.Printf("%s sniffer record %s (last seen %s)\n", verb, s.ID, s.LastSeen.UTC().Format(time.RFC3339))
	}
	return exitOK
}

// parseAge reads a Go duration, or a whole number of days ("7d").
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || fmt.Sprint(days) != n || days < 0 {
			return 0, errors.New("want N days (7d) or a duration (36h)")
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errors.New("want N days (7d) or a duration (36h)")
		}
	}
	if d <= 0 {
		return 0, errors.New("want a positive age")
	}
	return d, nil
}

const queryUsage = `usage: vrsniff query --store s3://BUCKET/PREFIX --since T1 [--until T2] [filter flags] [-w FILE|-] [expression]

Finds the packets of the window [T1, T2) across every sniffer of the fleet
that the filter keeps, and writes them as one pcapng, in time order, with
their metadata comments. Only the stored files whose manifests overlap the
window are read, and of those, with a flow index and an expression naming
hosts or ports (or --community-id), only the byte ranges of the flows that
may match (docs/fleet.md, "Query").

Times are as for vrsniff extract: RFC 3339, "now", or relative (-15m).

  vrsniff query --store s3://captures/fleet --since -1h 'host 10.0.2.3 and port 80' | wireshark -k -i -
  vrsniff query --store s3://captures/fleet --since -1h --sniffer sniffer-a,sniffer-b --vn vn-web -w web.pcapng

Exit status: 0 done, 1 failure, 2 usage, 3 done but some files were
skipped (unreadable or cut short; see the warnings).

flags:
`

func runQuery(args []string) int {
	fs := newFlagSet("query", queryUsage)
	var (
		sf       storeFlags
		flt      filterFlags
		since    = fs.String("since", "", "start of the window (`time`, included)")
		until    = fs.String("until", "now", "end of the window (`time`, excluded)")
		sniffers = fs.StringSlice("sniffer", nil, "read only these `sniffers` (comma separated or repeated); default all")
		cid      = fs.String("community-id", "", "keep the packets of one flow, both directions, by its Community ID (v1, seed 0: `1:…`)")
		out      = fs.StringP("write", "w", "-", "output `FILE` (pcapng), - for standard output")
		parallel = fs.Int("parallel", query.DefaultParallel, "range GETs in flight at once (`N`)")
		maxOpen  = fs.Int("max-open", extract.DefaultMaxOpen, "most stored files merged at once (`N`); more overlapping one instant is an error")
		quiet    = fs.Bool("quiet", false, "no progress or summary on standard error")
		noIndex  = fs.Bool("no-index", false, "read every stored file of the window whole, without its flow index (the same answer, more bytes)")
		gap      = sizeFlag(query.DefaultGap)
		maxGet   = sizeFlag(query.DefaultMaxRange)
	)
	fs.Var(&gap, "gap", "read through gaps up to this `size` between needed records in one GET rather than starting another (a GET costs about what its latency would transfer)")
	fs.Var(&maxGet, "max-get", "most bytes one range GET reads (`size`)")
	sf.register(fs)
	flt.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if err := flt.trailing(fs.Args()); err != nil {
		return usageErr("query", err.Error())
	}
	if sf.c.URL == "" || *since == "" {
		return usageErr("query", "want --store and --since (see vrsniff query --help)")
	}
	t1, t2, err := extract.ParseWindow(*since, *until, time.Now())
	if err != nil {
		return usageErr("query", err.Error())
	}
	if err := sf.check(); err != nil {
		return usageErr("query", err.Error())
	}
	if *parallel < 1 || *maxOpen < 1 || maxGet < 1 || gap < 0 {
		return usageErr("query", "--parallel, --max-open and --max-get must be at least 1, --gap not negative")
	}

	if *out == "-" && isTerminal(os.Stdout) {
		return usageErr("query", "standard output is a terminal: give -w FILE, or pipe it")
	}
	q := query.Query{Since: t1, Until: t2, Filter: flt.o, Sniffers: *sniffers, CommunityID: *cid}
	if err := q.Check(); err != nil {
		return usageErr("query", strings.TrimPrefix(err.Error(), "query: bad query: "))
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	st, err := sf.open(ctx)
	if err != nil {
		return fail("query", err)
	}
	o := query.FleetOptions()
	o.Parallel, o.MaxOpen, o.Application = *parallel, *maxOpen, "vrsniff query"
	o.Gap, o.MaxRange = int64(gap), int64(maxGet)
	if gap == 0 {
		o.Gap = -1 // none: Options takes 0 for the default
	}
	if *noIndex {
		o.OpenIndex = nil
	}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if !*quiet && isTerminal(os.Stderr) {
		o.Progress = func(p query.Progress) {
			fmt.Fprintf(os.Stderr, "\r%d/%d files, %s read ", p.FilesDone, p.Files, objstore.Size(p.Bytes))
		}
	}

	var qs query.Stats
	if *out == "-" {
		qs, err = query.Run(ctx, st, q, os.Stdout, o)
	} else {
		var f *decap.File
		if f, err = decap.Create(*out); err == nil {
			if qs, err = query.Run(ctx, st, q, f, o); err == nil {
				err = f.Commit()
			} else {
				f.Abort()
			}
		}
	}
	if o.Progress != nil {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return fail("query", err)
	}
	if !*quiet {
		fmt.Fprintf(os.Stderr, "%d packets; %d stored files in the window, %d looked up in their flow index, %d read; %s of captures in %d requests, %s of indexes\n",
			qs.Packets, qs.Kept, qs.Indexed, qs.Files, objstore.Size(qs.PcapBytes), qs.Ranges, objstore.Size(qs.IndexBytes))
		if n := qs.Extract.Warnings(); n > 0 {
			fmt.Fprintf(os.Stderr, "%d files skipped or cut short: see the warnings\n", n)
		}
	}
	if qs.Extract.Warnings() > 0 {
		return exitPartial
	}
	return exitOK
}
