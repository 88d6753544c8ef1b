package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// completeBash loads the bash completion into a bash child, as a user's
// shell does, and returns what it offers for the words typed so far (the
// last one being completed).
func completeBash(t *testing.T, script string, words ...string) []string {
	t.Helper()
	prog := "source " + script + "\n" +
		"complete -p vrsniff >/dev/null || exit 7\n" +
		"COMP_WORDS=(" + shellWords(words) + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n" +
		"_vrsniff\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	out, err := exec.Command("bash", "--norc", "--noprofile", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("bash completing %q: %v\n%s", words, err, out)
	}
	return strings.Fields(string(out))
}

func shellWords(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// vrsniff completion bash is a script bash loads, and that completes the
// commands, the sub-commands and the flags of each, the ones added with
// the aliases too.
func TestCompletionBash(t *testing.T) {
	out, stderr, code := run(t, nil, "completion", "bash")
	if code != exitOK || stderr != "" {
		t.Fatalf("completion bash: exit %d, %s", code, stderr)
	}
	script := filepath.Join(t.TempDir(), "vrsniff.bash")
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, b)
	}
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"vrsniff", "dec"}, []string{"decap"}},
		{[]string{"vrsniff", "c"}, []string{"capture", "completion"}},
		{[]string{"vrsniff", "mirror", "l"}, []string{"list"}},
		{[]string{"vrsniff", "mirror", "list", "--js"}, []string{"--json"}},
		{[]string{"vrsniff", "decap", "in.pcap", "--po"}, []string{"--port"}},
		{[]string{"vrsniff", "capture", "--rot"}, []string{"--rotate-every", "--rotate-size"}},
		{[]string{"vrsniff", "capture", "--auto"}, []string{"--autostop"}},
		{[]string{"vrsniff", "completion", "f"}, []string{"fish"}},
		{[]string{"vrsniff", "help", "ext"}, []string{"extcap", "extract"}},
		{[]string{"vrsniff", "decap", "--", "--po"}, nil},
	} {
		got := completeBash(t, script, c.words...)
		if !slices.Equal(got, c.want) {
			t.Errorf("completing %q: %q, want %q", c.words, got, c.want)
		}
	}
	// -w, -c, -a... are among capture's flags.
	got := completeBash(t, script, "vrsniff", "capture", "-")
	for _, w := range []string{"-w", "-c", "-a", "-s", "-F", "-i", "-r", "-U", "--write", "--help"} {
		if !slices.Contains(got, w) {
			t.Errorf("capture - does not offer %s: %q", w, got)
		}
	}
}

// zsh loads the same completion through bashcompinit; fish gets its own,
// with each flag of each command. (Only bash is run: the others are not
// installed where the tests run.)
func TestCompletionOtherShells(t *testing.T) {
	bash, _, _ := run(t, nil, "completion", "bash")
	zsh, _, code := run(t, nil, "completion", "zsh")
	if code != exitOK || !strings.HasPrefix(zsh, "#compdef vrsniff\n") || !strings.HasSuffix(zsh, bash) || !strings.Contains(zsh, "bashcompinit") {
		t.Errorf("completion zsh: exit %d\n%s", code, zsh)
	}
	fish, _, code := run(t, nil, "completion", "fish")
	for _, want := range []string{
		"complete -c vrsniff -f -n __fish_use_subcommand -a decap -d 'decode mirror captures into clean pcap/pcapng'\n",
		"complete -c vrsniff -n '__fish_seen_subcommand_from capture' -l write -s w -r -d ",
		"complete -c vrsniff -n '__fish_seen_subcommand_from mirror; and __fish_seen_subcommand_from list' -l json -d ",
	} {
		if code != exitOK || !strings.Contains(fish, want) {
			t.Errorf("completion fish lacks %q", want)
		}
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		if stdout, _, code := run(t, nil, args...); code != exitUsage || stdout != "" {
			t.Errorf("%q: exit %d, stdout %d bytes", args, code, len(stdout))
		}
	}
}
