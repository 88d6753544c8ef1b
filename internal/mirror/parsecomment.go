package mirror

import (
	"bytes"
	"strconv"
)

// ParseComment reads back, from a comment AppendComment wrote, the fields a
// filter selects on: the source and destination VN names and the
// direction, into m. Other fields and unknown keys are passed over. It
// reports false, leaving m as it was, when c is not in AppendComment's
// key=value form (a comment of another program). Names written quoted are
// unquoted into new slices; bare names point into c.
func ParseComment(c []byte, m *Meta) bool {
	var out Meta
	seen := false
	for len(c) > 0 {
		eq := bytes.IndexByte(c, '=')
		if eq <= 0 || bytes.IndexByte(c[:eq], ' ') >= 0 {
			return false
		}
		key := c[:eq]
		c = c[eq+1:]
		var val []byte
		if len(c) > 0 && c[0] == '"' {
			end := quotedEnd(c)
			if end < 0 {
				return false
			}
			s, err := strconv.Unquote(string(c[:end]))
			if err != nil {
				return false
			}
			val, c = []byte(s), c[end:]
		} else {
			sp := bytes.IndexByte(c, ' ')
			if sp < 0 {
				sp = len(c)
			}
			val, c = c[:sp:sp], c[sp:]
		}
		if len(c) > 0 {
			if c[0] != ' ' {
				return false
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
				return false
			}
			out.Direction = d
		}
	}
	if !seen {
		return false
	}
	m.SrcVN, m.DstVN, m.Direction = out.SrcVN, out.DstVN, out.Direction
	return true
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
