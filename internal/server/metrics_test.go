package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	mustStatus(t, resp.StatusCode, 200, "metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels are exactly labels
// (name=value pairs).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("metric %s missing", name)
	}
	want := strings.Join(labels, ",")
	for _, m := range f.Metric {
		var got []string
		for _, l := range m.Label {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		if strings.Join(got, ",") != want {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s{%s} missing", name, want)
	return 0
}

func TestMetrics(t *testing.T) {
	st := &pipeline.Stats{}
	st.Read.Store(1000)
	st.ReadBytes.Store(123456)
	st.Decoded[mirror.ModeJuniper].Store(900)
	st.Decoded[mirror.ModeVXLAN].Store(40)
	st.Malformed[mirror.ErrTLV].Store(5)
	st.Truncated.Store(3)
	st.Filtered.Store(100)
	st.Written.Store(840)
	for i := range 250 {
		for range i + 1 {
			st.CountPair(fmt.Appendf(nil, "vn-%03d", i), []byte("vn-dst"))
		}
	}
	st.CountPairBytes([]byte("vn-249"), []byte("vn-dst"), 1500)
	st.LastPacket.Store(1764554400_250000000)
	store := &rotatingStore{dirStore: newDirStore(t),
		stats: StoreStats{Dropped: 7, Rotated: 12, RemovedMaxFiles: 3, RemovedMaxBytes: 2, Deleted: 1}}
	s, ts := newTestServer(t, Options{
		Store: store, Stats: st, Version: "1.2.3",
		Source: func() SourceStats { return SourceStats{Received: 1010, KernelDrops: 10} },
	})
	// Two stream clients; what they lose is counted by the hub's tests
	// (TestStreamNonReadingClients): here no packet is sent.
	for range 2 {
		resp, err := http.Get(ts.URL + "/api/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
	}
	testenv.WaitFor(t, "stream clients", func() bool { return s.Hub().Clients() == 2 })

	fams := scrape(t, ts.URL+"/metrics")
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"vrsniff_packets_read_total", nil, 1000},
		{"vrsniff_read_bytes_total", nil, 123456},
		{"vrsniff_packets_decoded_total", []string{"mode=juniper"}, 900},
		{"vrsniff_packets_decoded_total", []string{"mode=vxlan"}, 40},
		{"vrsniff_packets_decoded_total", []string{"mode=vlan"}, 0},
		{"vrsniff_packets_malformed_total", []string{"reason=bad-tlv"}, 5},
		{"vrsniff_packets_malformed_total", []string{"reason=truncated"}, 0},
		{"vrsniff_packets_truncated_total", nil, 3},
		{"vrsniff_packets_filtered_total", nil, 100},
		{"vrsniff_packets_written_total", nil, 840},
		{"vrsniff_source_packets_received_total", nil, 1010},
		{"vrsniff_kernel_drops_total", nil, 10},
		{"vrsniff_stream_clients", nil, 2},
		{"vrsniff_stream_drops_total", nil, 0},
		{"vrsniff_vn_pairs", nil, 250},
		{"vrsniff_vn_pair_packets_total", []string{"dst_vn=vn-dst", "src_vn=vn-249"}, 251},
		{"vrsniff_vn_pair_bytes_total", []string{"dst_vn=vn-dst", "src_vn=vn-249"}, 1500},
		{"vrsniff_vn_pair_bytes_total", []string{"dst_vn=vn-dst", "src_vn=vn-050"}, 0},
		{"vrsniff_vn_pair_packets_total", []string{"dst_vn=vn-dst", "src_vn=vn-050"}, 51},
		{"vrsniff_store_disk_usage_bytes", nil, 300 + 1234 + 50},
		{"vrsniff_last_packet_timestamp_seconds", nil, 1764554400.25},
		{"vrsniff_build_info", []string{"goversion=" + runtime.Version(), "version=1.2.3"}, 1},
		{"vrsniff_store_dropped_total", nil, 7},
		{"vrsniff_files_rotated_total", nil, 12},
		{"vrsniff_files_removed_total", []string{"reason=max_files"}, 3},
		{"vrsniff_files_removed_total", []string{"reason=max_bytes"}, 2},
		{"vrsniff_files_removed_total", []string{"reason=api"}, 1},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"vrsniff_vn_pair_packets_total", "vrsniff_vn_pair_bytes_total"} {
		if n := len(fams[name].Metric); n != maxPairSeries {
			t.Errorf("%d %s series, want the busiest %d", n, name, maxPairSeries)
		}
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("runtime metrics missing")
	}

	// The page's counters.
	resp, body := do(t, "GET", ts.URL+"/api/stats", nil)
	mustStatus(t, resp.StatusCode, 200, "stats")
	var rep StatsReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Pipeline.Read != 1000 || rep.Pipeline.Decoded["juniper"] != 900 || rep.Source == nil ||
		rep.Source.KernelDrops != 10 || rep.StreamClients != 2 || rep.StreamDrops != 0 || rep.DiskUsage != 1584 {
		t.Errorf("stats: %s", body)
	}
}

// VN names are any bytes, and an absent name reads as an empty one: the
// scrape still succeeds, with names that are not UTF-8 shown as Go string
// literals and pairs that read the same summed into one series.
func TestMetricsVNNameBytes(t *testing.T) {
	st := &pipeline.Stats{}
	for range 3 {
		st.CountPair([]byte("latin1-r\xe9seau"), []byte("vn-dst"))
	}
	st.CountPair(nil, []byte("vn-dst"))
	st.CountPair([]byte{}, []byte("vn-dst"))
	_, ts := newTestServer(t, Options{Stats: st})
	fams := scrape(t, ts.URL+"/metrics")
	if got := value(t, fams, "vrsniff_vn_pair_packets_total", "dst_vn=vn-dst", `src_vn="latin1-r\xe9seau"`); got != 3 {
		t.Errorf("latin-1 name: %v packets, want 3", got)
	}
	if got := value(t, fams, "vrsniff_vn_pair_packets_total", "dst_vn=vn-dst", "src_vn="); got != 2 {
		t.Errorf("absent and empty names: %v packets, want 2", got)
	}
}

// rotatingStore is a store with the ring's counters.
type rotatingStore struct {
	*dirStore
	stats StoreStats
}

func (s *rotatingStore) StoreStats() StoreStats { return s.stats }

// spoolStore is a store whose files are uploaded.
type spoolStore struct {
	*dirStore
	stats UploadStats
}

func (s *spoolStore) UploadStats() UploadStats { return s.stats }

// TestUploadMetrics checks the upload and spool series of a store that
// uploads, and that a store that does not has none.
func TestUploadMetrics(t *testing.T) {
	store := &spoolStore{dirStore: newDirStore(t), stats: UploadStats{Files: 4, Bytes: 5000, Failures: 3,
		Lag: 1500 * time.Millisecond, SpoolFiles: 2, SpoolBytes: 777}}
	_, ts := newTestServer(t, Options{Store: store, Stats: &pipeline.Stats{}})
	fams := scrape(t, ts.URL+"/metrics")
	for name, want := range map[string]float64{
		"vrsniff_upload_files_total": 4, "vrsniff_upload_bytes_total": 5000, "vrsniff_upload_failures_total": 3,
		"vrsniff_upload_lag_seconds": 1.5, "vrsniff_spool_files": 2, "vrsniff_spool_bytes": 777,
	} {
		if got := value(t, fams, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	_, ts = newTestServer(t, Options{Store: newDirStore(t), Stats: &pipeline.Stats{}})
	if _, ok := scrape(t, ts.URL+"/metrics")["vrsniff_upload_files_total"]; ok {
		t.Error("upload series without uploads")
	}
}

// TestServeMetrics checks the metrics-only listener: /metrics without the
// API's token, nothing else.
func TestServeMetrics(t *testing.T) {
	s, ts := newTestServer(t, Options{Store: newDirStore(t), Token: strings.Repeat("k", 32)})
	if resp, _ := do(t, "GET", ts.URL+"/metrics", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API /metrics without the token: %d", resp.StatusCode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeMetrics(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	if fams := scrape(t, url+"/metrics"); fams["vrsniff_packets_read_total"] == nil {
		t.Error("metrics listener lacks vrsniff_packets_read_total")
	}
	for _, path := range []string{"/api/captures", "/api/stats", "/", "/healthz"} {
		if resp, _ := do(t, "GET", url+path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("metrics listener answers GET %s with %d, want 404", path, resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeMetrics: %v", err)
	}
}
