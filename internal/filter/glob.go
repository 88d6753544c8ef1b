package filter

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// vnPattern matches VN names as people type them. A pattern with a ':' is
// matched against the fully qualified name (default-domain:admin:vn-web,
// *:admin:vn-web); one without is matched against the name's last
// ':'-separated part, the network's own name (vn-web, vn-*).
type vnPattern struct {
	glob string // "" matches everything
	last bool
}

func compileVN(p string) (vnPattern, error) {
	if err := checkGlob(p); err != nil {
		return vnPattern{}, fmt.Errorf("VN pattern %q: %w", p, err)
	}
	return vnPattern{glob: p, last: !strings.Contains(p, ":")}, nil
}

// match reports whether name, a VN name as sent (nil: absent), matches.
// It does not allocate.
func (v vnPattern) match(name []byte) bool {
	if name == nil {
		return false
	}
	// The name is only read during the call: no copy needed.
	s := unsafe.String(unsafe.SliceData(name), len(name))
	if v.last {
		s = s[strings.LastIndexByte(s, ':')+1:]
	}
	return globMatch(v.glob, s)
}

// errBadPattern reports a malformed glob.
var errBadPattern = errors.New("syntax error in pattern")

// Globs are path.Match's, except that '*' and '?' also match '/': a VN name
// is arbitrary bytes, not a path. '*' matches any bytes, '?' one character
// (UTF-8; an invalid byte counts as one), [abc], [a-z] and [^a-z] one
// character of a class, and '\' makes the next character literal.

// checkGlob reports whether p is a well-formed glob.
func checkGlob(p string) error {
	for i := 0; i < len(p); {
		switch p[i] {
		case '\\':
			if i+1 == len(p) {
				return errBadPattern
			}
			i += 2
		case '[':
			_, end, ok := matchClass(p, i, 0)
			if !ok {
				return errBadPattern
			}
			i = end
		default:
			i++
		}
	}
	return nil
}

// globMatch reports whether s matches the well-formed glob p. On a
// mismatch after a '*' it retries with the '*' taking one more character:
// since every other element matches exactly one character, the last '*'
// is the only one that ever needs to give back.
func globMatch(p, s string) bool {
	pi, si := 0, 0
	star, starS := -1, 0
	for pi < len(p) || si < len(s) {
		if pi < len(p) && si < len(s) {
			switch c := p[pi]; c {
			case '*':
				star, starS = pi, si
				pi++
				continue
			case '?':
				_, w := utf8.DecodeRuneInString(s[si:])
				pi, si = pi+1, si+w
				continue
			case '[':
				r, w := utf8.DecodeRuneInString(s[si:])
				if in, end, _ := matchClass(p, pi, r); in {
					pi, si = end, si+w
					continue
				}
			case '\\':
				if p[pi+1] == s[si] {
					pi, si = pi+2, si+1
					continue
				}
			default:
				if c == s[si] {
					pi, si = pi+1, si+1
					continue
				}
			}
		} else if pi < len(p) && p[pi] == '*' {
			pi++ // a '*' matches the empty rest
			continue
		}
		if star < 0 || starS == len(s) {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[starS:])
		starS += w
		pi, si = star+1, starS
	}
	return true
}

// matchClass reads the class that starts at p[i] == '[' and reports
// whether r is in it, where the class ends, and whether it is well formed.
func matchClass(p string, i int, r rune) (in bool, end int, ok bool) {
	i++
	negate := i < len(p) && p[i] == '^'
	if negate {
		i++
	}
	for n := 0; ; n++ {
		if i < len(p) && p[i] == ']' && n > 0 {
			return in != negate, i + 1, true
		}
		lo, next, ok := classChar(p, i)
		if !ok {
			return false, 0, false
		}
		hi := lo
		if next < len(p) && p[next] == '-' {
			if hi, next, ok = classChar(p, next+1); !ok {
				return false, 0, false
			}
		}
		if lo <= r && r <= hi {
			in = true
		}
		i = next
	}
}

// classChar reads one character of a class at p[i], escaped or not.
func classChar(p string, i int) (rune, int, bool) {
	if i >= len(p) || p[i] == '-' || p[i] == ']' {
		return 0, 0, false
	}
	if p[i] == '\\' {
		i++
		if i >= len(p) {
			return 0, 0, false
		}
	}
	r, w := utf8.DecodeRuneInString(p[i:])
	if r == utf8.RuneError && w == 1 {
		return 0, 0, false
	}
	return r, i + w, true
}
