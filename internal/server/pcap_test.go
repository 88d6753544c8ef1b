package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// TestPcapBadQuery: a parameter the API does not know, one given twice, or
// a bad value is answered 400 with the reason, never with packets.
func TestPcapBadQuery(t *testing.T) {
	_, ts := newTestServer(t, Options{Store: newDirStore(t)})
	for q, reason := range map[string]string{
		"":                             "since is required",
		"since=-1h&vnn=vn-a":           `unknown parameter "vnn"`,
		"since=-1h&srcvn=vn-a":         `unknown parameter "srcvn"`,
		"since=-1h&vn=a&vn=b":          `"vn" given 2 times`,
		"since=yesterday":              "since: time",
		"since=-1h&until=":             "until is empty",
		"since=-1h&until=soon":         "until: time",
		"since=now&until=-1h":          "is not before until",
		"since=-1h&direction=sideways": "direction",
		"since=-1h&bpf=" + url.QueryEscape("tcp port"): "tcp port",
		"since=-1h&vn=" + url.QueryEscape("[vn"):       "vn",
	} {
		resp, body := do(t, "GET", ts.URL+"/api/pcap?"+q, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), reason) {
			t.Errorf("?%s: %d %q, want 400 saying %q", q, resp.StatusCode, body, reason)
		}
		if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "pcap") {
			t.Errorf("?%s: content type %s", q, ct)
		}
	}
}

// TestPcapWindowSkipsFiles: files outside the window are not opened; a
// file that cannot be read is a warning in the trailer, and the answer is
// a valid, empty capture named after the window.
func TestPcapWindowSkipsFiles(t *testing.T) {
	st := newDirStore(t) // files of garbage: reading one is a warning
	_, ts := newTestServer(t, Options{Store: st})
	since, until := t0.Add(90*time.Second), t0.Add(100*time.Second)
	q := url.Values{"since": {since.Format(time.RFC3339)}, "until": {until.Format(time.RFC3339)}}
	resp, body := do(t, "GET", ts.URL+"/api/pcap?"+q.Encode(), nil)
	mustStatus(t, resp.StatusCode, 200, "pcap")
	if cd, want := resp.Header.Get("Content-Disposition"), `attachment; filename=vrsniff_20260301T120130Z-20260301T120140Z.pcapng`; cd != want {
		t.Errorf("Content-Disposition %q, want %q", cd, want)
	}
	// Only cap_00002.pcap overlaps [12:01:30, 12:01:40).
	if w := resp.Trailer.Get("X-Vrsniff-Warnings"); w != "1" {
		t.Errorf("warnings trailer %q, want 1", w)
	}
	if p := resp.Trailer.Get("X-Vrsniff-Packets"); p != "0" {
		t.Errorf("packets trailer %q, want 0", p)
	}
	rd, err := pcapfile.NewReaderBytes(append([]byte(nil), body...))
	if err != nil {
		t.Fatalf("answer is not a capture: %v", err)
	}
	if rd.Offset() != int64(len(body)) {
		t.Errorf("empty capture of %d bytes has more than a header (%d)", len(body), rd.Offset())
	}
}
