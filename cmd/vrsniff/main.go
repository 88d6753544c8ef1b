// Command vrsniff decodes, captures and sets up Contrail / Tungsten Fabric
// vRouter traffic mirroring.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Exit codes, shared by every subcommand.
const (
	exitOK      = 0 // done, nothing lost
	exitFailure = 1 // could not run: bad input file, I/O error, API error
	exitUsage   = 2 // bad command line
	exitPartial = 3 // ran to the end, but not all of it: malformed packets (decap), files skipped (extract, stats)
)

type command struct {
	name  string
	short string
	run   func(args []string) int
}

var commands = []command{
	{"decap", "decode mirror captures into clean pcap/pcapng", runDecap},
	{"gen", "write synthetic vRouter mirror captures", runGen},
	{"capture", "capture mirror traffic live into rotating files, serve them over HTTP", runCapture},
	{"extract", "merge the stored captures of a time window into one pcapng", runExtract},
	{"stats", "summarize capture files: totals, rates, drops, VN pairs, top conversations", runStats},
	{"mirror", "set up and tear down mirroring through the Contrail config API", runMirror},
	{"extcap", "Wireshark extcap interface (also when invoked as vrsniff-extcap)", runExtcap},
	{"version", "print the version", runVersion},
}

var version = "dev"

func main() {
	// Wireshark runs extcap programs by file name with --extcap-* flags.
	if strings.HasPrefix(filepath.Base(os.Args[0]), "vrsniff-extcap") {
		os.Exit(runExtcap(os.Args[1:]))
	}
	if len(os.Args) < 2 {
		usage()
		os.Exit(exitUsage)
	}
	name := os.Args[1]
	if asksHelp(os.Args[1:]) {
		// Help is what was asked for: it goes to standard output, so that
		// `vrsniff decap -h | less` works. Every usage text is written to
		// os.Stderr (the flag package's default too), hence the swap.
		os.Stderr = os.Stdout
	}
	for _, c := range commands {
		if c.name == name {
			os.Exit(c.run(os.Args[2:]))
		}
	}
	if name == "--version" || name == "-version" {
		os.Exit(runVersion(nil))
	}
	if name == "-h" || name == "--help" || name == "help" {
		usage()
		os.Exit(exitOK)
	}
	fmt.Fprintf(os.Stderr, "vrsniff: unknown command %q\n", name)
	usage()
	os.Exit(exitUsage)
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: vrsniff <command> [flags] [args]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", c.name, c.short)
	}
	fmt.Fprintf(os.Stderr, "\nexit codes: 0 ok, 1 failure, 2 usage, 3 done but not all of it (decap: malformed packets; extract, stats: files skipped)\n")
}

func runVersion([]string) int {
	fmt.Println("vrsniff", version)
	return exitOK
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

// asksHelp reports whether args (the command and its arguments) ask for
// help: the command help, or -h, -help or --help before any "--".
func asksHelp(args []string) bool {
	if len(args) > 0 && args[0] == "help" {
		return true
	}
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}
