package server

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/pipeline"
)

// The history holds its last n samples, oldest first, however many were
// added: its memory is fixed at NewHistory.
func TestHistoryBounded(t *testing.T) {
	h := NewHistory(5)
	if got := h.Samples(); len(got) != 0 {
		t.Fatalf("new history holds %v", got)
	}
	for i := range 3 {
		h.Add(Sample{Time: t0.Add(time.Duration(i) * time.Second), Packets: uint64(i)})
	}
	if got := h.Samples(); len(got) != 3 || got[0].Packets != 0 || got[2].Packets != 2 {
		t.Fatalf("3 samples: %+v", got)
	}
	for i := 3; i < 1000; i++ {
		h.Add(Sample{Time: t0.Add(time.Duration(i) * time.Second), Packets: uint64(i)})
		if len(h.buf) != 5 {
			t.Fatalf("after %d samples the ring holds %d", i+1, len(h.buf))
		}
	}
	got := h.Samples()
	if len(got) != 5 {
		t.Fatalf("holds %d samples, want 5", len(got))
	}
	for i, s := range got {
		if s.Packets != uint64(995+i) {
			t.Errorf("sample %d: packets %d, want %d", i, s.Packets, 995+i)
		}
	}
	if NewHistory(0).buf == nil || len(NewHistory(1).buf) != 2 {
		t.Errorf("a history shorter than 2 cannot give a rate")
	}
}

// Rates are per second between consecutive samples; drops are a share of
// all packets; a counter that went back counts nothing for its interval.
func TestRates(t *testing.T) {
	ss := []Sample{
		{Time: t0, Packets: 100, Bytes: 1000, Drops: 0},
		{Time: t0.Add(10 * time.Second), Packets: 1100, Bytes: 11000, Drops: 0},
		{Time: t0.Add(20 * time.Second), Packets: 1900, Bytes: 12000, Drops: 200},
		{Time: t0.Add(30 * time.Second), Packets: 50, Bytes: 10, Drops: 200}, // a restart
	}
	r := Rates(ss)
	want := []Rate{
		{Time: ss[1].Time, Packets: 100, Bits: 8000},
		{Time: ss[2].Time, Packets: 80, Bits: 800, Drops: 20, DropPercent: 20},
		{Time: ss[3].Time},
	}
	if len(r) != len(want) {
		t.Fatalf("rates %+v", r)
	}
	for i := range want {
		if r[i] != want[i] {
			t.Errorf("rate %d: %+v, want %+v", i, r[i], want[i])
		}
	}
	if len(Rates(ss[:1])) != 0 || len(Rates(nil)) != 0 {
		t.Errorf("one sample gives a rate")
	}
}

// The last drop is the time of the sample at which the drops grew.
func TestHistoryLastDrop(t *testing.T) {
	h := NewHistory(3)
	h.Add(Sample{Time: t0, Drops: 5}) // drops before the first sample are not dated
	h.Add(Sample{Time: t0.Add(time.Second), Drops: 5})
	if !h.LastDrop().IsZero() {
		t.Errorf("last drop %v before any drop grew", h.LastDrop())
	}
	h.Add(Sample{Time: t0.Add(2 * time.Second), Drops: 7})
	for i := 3; i < 10; i++ {
		h.Add(Sample{Time: t0.Add(time.Duration(i) * time.Second), Drops: 7})
	}
	if got := h.LastDrop(); !got.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("last drop %v, want t0+2s (kept past the samples)", got)
	}
}

// /api/history gives the rates of the sampled counters; /api/stats the VN
// pairs' rate over the last interval and when they last grew.
func TestHistoryAPI(t *testing.T) {
	stats := new(pipeline.Stats)
	var kernel uint64
	s, ts := newTestServer(t, Options{Stats: stats, HistoryLen: 4,
		Source: func() SourceStats { return SourceStats{KernelDrops: kernel} }})
	clk := t0
	s.now = func() time.Time { return clk }
	for i := range 6 {
		stats.Read.Add(20)
		stats.ReadBytes.Add(2000)
		if i < 3 {
			stats.CountPair([]byte("vn-a"), []byte("vn-b"))
		}
		stats.CountPair([]byte("vn-c"), []byte("vn-b"))
		if i == 4 {
			kernel += 10
		}
		s.sample()
		clk = clk.Add(10 * time.Second)
	}
	resp, body := do(t, "GET", ts.URL+"/api/history", nil)
	mustStatus(t, resp.StatusCode, 200, "history")
	var h HistoryReport
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	if h.Every != 10 || h.Len != 4 || len(h.Rates) != 3 || h.Packets != 120 || h.Drops != 10 {
		t.Fatalf("history %s", body)
	}
	for i, r := range h.Rates {
		if r.Packets != 2 || r.Bits != 1600 {
			t.Errorf("rate %d: %+v, want 2 packets/s, 1600 bit/s", i, r)
		}
	}
	if r := h.Rates[1]; r.Drops != 1 || math.Abs(r.DropPercent-100*10.0/30) > 1e-9 {
		t.Errorf("rate with drops: %+v", r)
	}
	if !h.LastDrop.Equal(t0.Add(40 * time.Second)) {
		t.Errorf("last drop %v", h.LastDrop)
	}

	_, body = do(t, "GET", ts.URL+"/api/stats", nil)
	var st StatsReport
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	seen := map[string]PairActivity{}
	for _, p := range st.VNPairs {
		seen[p.SrcVN+">"+p.DstVN] = p
	}
	if p := seen["vn-c>vn-b"]; p.Packets != 6 || p.Rate != 0.1 || !p.LastSeen.Equal(t0.Add(50*time.Second)) {
		t.Errorf("busy pair: %+v", p)
	}
	if p := seen["vn-a>vn-b"]; p.Packets != 3 || p.Rate != 0 || !p.LastSeen.Equal(t0.Add(20*time.Second)) {
		t.Errorf("quiet pair: %+v", p)
	}
}

// /api/info describes the capture, its uptime and the disk.
func TestInfoAPI(t *testing.T) {
	st := newDirStore(t)
	started := time.Now().Add(-time.Hour)
	_, ts := newTestServer(t, Options{Store: st, Capture: CaptureInfo{Listen: "0.0.0.0:8099", Ports: "8099",
		Dir: st.dir, Started: started, Version: "v9", MaxBytes: 1 << 30}})
	resp, body := do(t, "GET", ts.URL+"/api/info", nil)
	mustStatus(t, resp.StatusCode, 200, "info")
	var in InfoReport
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	if in.Capture.Listen != "0.0.0.0:8099" || in.Capture.Version != "v9" || in.Capture.MaxBytes != 1<<30 ||
		in.DiskUsed != 1584 || in.DiskFree <= 0 || in.Uptime < 3600 || in.Uptime > 4000 {
		t.Errorf("info %s", body)
	}
	// Without a directory the free space is unknown.
	_, ts = newTestServer(t, Options{})
	_, body = do(t, "GET", ts.URL+"/api/info", nil)
	if !strings.Contains(string(body), `"disk_free_bytes": -1`) || !strings.Contains(string(body), `"uptime_s": 0`) {
		t.Errorf("info without a capture: %s", body)
	}
}

// /api/captures selects files by VN and by time before paging.
func TestCapturesFilter(t *testing.T) {
	st := newDirStore(t)
	_, ts := newTestServer(t, Options{Store: st})
	for _, c := range []struct {
		query string
		want  string
	}{
		{"vn=VN-A", "cap_00001.pcapng"},
		{"vn=admin:vn-b", "cap_00001.pcapng"},
		{"vn=nothing", ""},
		{"since=2026-03-01T12:01:30Z", "cap_00002.pcap cap_00003.pcapng.part"},
		{"until=2026-03-01T12:00:30Z", "cap_00001.pcapng"},
		{"since=2026-03-01T12:01:30Z&until=2026-03-01T12:01:45Z", "cap_00002.pcap"},
		{"since=2026-03-01T12:00:00Z&limit=1&offset=1", "cap_00002.pcap"},
	} {
		resp, body := do(t, "GET", ts.URL+"/api/captures?"+c.query, nil)
		mustStatus(t, resp.StatusCode, 200, c.query)
		var l []CaptureEntry
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range l {
			names = append(names, f.Name)
		}
		if got := strings.Join(names, " "); got != c.want {
			t.Errorf("%s: %q, want %q", c.query, got, c.want)
		}
	}
	resp, _ := do(t, "GET", ts.URL+"/api/captures?since=3", nil)
	mustStatus(t, resp.StatusCode, http.StatusBadRequest, "since=3")
	resp, _ = do(t, "GET", ts.URL+"/api/captures?vn=vn-a", nil)
	if resp.Header.Get("X-Total-Count") != "1" {
		t.Errorf("X-Total-Count %q after a selection, want 1", resp.Header.Get("X-Total-Count"))
	}
}
