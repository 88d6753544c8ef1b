package mirror

import (
	"bytes"
	"unicode/utf8"
)

// ParseComment reads back, from a comment AppendComment wrote, the fields a
// filter selects on: the source and destination VN names and the
// direction, into m. Other fields and unknown keys are passed over. It
// reports false, leaving m as it was, when c is not in AppendComment's
// key=value form (a comment of another program). Names written quoted are
// unquoted into new slices; bare names point into c.
func ParseComment(c []byte, m *Meta) bool {
	_, ok := ParseCommentBuf(c, m, nil)
	return ok
}

// ParseCommentBuf is ParseComment with the quoted names unquoted into buf,
// which it returns grown, so that a loop over many packets reuses one
// buffer and allocates nothing per packet. The names of m are valid until
// buf is written again.
func ParseCommentBuf(c []byte, m *Meta, buf []byte) ([]byte, bool) {
	buf = buf[:0]
	var out Meta
	var quoted [3]nameSpan // by keyIndex: where a quoted name lies in buf, which may move as it grows
	seen := false
	for len(c) > 0 {
		eq := bytes.IndexByte(c, '=')
		if eq <= 0 || bytes.IndexByte(c[:eq], ' ') >= 0 {
			return buf, false
		}
		key := c[:eq]
		c = c[eq+1:]
		var val []byte
		if len(c) > 0 && c[0] == '"' {
			end := quotedEnd(c)
			if end < 0 {
				return buf, false
			}
			off := len(buf)
			var ok bool
			if buf, ok = appendUnquoted(buf, c[1:end-1]); !ok {
				return buf, false
			}
			val, c = buf[off:len(buf):len(buf)], c[end:]
			k := keyIndex(key)
			quoted[k] = nameSpan{true, off, len(buf)}
		} else {
			sp := bytes.IndexByte(c, ' ')
			if sp < 0 {
				sp = len(c)
			}
			val, c = c[:sp:sp], c[sp:]
			quoted[keyIndex(key)].set = false
		}
		if len(c) > 0 {
			if c[0] != ' ' {
				return buf, false
			}
			c = c[1:]
		}
		seen = true
		switch string(key) {
		case "src_vn":
			out.SrcVN = val
		case "dst_vn":
			out.DstVN = val
		case "dir":
			d, ok := ParseDirection(string(val))
			if !ok {
				return buf, false
			}
			out.Direction = d
		}
	}
	if !seen {
		return buf, false
	}
	// buf may have moved while it grew: point the quoted names at where
	// their bytes are now.
	if q := quoted[1]; q.set && out.SrcVN != nil {
		out.SrcVN = buf[q.off:q.end:q.end]
	}
	if q := quoted[2]; q.set && out.DstVN != nil {
		out.DstVN = buf[q.off:q.end:q.end]
	}
	m.SrcVN, m.DstVN, m.Direction = out.SrcVN, out.DstVN, out.Direction
	return buf, true
}

// nameSpan is where an unquoted name lies in ParseCommentBuf's buffer.
type nameSpan struct {
	set      bool
	off, end int
}

// keyIndex numbers the keys whose quoted values are kept: 1 src_vn, 2
// dst_vn, 0 any other.
func keyIndex(key []byte) int {
	switch string(key) {
	case "src_vn":
		return 1
	case "dst_vn":
		return 2
	}
	return 0
}

// appendUnquoted appends the bytes the body of a Go double-quoted string
// literal (without its quotes) stands for, as strconv.Unquote reads it,
// without converting to a string. It reports false for a bad escape, a
// raw newline or an unescaped quote.
func appendUnquoted(dst, lit []byte) ([]byte, bool) {
	for i := 0; i < len(lit); i++ {
		ch := lit[i]
		switch {
		case ch == '"' || ch == '\n':
			return dst, false
		case ch != '\\':
			dst = append(dst, ch)
			continue
		}
		i++
		if i >= len(lit) {
			return dst, false
		}
		switch e := lit[i]; e {
		case 'a':
			dst = append(dst, '\a')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case '\\', '"':
			dst = append(dst, e)
		case 'x', 'u', 'U':
			n := 2
			if e == 'u' {
				n = 4
			} else if e == 'U' {
				n = 8
			}
			if i+n >= len(lit) {
				return dst, false
			}
			v, ok := hexValue(lit[i+1 : i+1+n])
			if !ok {
				return dst, false
			}
			i += n
			if e == 'x' {
				dst = append(dst, byte(v))
				continue
			}
			if v > utf8.MaxRune || (v >= 0xD800 && v < 0xE000) {
				return dst, false
			}
			dst = utf8.AppendRune(dst, rune(v))
		case '0', '1', '2', '3', '4', '5', '6', '7':
			if i+3 > len(lit) {
				return dst, false
			}
			v := 0
			for _, d := range lit[i : i+3] {
				if d < '0' || d > '7' {
					return dst, false
				}
				v = v*8 + int(d-'0')
			}
			if v > 255 {
				return dst, false
			}
			dst = append(dst, byte(v))
			i += 2
		default:
			return dst, false
		}
	}
	return dst, true
}

func hexValue(h []byte) (uint32, bool) {
	var v uint32
	for _, d := range h {
		switch {
		case d >= '0' && d <= '9':
			v = v<<4 | uint32(d-'0')
		case d >= 'a' && d <= 'f':
			v = v<<4 | uint32(d-'a'+10)
		case d >= 'A' && d <= 'F':
			v = v<<4 | uint32(d-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// quotedEnd returns the index after the closing quote of the Go string
// literal c starts with, or -1.
func quotedEnd(c []byte) int {
	for i := 1; i < len(c); i++ {
		switch c[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}
