package provision

import (
	"strconv"
	"testing"

	"github.com/vrsniff/vrsniff/internal/contrail"
)

func TestParsePorts(t *testing.T) {
	for in, want := range map[string][2]int{"": {-1, -1}, "any": {-1, -1}, "80": {80, 80}, "1000-2000": {1000, 2000}, "0-65535": {0, 65535}} {
		p, err := parsePorts(in)
		if err != nil || p.StartPort != want[0] || p.EndPort != want[1] {
			t.Errorf("parsePorts(%q) = %+v, %v", in, p, err)
		}
	}
	for _, in := range []string{"-1", "80-", "x", "2-1", "65536", "1-2-3", " 80"} {
		if _, err := parsePorts(in); err == nil {
			t.Errorf("parsePorts(%q) accepted", in)
		}
	}
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"", "80", "1-2", "65535-65535", "a-b", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePorts(s)
		if err != nil {
			return
		}
		if p == contrail.AnyPort {
			return
		}
		if p.StartPort < 0 || p.EndPort > 65535 || p.StartPort > p.EndPort {
			t.Fatalf("parsePorts(%q) = %+v", s, p)
		}
		// What parses prints back the same way.
		back := strconv.Itoa(p.StartPort)
		if p.EndPort != p.StartPort {
			back += "-" + strconv.Itoa(p.EndPort)
		}
		if q, err := parsePorts(back); err != nil || q != p {
			t.Fatalf("round trip of %q via %q: %+v, %v", s, back, q, err)
		}
	})
}
