package mirror

import (
	"bytes"
	"net/netip"
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
	})
}
