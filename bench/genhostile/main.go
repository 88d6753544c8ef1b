// Command genhostile builds the attack traffic of bench/hostile.sh and
// measures what it does to a running vrsniff capture daemon.
//
//	genhostile junkfrag -o FILE [-n N]           first IP fragments of datagrams that never complete
//	genhostile vnpairs -o FILE -n N              mirror datagrams, each with its own made-up VN pair
//	genhostile repeat -o FILE -size SIZE SEED    a pcap's records repeated up to SIZE bytes
//	genhostile count -sent N DIR...              the numbered frames (vrsniff gen -numbered) found whole in capture files
//	genhostile streams -url URL -n N [-read=false] -for D   live stream clients
//	genhostile headers -addr ADDR -conns N -bytes SIZE      requests with oversized headers
//	genhostile bpf -url URL -expr-file FILE -others N       one huge filter while others attach
//	genhostile watch (-pid PID | -- CMD ARGS...)           peak memory and descriptors of a process
//
// Every subcommand prints one line of key=value pairs for the script to
// read.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

type command struct {
	run  func(args []string) error
	help string
}

var commands = map[string]command{
	"junkfrag": {junkfrag, "first IP fragments of datagrams that never complete"},
	"vnpairs":  {vnpairs, "mirror datagrams with made-up VN pairs"},
	"repeat":   {repeat, "a pcap's records repeated up to a size"},
	"count":    {count, "numbered frames (vrsniff gen -numbered) found whole in capture files"},
	"streams":  {streams, "live stream clients, reading or not"},
	"headers":  {headers, "connections sending oversized request headers"},
	"bpf":      {bpf, "one stream with a huge filter while others attach"},
	"watch":    {watch, "peak memory and descriptors of a process"},
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]].run == nil {
		fmt.Fprintln(os.Stderr, "usage: genhostile COMMAND [flags]; commands:")
		for _, name := range []string{"junkfrag", "vnpairs", "repeat", "count", "streams", "headers", "bpf", "watch"} {
			fmt.Fprintf(os.Stderr, "  %-9s %s\n", name, commands[name].help)
		}
		os.Exit(2)
	}
	if err := commands[os.Args[1]].run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "genhostile %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// parseSize reads a byte count with an optional K, M or G suffix (powers
// of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// sizeFlag is a flag.Value for parseSize.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	*s = sizeFlag(n)
	return err
}
