package server

import (
	neturl "net/url"
	"os"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

// An expression over the filter limits is a 400 with a short reason, and
// the hub gains no client.
func TestStreamFilterTooComplex(t *testing.T) {
	b, err := os.ReadFile(testenv.HostileCase(t, "bpf-3000-terms.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s, ts := newTestServer(t, Options{})
	q := neturl.Values{"bpf": {strings.TrimSpace(string(b))}}
	resp, body := do(t, "GET", ts.URL+"/api/stream?"+q.Encode(), nil)
	mustStatus(t, resp.StatusCode, 400, "3000-term filter")
	if !strings.HasPrefix(string(body), "bad filter: ") || !strings.Contains(string(body), "expression too complex") || len(body) > 300 {
		t.Errorf("body %q", body)
	}
	if n := s.Hub().Clients(); n != 0 {
		t.Errorf("%d stream clients", n)
	}
}
