package secret

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string, mode fs.FileMode) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// Explicitly: WriteFile's mode passes through the umask.
	if err := os.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
	return name
}

// A group this process is not in: the first unused gid from 40000.
func foreignGID(t *testing.T) int {
	t.Helper()
	groups, _ := os.Getgroups()
	for gid := 40000; ; gid++ {
		if gid != os.Getgid() && gid != os.Getegid() && !slices.Contains(groups, gid) {
			return gid
		}
	}
}

func TestReadFileModes(t *testing.T) {
	const tok = "0123456789abcdef0123"
	gid := strconv.Itoa(foreignGID(t))
	for _, tc := range []struct {
		mode    fs.FileMode
		foreign bool   // the file's group is one this process is not in
		want    string // in the error; "" means read
	}{
		{0o600, false, ""},
		{0o400, false, ""},
		{0o640, false, ""}, // the process's own group: a service account's file
		{0o600, true, ""},
		{0o640, true, "open to the members of group " + gid + " (mode 0640), which vrsniff does not run in"},
		{0o620, true, "open to the members of group " + gid + " (mode 0620)"},
		{0o644, false, "is open to every user (mode 0644): chmod 600 "},
		{0o602, false, "is open to every user (mode 0602): chmod 600 "},
		{0o604, true, "is open to every user (mode 0604)"},
	} {
		name := writeFile(t, tok+"\n", tc.mode)
		if tc.foreign {
			if err := os.Chown(name, -1, foreignGID(t)); err != nil { // tests run as root
				t.Fatal(err)
			}
		}
		got, err := ReadToken(name, MinTokenLen)
		var ee *ExposedError
		switch {
		case tc.want == "" && (err != nil || got != tok):
			t.Errorf("mode %04o: %q, %v", tc.mode, got, err)
		case tc.want != "" && (!errors.As(err, &ee) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "chmod 600 "+name)):
			t.Errorf("mode %04o: got %q, %v; want an error with %q and chmod 600 %s", tc.mode, got, err, tc.want, name)
		}
	}
}

func TestReadToken(t *testing.T) {
	for content, want := range map[string]string{
		"0123456789abcdef":           "",
		"  0123456789abcdef0\n":      "",
		"0123456789abcde":            "token of 15 bytes, too easy to guess: want at least 16",
		"x":                          "token of 1 bytes",
		" \n":                        "empty token",
		strings.Repeat("a", 1<<20+1): "larger than 1048576 bytes",
	} {
		_, err := ReadToken(writeFile(t, content, 0o600), MinTokenLen)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%.20q: got %v, want %q", content, err, want)
		}
	}
	if got, err := ReadToken(writeFile(t, "abc\n", 0o600), 1); err != nil || got != "abc" {
		t.Errorf("minimum 1: %q, %v", got, err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pass@host:8082/x":        "https://[REDACTED]@host:8082/x",
		"https://tok3n@host":                   "https://[REDACTED]@host",
		"http://u:p@w@host?q=a@b":              "http://[REDACTED]@host?q=a@b",
		"http://host/a@b":                      "http://host/a@b",
		"http://host:8082":                     "http://host:8082",
		"user:pass@host":                       "user:pass@host",
		"http://user:pass@host:port-not-a-num": "http://[REDACTED]@host:port-not-a-num",
		"":                                     "",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
