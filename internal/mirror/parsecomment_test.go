package mirror

import (
	"bytes"
	"net/netip"
	"strconv"
	"testing"
)

func TestParseCommentRoundTrip(t *testing.T) {
	for _, m := range []Meta{
		{SrcVN: []byte("default-domain:admin:vn-a"), DstVN: []byte("default-domain:admin:vn-b"), Direction: DirIngress,
			Host: netip.MustParseAddr("10.1.1.3"), Flags: 1, FlagBits: 32},
		{SrcVN: []byte("dom:p:with space"), DstVN: []byte("dom:p:\"quoted\"\x01\xff"), Direction: DirEgress},
		{DstVN: []byte("only-dst")},
		{SrcVN: []byte{}, Direction: DirIngress},
	} {
		p := &Packet{Mode: ModeJuniper, Meta: m}
		c := AppendComment(nil, p)
		var got Meta
		if !ParseComment(c, &got) {
			t.Fatalf("ParseComment(%q) = false", c)
		}
		if !bytes.Equal(got.SrcVN, m.SrcVN) || !bytes.Equal(got.DstVN, m.DstVN) || got.Direction != m.Direction ||
			(got.SrcVN == nil) != (m.SrcVN == nil) {
			t.Errorf("%q: got src %q dst %q dir %v", c, got.SrcVN, got.DstVN, got.Direction)
		}
	}
}

func TestParseCommentRejects(t *testing.T) {
	for _, c := range []string{"", "hello world", "src_vn=\"unterminated", "dir=sideways", "=x", "src_vn=\"a\"b"} {
		m := Meta{SrcVN: []byte("keep")}
		if ParseComment([]byte(c), &m) {
			t.Errorf("ParseComment(%q) = true", c)
		}
		if string(m.SrcVN) != "keep" {
			t.Errorf("ParseComment(%q) changed m", c)
		}
	}
}

// FuzzParseComment: any comment parses or is refused without a panic,
// and names of any bytes come back from what AppendComment writes.
func FuzzParseComment(f *testing.F) {
	f.Add([]byte(`src_vn=a dst_vn="b c" dir=egress`), []byte("vn a"), []byte("\"x\x00"))
	f.Fuzz(func(t *testing.T, c, src, dst []byte) {
		var m Meta
		ParseComment(c, &m)
		p := &Packet{Mode: ModeJuniper, Meta: Meta{SrcVN: src, DstVN: dst, Direction: DirEgress}}
		c = AppendComment(nil, p)
		m = Meta{}
		if !ParseComment(c, &m) || !bytes.Equal(m.SrcVN, src) || !bytes.Equal(m.DstVN, dst) || m.Direction != DirEgress {
			t.Errorf("%q: got %q %q %v", c, m.SrcVN, m.DstVN, m.Direction)
		}
		// The reusing form reads the same, into a buffer too small to
		// start with, so that it moves while it grows.
		buf := make([]byte, 0, 1)
		m = Meta{}
		if _, ok := ParseCommentBuf(c, &m, buf); !ok || !bytes.Equal(m.SrcVN, src) || !bytes.Equal(m.DstVN, dst) {
			t.Errorf("ParseCommentBuf(%q): got %q %q", c, m.SrcVN, m.DstVN)
		}
		// Unquoting agrees with strconv on every literal strconv accepts.
		if len(c) > 0 && c[0] == '"' {
			return
		}
		lit := []byte(strconv.Quote(string(src)))
		want, err := strconv.Unquote(string(lit))
		got, ok := appendUnquoted(nil, lit[1:len(lit)-1])
		if err != nil || !ok || string(got) != want {
			t.Errorf("appendUnquoted(%s) = %q, %v; strconv: %q, %v", lit, got, ok, want, err)
		}
	})
}

// TestParseCommentBufAllocs: a loop over stored packets reuses one buffer.
func TestParseCommentBufAllocs(t *testing.T) {
	c := AppendComment(nil, &Packet{Mode: ModeJuniper, Meta: Meta{SrcVN: []byte("a b"), DstVN: []byte("c\x01d"), Direction: DirIngress}})
	buf := make([]byte, 0, 64)
	var m Meta
	if n := testing.AllocsPerRun(100, func() { buf, _ = ParseCommentBuf(c, &m, buf) }); n != 0 {
		t.Errorf("ParseCommentBuf allocates %v times per call", n)
	}
	if string(m.SrcVN) != "a b" || string(m.DstVN) != "c\x01d" {
		t.Errorf("names %q %q", m.SrcVN, m.DstVN)
	}
}
