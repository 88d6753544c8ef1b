package server

import (
	"errors"
	"sync/atomic"
	"testing"
)

// Options.Health makes /healthz answer 503 with its reason and
// vrsniff_healthy 0, after the store's own reason.
func TestHealthOption(t *testing.T) {
	var reason atomic.Pointer[error]
	hs := &healthStore{dirStore: newDirStore(t)}
	_, ts := newTestServer(t, Options{Store: hs, Health: func() error {
		if p := reason.Load(); p != nil {
			return *p
		}
		return nil
	}})
	check := func(code int, body string, healthy float64) {
		t.Helper()
		resp, b := do(t, "GET", ts.URL+"/healthz", nil)
		mustStatus(t, resp.StatusCode, code, "healthz")
		if string(b) != body {
			t.Errorf("healthz body %q, want %q", b, body)
		}
		if got := value(t, scrape(t, ts.URL+"/metrics"), "vrsniff_healthy"); got != healthy {
			t.Errorf("vrsniff_healthy %v, want %v", got, healthy)
		}
	}
	check(200, "ok\n", 1)
	stale := errors.New("no packet read for 30s (--stale-after 30s)")
	reason.Store(&stale)
	check(503, "no packet read for 30s (--stale-after 30s)\n", 0)
	hs.err = errors.New("disk full")
	check(503, "store cannot write: disk full\n", 0)
	hs.err = nil
	reason.Store(nil)
	check(200, "ok\n", 1)
}
