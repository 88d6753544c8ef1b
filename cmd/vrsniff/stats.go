package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/vrsniff/vrsniff/internal/extract"
)

const statsUsage = `usage: vrsniff stats [--json] [--top N] [--pairs N] FILE...

Summarizes capture files (pcap or pcapng) as capinfos does, taken together:
packets, bytes, first and last packet, duration, rates, interfaces with the
drops their statistics blocks report, the VN pairs of vrsniff's metadata
comments (packets and bytes per source -> destination), and the busiest
conversations of the inner frames (protocol, addresses and ports, both
directions together).

Exit status: 0 done, 1 a file could not be opened, 2 usage, 3 done but a
file could not be read to its end (what was read is counted).

flags:
`

func runStats(args []string) int {
	fs := newFlagSet("stats", statsUsage)
	var (
		jsonOut = fs.Bool("json", false, "print the summary as JSON")
		top     = fs.Int("top", 10, "conversations listed (`N`)")
		pairs   = fs.Int("pairs", 20, "VN pairs listed (`N`), busiest first")
	)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return usageErr("stats", "want at least one FILE (see vrsniff stats --help)")
	}
	if *top < 0 || *pairs < 0 {
		return usageErr("stats", "--top and --pairs must not be negative")
	}
	s, err := extract.Summarize(fs.Args(), *top)
	if err != nil {
		return fail("stats", err)
	}
	if len(s.Pairs) > *pairs {
		for _, p := range s.Pairs[*pairs:] {
			s.PairsOther += p.Packets
		}
		s.Pairs = s.Pairs[:*pairs]
	}
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return fail("stats", err)
		}
	} else {
		s.Print(os.Stdout)
	}
	for _, u := range s.Unreadable {
		fmt.Fprintf(os.Stderr, "vrsniff stats: %s\n", u)
	}
	if len(s.Unreadable) > 0 {
		return exitPartial
	}
	return exitOK
}
