// Package vnpair is the one place that decides which VN pair a packet
// belongs to when traffic is split into one file set per pair (vrsniff decap
// --split-by and vrsniff capture --split-by): the canonical pair, a map key
// for it, and the label that names its files; and the one bounded counter
// of packets by VN pair (Counter), behind the pipeline's statistics and the
// capture files' sidecars.
//
// VN names are arbitrary bytes as the vRouter sends them (spaces, UTF-8,
// '/', control bytes); a nil name is absent (no TLV), an empty one was sent
// with length 0. Labels are built so that
//
//   - two distinct pairs never share a label (the encoding can be decoded
//     back; a shortened label carries a 64-bit hash of the whole one);
//   - a label holds only the bytes A-Z a-z 0-9 - _ . + = ~, so that it
//     cannot leave a directory, needs no quoting in a shell or a URL path,
//     and never starts with '.' or '-';
//   - plain names stay readable: default-domain:admin:vn-web reads
//     default-domain.admin.vn-web;
//   - a label fits the length its caller gives, for file names within the
//     255 bytes file systems allow.
package vnpair

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Split says whether and how traffic is divided by VN pair.
type Split uint8

const (
	// None keeps all traffic together.
	None Split = iota
	// Undirected gives the two directions of a conversation one file set:
	// {A, B}, whichever sent the packet ("vn").
	Undirected
	// Directed keeps source -> destination apart from destination ->
	// source ("vn-direction").
	Directed
)

// ParseSplit reads the value of a --split-by flag: "" (None), "vn"
// (Undirected) or "vn-direction" (Directed).
func ParseSplit(s string) (Split, error) {
	switch s {
	case "":
		return None, nil
	case "vn":
		return Undirected, nil
	case "vn-direction":
		return Directed, nil
	}
	return None, fmt.Errorf("--split-by %q: want vn or vn-direction", s)
}

func (s Split) String() string {
	switch s {
	case Undirected:
		return "vn"
	case Directed:
		return "vn-direction"
	}
	return ""
}

// Canonical returns the pair of src and dst as s keys it: for Undirected
// the two names in a fixed order (non-empty names in byte order, then the
// empty name, then the absent one, so that a readable name comes first),
// otherwise src and dst as they are.
func Canonical(src, dst []byte, s Split) (a, b []byte) {
	if s == Undirected && less(dst, src) {
		return dst, src
	}
	return src, dst
}

// less orders names for Canonical.
func less(x, y []byte) bool {
	switch {
	case x == nil:
		return false
	case y == nil:
		return true
	case len(x) == 0:
		return false
	case len(y) == 0:
		return true
	}
	return bytes.Compare(x, y) < 0
}

// AppendKey appends to buf a key of the pair of src and dst under s: equal
// keys mean the same canonical pair, absent and empty names included. Used
// as string(key) in a map index, looking a pair up does not allocate.
func AppendKey(buf, src, dst []byte, s Split) []byte {
	a, b := Canonical(src, dst, s)
	return appendSide(appendSide(buf, a), b)
}

func appendSide(buf, name []byte) []byte {
	if name == nil {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	buf = binary.AppendUvarint(buf, uint64(len(name)))
	return append(buf, name...)
}

// Label encoding. In a name, the bytes A-Z a-z 0-9 '-' '_' stand for
// themselves and ':' (the separator of fully qualified names) becomes '.',
// except that a name never starts with '.' or '-' (a hidden file, an
// option to the tool given the file); every other byte becomes "~HH"
// (upper-case hex). An
// absent name is "~none", an empty one "~empty". The two names are joined
// by '+' (Undirected) or '=' (Directed, source first). Since '~' is always
// followed by an upper-case hex digit, 'n' or 'e', "~~" never occurs in a
// full label: it marks a shortened one.
const (
	absentToken = "~none"
	emptyToken  = "~empty"
	elision     = "~~" // where a shortened name was cut, and before the hash
	hashLen     = 16   // hex digits of the hash that ends a shortened label
)

// MinLabel is the shortest limit Label honours: room for the hash and a
// few readable bytes of each name.
const MinLabel = 48

// Label returns the file-name label of the pair of src and dst under s
// (Undirected when s is None), at most limit bytes long (a limit below
// MinLabel counts as MinLabel). A label that would be longer keeps the start and
// the end of each long name, joined by "~~", and ends in "~~" and 16 hex
// digits of a SHA-256 of the full label.
func Label(src, dst []byte, s Split, limit int) string {
	if s == None {
		s = Undirected
	}
	a, b := Canonical(src, dst, s)
	sep := byte('+')
	if s == Directed {
		sep = '='
	}
	ea, eb := appendName(nil, a), appendName(nil, b)
	full := make([]byte, 0, len(ea)+1+len(eb))
	full = append(append(append(full, ea...), sep), eb...)
	limit = max(limit, MinLabel)
	if len(full) <= limit {
		return string(full)
	}
	// Share what is left after the separator and the hash between the two
	// names; a name that fits in half leaves the rest to the other.
	room := limit - 1 - len(elision) - hashLen
	ba, bb := room-room/2, room/2
	switch {
	case len(ea) <= room/2:
		ba, bb = len(ea), room-len(ea)
	case len(eb) <= room/2:
		ba, bb = room-len(eb), len(eb)
	}
	sum := sha256.Sum256(full)
	out := make([]byte, 0, limit)
	out = append(shorten(out, ea, ba), sep)
	out = shorten(out, eb, bb)
	out = append(out, elision...)
	out = hex.AppendEncode(out, sum[:hashLen/2])
	return string(out)
}

// appendName appends the label encoding of one name.
func appendName(buf, name []byte) []byte {
	if name == nil {
		return append(buf, absentToken...)
	}
	if len(name) == 0 {
		return append(buf, emptyToken...)
	}
	const hexDigits = "0123456789ABCDEF"
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-' && i > 0:
			buf = append(buf, c)
		case c == ':' && i > 0:
			buf = append(buf, '.')
		default:
			buf = append(buf, '~', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return buf
}

// shorten appends enc, an encoded name, cut to at most n bytes when it is
// longer: its first and last bytes joined by "~~", never splitting a "~HH"
// escape. A third of the room goes to the end, which in a fully qualified
// name holds the network's own name.
func shorten(buf, enc []byte, n int) []byte {
	if len(enc) <= n {
		return append(buf, enc...)
	}
	// Unit boundaries: an escape is one unit. Tokens ("~none", "~empty")
	// are shorter than any room Label gives, so they are never cut.
	var starts []int
	for i := 0; i < len(enc); {
		starts = append(starts, i)
		if enc[i] == '~' {
			i += 3
		} else {
			i++
		}
	}
	n -= len(elision)
	tail := len(enc)
	for k := len(starts) - 1; k >= 0 && len(enc)-starts[k] <= n/3; k-- {
		tail = starts[k]
	}
	head := 0
	for _, s := range starts {
		if s > n-(len(enc)-tail) {
			break
		}
		head = s
	}
	buf = append(buf, enc[:head]...)
	buf = append(buf, elision...)
	return append(buf, enc[tail:]...)
}
