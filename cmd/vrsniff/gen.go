package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

func runGen(args []string) int {
	fs := newFlagSet("gen", "")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vrsniff gen [flags] OUT   (OUT - is stdout)\n\n"+
			"Writes a synthetic vRouter mirror capture and, with --truth, what a decoder must make of\n"+
			"every packet (docs/gen.md). Profiles: %s.\nCase kinds for --mix: %s.\nScenarios for --scenario:\n",
			strings.Join(gen.ProfileNames(), ", "), gen.KindList())
		for _, n := range gen.ScenarioNames() {
			fmt.Fprintf(fs.Output(), "  %s: %s\n", n, gen.Scenarios[n].Doc)
		}
		fmt.Fprintf(fs.Output(), "\nflags:\n")
		fmt.Fprint(fs.Output(), fs.FlagUsages())
	}
	var traffic trafficFlags
	var (
		seed      = fs.Uint64("seed", 1, "random seed")
		count     = fs.Int("count", 1000, "number of cases (mirrored frames) to write")
		profile   = fs.String("profile", "mixed", "named mix of case kinds")
		mix       = fs.String("mix", "", "mix of case kinds, e.g. acl=3,port=1 (overrides --profile)")
		format    = fs.String("format", "pcap", "output format: pcap or pcapng")
		nanos     = fs.Bool("nanos", false, "nanosecond timestamps in classic pcap")
		snaplen   = fs.Int("snaplen", 262144, "capture snap length")
		mtu       = fs.Int("mtu", 1500, "outer MTU; larger datagrams are IP fragmented")
		malformed = fs.Float64("malformed", 0, "fraction of cases (0..1) replaced by malformed ones")
		truth     = fs.String("truth", "", "write the expected decode results to this file, one JSON object per line")
		linktype  = fs.String("linktype", "", "outer link type: ether, sll, sll2, raw or mixed (default ether for pcap, mixed for pcapng)")
		minFrame  = fs.Int("min-frame", 64, "smallest inner frame")
		maxFrame  = fs.Int("max-frame", 9000, "largest inner frame")
		maxVN     = fs.Int("max-vn", 255, "longest VN name")
		varyNames = fs.Bool("vary-seed-names", false, "seed114 cases use varied VN names (54 bytes together)")
		maxDist   = fs.Int("max-dist", 4, "reassembly distance the id-reuse and dup-fragment cases are built around (1..64)")
		sizes     = fs.String("frame-sizes", "", "inner frame sizes in turn, SIZE[=CASES],...: 64=9,1514 is one full-size frame in ten (overrides --min-frame, --max-frame)")
		vns       = fs.String("vn", "", "comma-separated VN names the metadata draws from (default: a built-in pool)")
		numbered  = fs.Bool("numbered", false, "write each case's number in its inner frames' source MAC, 02:4e:NN:NN:NN:NN")
		flows     = fs.Int("flows", 0, "draw the inner TCP and UDP frames' addresses and ports from `N` flows, the busiest first (Zipf), so that flows have many packets (0: every frame random)")
		scenario  = fs.String("scenario", "", "write a scripted capture instead of random cases: VMs talking, as an operator records it (lab); --count defaults to one run of it")
	)
	traffic.register(fs, gen.DefaultMirrorVLAN, [3]string{
		"UDP `port` of the Juniper-header mirror datagrams",
		"VXLAN UDP `port`",
		"NIC-assisted mirror `VLAN` ID, 1-4094",
	})
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *scenario != "" && !fs.Changed("count") {
		*count = 0 // one run of the scenario
	}
	if fs.NArg() != 1 {
		return usageErr("gen", "want one OUT (see vrsniff gen --help)")
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "vrsniff gen: "+format+"\n", a...)
		return exitUsage
	}
	t, err := traffic.parse()
	if err != nil {
		return usageErr("%v", err)
	}
	if t.MirrorVLAN == 0 {
		return usageErr("%s 0: the VLAN cases need a VLAN ID, 1-4094", mirror.Flags.MirrorVLAN)
	}
	var frameSizes []int
	if *sizes != "" {
		if frameSizes, err = gen.ParseFrameSizes(*sizes); err != nil {
			return usageErr("%v", err)
		}
	}
	var vnList []string
	if *vns != "" {
		vnList = strings.Split(*vns, ",")
	}
	c := gen.Command{
		Options: gen.Options{
			Seed: *seed, Malformed: *malformed, Snaplen: *snaplen, MTU: *mtu,
			Traffic:  t,
			MinFrame: *minFrame, MaxFrame: *maxFrame, MaxVN: *maxVN, VarySeedNames: *varyNames, MaxDist: *maxDist,
			FrameSizes: frameSizes, VNs: vnList, Numbered: *numbered, Flows: *flows, Scenario: *scenario,
		},
		Count: *count, Profile: *profile, MixSpec: *mix, Format: *format, Nanos: *nanos, LinkTypeName: *linktype,
		Out: fs.Arg(0), Truth: *truth,
	}
	g, f, err := c.Prepare()
	if err != nil {
		return usageErr("%v", err)
	}
	summary, err := c.Write(g, f, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vrsniff gen: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(os.Stderr, "vrsniff gen: %s\n", summary)
	return exitOK
}
