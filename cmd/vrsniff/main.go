// Command vrsniff decodes, captures and sets up Contrail / Tungsten Fabric
// vRouter traffic mirroring.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
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
	{"query", "find packets across a fleet's stored captures (object storage) into one pcapng", runQuery},
	{"store", "list and prune a fleet's object storage", runStore},
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
		usage(os.Stderr)
		os.Exit(exitUsage)
	}
	os.Exit(runMain(os.Args[1:]))
}

// runMain runs the command that args (os.Args without the program) name.
func runMain(args []string) int {
	name := args[0]
	if name == "help" && len(args) > 1 {
		// vrsniff help CMD [SUB] is CMD [SUB] --help.
		name, args = args[1], append(args[1:], "--help")
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(args[1:])
		}
	}
	switch name {
	case "completion":
		return runCompletion(args[1:])
	case "--version", "-version":
		return runVersion(nil)
	case "-h", "--help", "-help", "help":
		usage(os.Stdout)
		return exitOK
	}
	return usageErr("", fmt.Sprintf("unknown command %q (see vrsniff --help)", name))
}

// usage writes the list of commands to w: standard output when it was asked
// for, standard error after a command line that names none.
func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: vrsniff <command> [flags] [args]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "completion", "print a shell completion script: vrsniff completion bash|zsh|fish")
	fmt.Fprintf(w, "\nRun \"vrsniff help COMMAND\" (or vrsniff COMMAND --help) for its flags.\n")
	fmt.Fprintf(w, "\nexit codes: 0 ok, 1 failure, 2 usage, 3 done but not all of it (decap: malformed packets; extract, stats: files skipped)\n")
}

func runVersion([]string) int {
	fmt.Println("vrsniff", version)
	return exitOK
}

func isTerminal(f *os.File) bool {
	// A character device is not enough: /dev/null is one.
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// usageErr writes the one line of a usage error to standard error and
// returns exitUsage.
func usageErr(cmd, msg string) int {
	if cmd != "" {
		cmd = " " + cmd
	}
	fmt.Fprintf(os.Stderr, "vrsniff%s: %s\n", cmd, msg)
	return exitUsage
}

func fail(cmd string, err error) int {
	fmt.Fprintf(os.Stderr, "vrsniff %s: %v\n", cmd, err)
	return exitFailure
}
