package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Every command parses its flags getopt style (github.com/spf13/pflag):
// flags may follow the positional arguments, "--" ends the flags, one-letter
// flags group (-Uc10), long flags take two dashes. Two things are kept
// from the single-dash syntax of Go's flag package, which earlier versions
// used, so that unit files, scripts and habits keep working:
//
//   - a single-dash word that names a long flag (-port 8888, -align=false)
//     is that long flag (compatArgs);
//   - the one-letter names those versions had as long names (i, w, o, v, U)
//     stay valid long names, YAML keys and VRSNIFF_ variables of the flag
//     that now has them as its shorthand (longNames).

// longNames maps the one-letter flag names of earlier versions to the long
// flag that has that letter as its shorthand.
var longNames = map[string]string{
	"i": "interface",
	"w": "write",
	"o": "output",
	"v": "verbose",
	"U": "packet-buffered",
}

func normalizeName(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if long, ok := longNames[name]; ok {
		return pflag.NormalizedName(long)
	}
	return pflag.NormalizedName(name)
}

// newFlagSet returns the flag set of the command name ("decap", "mirror
// create"), whose help is header followed by the flags.
func newFlagSet(name, header string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetNormalizeFunc(normalizeName)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), header)
		fmt.Fprint(fs.Output(), fs.FlagUsages())
	}
	return fs
}

// parseFlags parses args into fs. It returns ok when the command is to
// run; otherwise the exit status: exitOK after help that was asked for
// (-h, --help) was written to standard output, exitUsage after one line on
// standard error naming the problem. Every command calls it before it does
// anything else: the completion learns the command's flags from it (see
// defineOnly).
func parseFlags(fs *pflag.FlagSet, args []string) (code int, ok bool) {
	if defineOnly {
		defined = fs
		return exitOK, false
	}
	// pflag writes the help itself, and nothing else: to standard output.
	fs.SetOutput(os.Stdout)
	err := fs.Parse(compatArgs(fs, args))
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, pflag.ErrHelp):
		return exitOK, false
	}
	return usageErr(fs.Name(), err.Error()+" (see vrsniff "+fs.Name()+" --help)"), false
}

// compatArgs returns args with every single-dash word that names a long
// flag of fs (-port, -port=8888, -help) written with two dashes, as Go's
// flag package read it. A word that names no long flag (-U, -c10, -Uc10,
// -rfile.pcap) is left to pflag as one-letter flags; the value of a flag
// given as the next word (--since -15m, -w -) and everything after "--"
// are left as they are.
func compatArgs(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) < 2 || a[0] != '-' {
			out = append(out, a)
			continue
		}
		var f *pflag.Flag
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case strings.HasPrefix(a, "--"):
			f = fs.Lookup(name)
		case len(name) > 1 && (fs.Lookup(name) != nil || name == "help"):
			a = "-" + a
			f = fs.Lookup(name)
		default:
			// One-letter flags, grouped: the first that takes a value
			// takes the rest of the word, or the next word.
			hasValue = true
			for j := 1; j < len(a); j++ {
				g := fs.ShorthandLookup(a[j : j+1])
				if g == nil {
					break
				}
				if g.NoOptDefVal == "" {
					f, hasValue = g, j+1 < len(a)
					break
				}
			}
		}
		out = append(out, a)
		if f != nil && f.NoOptDefVal == "" && !hasValue && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// changedFlags returns the names of the flags set so far.
func changedFlags(fs *pflag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
	return set
}
