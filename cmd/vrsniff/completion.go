package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

const completionUsage = `usage: vrsniff completion bash|zsh|fish

Prints a script that completes vrsniff's commands, sub-commands and flags
in that shell. Load it for the session, or install it:

  source <(vrsniff completion bash)
  vrsniff completion bash > /etc/bash_completion.d/vrsniff
  vrsniff completion zsh > "${fpath[1]}/_vrsniff"
  vrsniff completion fish > ~/.config/fish/completions/vrsniff.fish
`

// subcommands are the sub-commands of the commands that have them.
var subcommands = map[string][]string{
	"mirror": {"create", "list", "delete", "heat"},
	"extcap": {"install"},
	"store":  {"ls", "prune"},
}

// withSubcommands lists the commands that have sub-commands, sorted.
func withSubcommands() []string {
	return slices.Sorted(maps.Keys(subcommands))
}

// completed is a command or sub-command with its flags: "decap", "mirror
// create".
type completed struct {
	name  string
	flags []*pflag.Flag
}

// defineOnly makes parseFlags keep the flag set it gets in defined and stop
// the command there: running a command then defines its flags and returns.
var (
	defineOnly bool
	defined    *pflag.FlagSet
)

// commandFlags returns the flags of every command and sub-command, as
// their run functions define them.
func commandFlags() []completed {
	defineOnly = true
	defer func() { defineOnly, defined = false, nil }()
	var out []completed
	get := func(name string, run func([]string) int, args ...string) {
		defined = nil
		run(args)
		c := completed{name: name}
		if defined != nil {
			defined.VisitAll(func(f *pflag.Flag) {
				if !f.Hidden {
					c.flags = append(c.flags, f)
				}
			})
		}
		out = append(out, c)
	}
	for _, c := range commands {
		switch subs, ok := subcommands[c.name]; {
		case ok:
			for _, s := range subs {
				get(c.name+" "+s, c.run, s)
			}
		case c.name != "version": // no flags, and it prints
			get(c.name, c.run)
		}
	}
	return out
}

func runCompletion(args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprint(os.Stdout, completionUsage)
		return exitOK
	}
	if len(args) != 1 {
		return usageErr("completion", "want one shell: bash, zsh or fish (see vrsniff completion --help)")
	}
	switch args[0] {
	case "bash":
		writeBash(os.Stdout, commandFlags())
	case "zsh":
		// zsh runs the bash function through its bash completion layer.
		fmt.Fprint(os.Stdout, "#compdef vrsniff\nautoload -U +X bashcompinit && bashcompinit\n")
		writeBash(os.Stdout, commandFlags())
	case "fish":
		writeFish(os.Stdout, commandFlags())
	default:
		return usageErr("completion", fmt.Sprintf("unknown shell %q: want bash, zsh or fish", args[0]))
	}
	return exitOK
}

// flagWords are the words that name f: --name, and -x for a shorthand.
func flagWords(f *pflag.Flag) []string {
	w := []string{"--" + f.Name}
	if f.Shorthand != "" {
		w = append(w, "-"+f.Shorthand)
	}
	return w
}

func commandNames() []string {
	names := []string{"help", "completion"}
	for _, c := range commands {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return names
}

// writeBash writes a bash completion: the command, the sub-command, then
// the flags of what was typed so far; for the rest, file names.
func writeBash(w io.Writer, cs []completed) {
	fmt.Fprintf(w, `# bash completion for vrsniff (vrsniff completion bash)
_vrsniff() {
	local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} flags="" i
	COMPREPLY=()
	if [[ $COMP_CWORD -eq 1 ]]; then
		COMPREPLY=($(compgen -W %q -- "$cur"))
		return
	fi
	case $cmd in
	help)
		[[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W %q -- "$cur"))
		return;;
	completion)
		[[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur"))
		return;;
`, strings.Join(commandNames(), " "), strings.Join(commandNames(), " "))
	for _, name := range withSubcommands() {
		fmt.Fprintf(w, "\t%s)\n\t\tif [[ $COMP_CWORD -eq 2 ]]; then\n\t\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\t\t\treturn\n\t\tfi\n\t\tcmd=\"$cmd ${COMP_WORDS[2]}\";;\n",
			name, strings.Join(subcommands[name], " "))
	}
	fmt.Fprint(w, "\tesac\n\tcase $cmd in\n")
	for _, c := range cs {
		var words []string
		for _, f := range c.flags {
			words = append(words, flagWords(f)...)
		}
		fmt.Fprintf(w, "\t%q) flags=%q;;\n", c.name, strings.Join(append(words, "--help"), " "))
	}
	fmt.Fprint(w, `	esac
	# After "--" every word is an argument.
	for ((i = 1; i < COMP_CWORD; i++)); do
		[[ ${COMP_WORDS[i]} == -- ]] && return
	done
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
	fi
}
complete -o default -o bashdefault -F _vrsniff vrsniff
`)
}

// writeFish writes a fish completion.
func writeFish(w io.Writer, cs []completed) {
	fmt.Fprintf(w, "# fish completion for vrsniff (vrsniff completion fish)\ncomplete -c vrsniff -f -n __fish_use_subcommand -a 'help completion'\n")
	for _, c := range commands {
		fmt.Fprintf(w, "complete -c vrsniff -f -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.short))
	}
	for _, name := range withSubcommands() {
		subs := subcommands[name]
		fmt.Fprintf(w, "complete -c vrsniff -f -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a '%s'\n",
			name, strings.Join(subs, " "), strings.Join(subs, " "))
	}
	fmt.Fprint(w, "complete -c vrsniff -f -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n")
	for _, c := range cs {
		cond := "__fish_seen_subcommand_from " + c.name
		if cmd, sub, ok := strings.Cut(c.name, " "); ok {
			cond = "__fish_seen_subcommand_from " + cmd + "; and __fish_seen_subcommand_from " + sub
		}
		for _, f := range c.flags {
			line := fmt.Sprintf("complete -c vrsniff -n '%s' -l %s", cond, f.Name)
			if f.Shorthand != "" {
				line += " -s " + f.Shorthand
			}
			if f.NoOptDefVal == "" {
				line += " -r"
			}
			_, usage := pflag.UnquoteUsage(f)
			if i := strings.IndexAny(usage, ".;:("); i > 0 {
				usage = usage[:i]
			}
			fmt.Fprintf(w, "%s -d %s\n", line, fishQuote(strings.TrimSpace(usage)))
		}
	}
}

// fishQuote quotes s for fish: in single quotes, where only \ and ' are
// special.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
