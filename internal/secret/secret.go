// Package secret reads the files that hold vrsniff's secrets (API tokens,
// clouds.yaml passwords) and keeps secrets out of what vrsniff prints.
package secret

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

const (
	// MinTokenLen is the shortest bearer token, in bytes, that vrsniff
	// capture accepts for its HTTP API: a shorter one can be guessed.
	MinTokenLen = 16
	// MaxFileSize bounds what ReadFile reads, in bytes.
	MaxFileSize = 1 << 20
)

// ExposedError reports a secret file that users other than the owner can
// read or write.
type ExposedError struct {
	Name  string
	Mode  fs.FileMode
	Group string // the file's group when it is the group that has access; "" for others
}

func (e *ExposedError) Error() string {
	if e.Group != "" {
		return fmt.Sprintf("%s is open to the members of group %s (mode %04o), which vrsniff does not run in: chmod 600 %s, or run vrsniff in that group",
			e.Name, e.Group, e.Mode.Perm(), e.Name)
	}
	return fmt.Sprintf("%s is open to every user (mode %04o): chmod 600 %s", e.Name, e.Mode.Perm(), e.Name)
}

// ReadFile reads a file that holds a secret. It refuses (with an
// *ExposedError) a file that every user may read or write, and one that
// the members of its group may when this process is not in that group:
// group access is how a root-owned file is given to a service account
// (0640 root:vrsniff). The mode is that of the opened file, so that it
// cannot be swapped between check and read. At most MaxFileSize bytes are
// read. A missing file gives an error matching fs.ErrNotExist.
func ReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkMode(name, st); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxFileSize)
	}
	return b, nil
}

func checkMode(name string, st fs.FileInfo) error {
	perm := st.Mode().Perm()
	if perm&0o007 != 0 {
		return &ExposedError{Name: name, Mode: perm}
	}
	if perm&0o070 == 0 {
		return nil
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	gid := int(sys.Gid)
	if gid == os.Getgid() || gid == os.Getegid() {
		return nil
	}
	if groups, err := os.Getgroups(); err == nil && slices.Contains(groups, gid) {
		return nil
	}
	g := strconv.Itoa(gid)
	if grp, err := user.LookupGroupId(g); err == nil {
		g = grp.Name
	}
	return &ExposedError{Name: name, Mode: perm, Group: g}
}

// ReadToken reads a bearer token, the content of a file (see ReadFile)
// without surrounding white space, and refuses one shorter than minLen
// bytes (at least 1).
func ReadToken(name string, minLen int) (string, error) {
	b, err := ReadFile(name)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", fmt.Errorf("%s: empty token", name)
	case len(tok) < minLen:
		return "", fmt.Errorf("%s: token of %d bytes, too easy to guess: want at least %d (for instance: head -c 32 /dev/urandom | base64)", name, len(tok), minLen)
	}
	return tok, nil
}

// RedactURL replaces the userinfo of a URL ("https://user:pass@host/…")
// with "[REDACTED]", for printing. It works on text that does not parse as
// a URL too, and returns anything without userinfo unchanged.
func RedactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return s
	}
	return s[:i+3] + "[REDACTED]@" + rest[at+1:]
}
