package server

import (
	"encoding/binary"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/mirror"
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

// TestPcapMerge: two files whose packets interleave in time are answered
// as one capture in time order; with room for one open file only, the
// answer is 503 with the reason, since nothing was sent yet.
func TestPcapMerge(t *testing.T) {
	dir := t.TempDir()
	var a, b []*mirror.Packet
	for i := range 20 {
		p := decodedPacket(frame(t, true, uint16(1000+i), 80), "default-domain:admin:vn-a", "default-domain:admin:vn-b",
			mirror.DirIngress, t0.Add(time.Duration(i)*time.Second))
		if i%2 == 0 {
			a = append(a, p)
		} else {
			b = append(b, p)
		}
	}
	capturetest.WritePcapng(t, filepath.Join(dir, "a.pcapng"), a)
	capturetest.WritePcapng(t, filepath.Join(dir, "b.pcapng"), b)
	st := &dirStore{dir: dir, infos: map[string]FileInfo{
		"a.pcapng": {First: a[0].Timestamp, Last: a[9].Timestamp, Packets: 10},
		"b.pcapng": {First: b[0].Timestamp, Last: b[9].Timestamp, Packets: 10},
	}}
	s, ts := newTestServer(t, Options{Store: st})
	q := "/api/pcap?since=" + url.QueryEscape(t0.Add(3*time.Second).Format(time.RFC3339)) +
		"&until=" + url.QueryEscape(t0.Add(15*time.Second).Format(time.RFC3339))
	resp, body := do(t, "GET", ts.URL+q, nil)
	mustStatus(t, resp.StatusCode, 200, "pcap")
	rd, err := pcapfile.NewReaderBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	var ports []int
	var p mirror.Packet
	for rd.Next(&p) == nil {
		ports = append(ports, int(binary.BigEndian.Uint16(p.Data[34:])))
	}
	if want := []int{1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}; !slices.Equal(ports, want) {
		t.Errorf("UDP source ports %v, want %v", ports, want)
	}
	if n := resp.Trailer.Get("X-Vrsniff-Packets"); n != "12" {
		t.Errorf("packets trailer %q", n)
	}

	s.pcapMaxOpen = 1
	resp, body = do(t, "GET", ts.URL+q, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "too many files overlap") ||
		resp.Header.Get("Content-Disposition") != "" {
		t.Errorf("one open file at most: %d %q, Content-Disposition %q", resp.StatusCode, body, resp.Header.Get("Content-Disposition"))
	}
}

// vanishing lists, besides its store's files, one that is gone by the
// time it is opened, as retention leaves it.
type vanishing struct{ *dirStore }

func (v vanishing) List() ([]FileInfo, error) {
	l, err := v.dirStore.List()
	return append(l, FileInfo{Name: "gone.pcapng", First: t0, Last: t0.Add(time.Hour)}), err
}

// TestPcapVanished: a listed file removed before it is read is a warning,
// not an error.
func TestPcapVanished(t *testing.T) {
	dir := t.TempDir()
	p := decodedPacket(frame(t, true, 1000, 80), "a", "b", mirror.DirIngress, t0.Add(time.Second))
	capturetest.WritePcapng(t, filepath.Join(dir, "a.pcapng"), []*mirror.Packet{p})
	st := vanishing{&dirStore{dir: dir, infos: map[string]FileInfo{"a.pcapng": {First: p.Timestamp, Last: p.Timestamp}}}}
	_, ts := newTestServer(t, Options{Store: st})
	resp, _ := do(t, "GET", ts.URL+"/api/pcap?since="+url.QueryEscape(t0.Format(time.RFC3339)), nil)
	mustStatus(t, resp.StatusCode, 200, "pcap")
	if w, n := resp.Trailer.Get("X-Vrsniff-Warnings"), resp.Trailer.Get("X-Vrsniff-Packets"); w != "1" || n != "1" {
		t.Errorf("trailers: %s warnings, %s packets; want 1 and 1", w, n)
	}
}
