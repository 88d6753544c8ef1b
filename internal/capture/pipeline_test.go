package capture

import (
	"path/filepath"
	"testing"
)

// The decoder keeps copies of the fragments it holds only when the
// service writes rejects: with KeepRejects and a directory, not with
// KeepRejects alone (there is no rejects ring without a directory).
func TestFragmentCopies(t *testing.T) {
	in := filepath.Join("..", "..", "testdata", "sample.pcap")
	for _, tc := range []struct {
		name        string
		dir, keep   bool
		wantCopying bool
	}{
		{"dir and rejects", true, true, true},
		{"dir", true, false, false},
		{"http and rejects", false, true, false},
		{"http", false, false, false},
	} {
		c := config("")
		if tc.dir {
			c.Dir = t.TempDir()
		}
		c.Read, c.KeepRejects = in, tc.keep
		s, err := New(c)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := s.ws[0].pl.FragmentCopies(); got != tc.wantCopying {
			t.Errorf("%s: fragment copies %v, want %v", tc.name, got, tc.wantCopying)
		}
		if got := s.ws[0].rejects != nil; got != (tc.dir && tc.keep) {
			t.Errorf("%s: rejects ring %v", tc.name, got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
