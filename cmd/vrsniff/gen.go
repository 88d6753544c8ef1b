package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/gen"
)

var linkTypes = map[string]layers.LinkType{
	"ether": layers.LinkTypeEthernet,
	"sll":   layers.LinkTypeLinuxSLL,
	"sll2":  layers.LinkTypeLinuxSLL2,
	"raw":   layers.LinkTypeRaw,
	"mixed": 0,
}

func runGen(args []string) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vrsniff gen [flags] OUT   (OUT - is stdout)\n\n"+
			"Writes a synthetic vRouter mirror capture and, with -truth, what a decoder must make of\n"+
			"every packet (docs/gen.md). Profiles: %s.\nCase kinds for -mix: %s.\n\nflags:\n",
			strings.Join(gen.ProfileNames(), ", "), kindList())
		fs.PrintDefaults()
	}
	var (
		seed      = fs.Uint64("seed", 1, "random seed")
		count     = fs.Int("count", 1000, "number of cases (mirrored frames) to write")
		profile   = fs.String("profile", "mixed", "named mix of case kinds")
		mix       = fs.String("mix", "", "mix of case kinds, e.g. acl=3,port=1 (overrides -profile)")
		format    = fs.String("format", "pcap", "output format: pcap or pcapng")
		nanos     = fs.Bool("nanos", false, "nanosecond timestamps in classic pcap")
		snaplen   = fs.Int("snaplen", 262144, "capture snap length")
		mtu       = fs.Int("mtu", 1500, "outer MTU; larger datagrams are IP fragmented")
		port      = fs.Uint("port", 8099, "UDP port of the Juniper-header mirror datagrams")
		vxlanPort = fs.Uint("vxlan-port", 4789, "VXLAN UDP port")
		vlan      = fs.Uint("mirror-vlan", 999, "NIC-assisted mirror VLAN")
		malformed = fs.Float64("malformed", 0, "fraction of cases (0..1) replaced by malformed ones")
		truth     = fs.String("truth", "", "write the expected decode results to this file, one JSON object per line")
		linktype  = fs.String("linktype", "", "outer link type: ether, sll, sll2, raw or mixed (default ether for pcap, mixed for pcapng)")
		minFrame  = fs.Int("min-frame", 64, "smallest inner frame")
		maxFrame  = fs.Int("max-frame", 9000, "largest inner frame")
		maxVN     = fs.Int("max-vn", 255, "longest VN name")
		varyNames = fs.Bool("vary-seed-names", false, "seed114 cases use varied VN names (54 bytes together)")
		maxDist   = fs.Int("max-dist", 4, "reassembly distance the id-reuse and dup-fragment cases are built around (1..64)")
		sizes     = fs.String("frame-sizes", "", "inner frame sizes in turn, SIZE[=CASES],...: 64=9,1514 is one full-size frame in ten (overrides -min-frame, -max-frame)")
		vns       = fs.String("vn", "", "comma-separated VN names the metadata draws from (default: a built-in pool)")
		numbered  = fs.Bool("numbered", false, "write each case's number in its inner frames' source MAC, 02:4e:NN:NN:NN:NN")
	)
	if err := fs.Parse(args); err != nil {
		return usageCode(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "vrsniff gen: "+format+"\n", a...)
		return exitUsage
	}
	var f gen.Format
	switch *format {
	case "pcap":
		f = gen.FormatPcap
		if *nanos {
			f = gen.FormatPcapNanos
		}
	case "pcapng":
		f = gen.FormatPcapNG
	default:
		return usageErr("unknown format %q: want pcap or pcapng", *format)
	}
	lt := *linktype
	if lt == "" {
		lt = "mixed"
		if f != gen.FormatPcapNG {
			lt = "ether"
		}
	}
	ltv, ok := linkTypes[lt]
	if !ok {
		return usageErr("unknown link type %q: want ether, sll, sll2, raw or mixed", lt)
	}
	if ltv == 0 && f != gen.FormatPcapNG {
		return usageErr("a classic pcap file holds one link type: -linktype mixed needs -format pcapng")
	}
	if *port == 0 || *port > 65535 || *vxlanPort == 0 || *vxlanPort > 65535 {
		return usageErr("ports must be 1..65535")
	}
	if *vlan == 0 || *vlan > 4094 {
		return usageErr("mirror VLAN must be 1..4094")
	}
	if *count < 0 {
		return usageErr("negative count")
	}
	if *maxDist < 1 {
		return usageErr("reassembly distance %d: want 1..64", *maxDist)
	}
	var frameSizes []int
	if *sizes != "" {
		var err error
		if frameSizes, err = gen.ParseFrameSizes(*sizes); err != nil {
			return usageErr("%v", err)
		}
	}
	var vnList []string
	if *vns != "" {
		vnList = strings.Split(*vns, ",")
	}
	m, ok := gen.Profiles[*profile]
	if !ok {
		return usageErr("unknown profile %q (known: %s)", *profile, strings.Join(gen.ProfileNames(), ", "))
	}
	if *mix != "" {
		var err error
		if m, err = gen.ParseMix(*mix); err != nil {
			return usageErr("%v", err)
		}
	}
	g, err := gen.New(gen.Options{
		Seed: *seed, Mix: m, Malformed: *malformed, Snaplen: *snaplen, MTU: *mtu,
		Port: uint16(*port), VXLANPort: uint16(*vxlanPort), MirrorVLAN: uint16(*vlan), LinkType: ltv,
		MinFrame: *minFrame, MaxFrame: *maxFrame, MaxVN: *maxVN, VarySeedNames: *varyNames, MaxDist: *maxDist,
		FrameSizes: frameSizes, VNs: vnList, Numbered: *numbered,
	})
	if err != nil {
		return usageErr("%v", err)
	}

	out := fs.Arg(0)
	var w io.Writer = os.Stdout
	var file *os.File
	if out != "-" {
		if file, err = os.Create(out); err != nil {
			fmt.Fprintf(os.Stderr, "vrsniff gen: %v\n", err)
			return exitFailure
		}
		defer file.Close()
		w = file
	}
	var tw io.Writer
	var tf *os.File
	if *truth != "" {
		if tf, err = os.Create(*truth); err != nil {
			fmt.Fprintf(os.Stderr, "vrsniff gen: %v\n", err)
			return exitFailure
		}
		defer tf.Close()
		tw = tf
	}
	st, err := gen.Write(w, tw, g, *count, f)
	if err == nil && file != nil {
		err = file.Close()
	}
	if err == nil && tf != nil {
		err = tf.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vrsniff gen: %s: %v\n", out, err)
		return exitFailure
	}
	fmt.Fprintf(os.Stderr, "vrsniff gen: %s: %d cases, %d packets (%d fragmented datagrams, %d malformed), profile %s, seed %d, %s\n",
		out, st.Cases, st.Packets, st.Fragmented, st.Malformed, *profile, *seed, f)
	return exitOK
}

func kindList() string {
	var ks []string
	for _, k := range gen.Kinds() {
		ks = append(ks, k.String())
	}
	return strings.Join(ks, ", ")
}
