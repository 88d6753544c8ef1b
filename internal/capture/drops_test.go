package capture

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/source"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// lossySource replays a file as a live interface that the kernel made
// lose half the traffic: it reports as many drops as packets read, and
// after the file it waits for Close, as a quiet interface does.
type lossySource struct {
	source.Source
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *lossySource) Next(p *mirror.Packet) error {
	if err := l.Source.Next(p); err != nil {
		<-l.closed
		return source.ErrClosed
	}
	return nil
}

func (l *lossySource) Stats() source.Stats {
	st := l.Source.Stats()
	st.Dropped = st.Received
	return st
}

func (l *lossySource) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Source.Close()
}

// records keeps the log records at warning level and above.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }

func (r *records) Handle(_ context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelWarn {
		r.mu.Lock()
		r.recs = append(r.recs, rec.Clone())
		r.mu.Unlock()
	}
	return nil
}

// find returns the attributes of the warnings whose message starts with
// prefix.
func (r *records) find(prefix string) []map[string]slog.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	var found []map[string]slog.Value
	for _, rec := range r.recs {
		if strings.HasPrefix(rec.Message, prefix) {
			m := map[string]slog.Value{"msg": slog.StringValue(rec.Message)}
			rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
			found = append(found, m)
		}
	}
	return found
}

// TestDropsReported runs a capture whose kernel drops half the traffic
// and whose files drop the VN pairs past the first: the loss shows in a
// warning with the percentage and the flag to raise, in /metrics (served
// without the token on the metrics address), in each file's sidecar and
// in its pcapng interface statistics, and the files describe the capture
// interface.
func TestDropsReported(t *testing.T) {
	// Requests one way, replies the other: two directed VN pairs.
	in := testenv.FieldCase(t, "f03_port_8159_acl.pcap")
	file, err := source.OpenFile(in, false)
	if err != nil {
		t.Fatal(err)
	}
	all, err := pcapfile.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	src := &lossySource{Source: file, closed: make(chan struct{})}
	dir := t.TempDir()
	c := config(dir)
	c.Interface, c.source = "eth1", src
	c.Server.Token = "drops-token-0123456789"
	c.MetricsAddr = "127.0.0.1:0"
	c.Files.Split, c.Files.MaxOpen, c.Files.SplitIdle, c.Files.DropOther = vnpair.Directed, 1, 1<<62, true
	c.Decoder.Traffic.Ports = []uint16{8159}
	log := &records{}
	c.Logger = slog.New(log)
	svc, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	r := &running{t: t, svc: svc, done: make(chan struct{})}
	r.waitFor("the whole file read", func() bool {
		st := svc.Stats()
		return st.Source.Received > 0 && st.Pipeline.Written == st.Files.Packets+st.Files.Dropped && st.Files.Pending == 0 &&
			st.Pipeline.Read == uint64(len(all))
	})
	if err := svc.Rotate(); err != nil {
		t.Fatal(err)
	}
	st := svc.Stats()
	if st.Files.Dropped == 0 || st.Files.Packets == 0 {
		t.Fatalf("the files dropped %d packets and wrote %d: want both", st.Files.Dropped, st.Files.Packets)
	}

	// /metrics, without the token.
	fams := scrapeMetrics(t, "http://"+svc.MetricsAddr().String()+"/metrics")
	for name, want := range map[string]uint64{
		"vrsniff_kernel_drops_total":            st.Source.Received,
		"vrsniff_source_packets_received_total": st.Source.Received,
		"vrsniff_store_dropped_total":           st.Files.Dropped,
		"vrsniff_files_rotated_total":           1,
	} {
		if got := fams[name]; got != float64(want) {
			t.Errorf("%s = %v, want %d", name, got, want)
		}
	}

	// The file: sidecar, interface statistics, interface description.
	closed, _ := capturetest.CaptureFiles(t, dir)
	if len(closed) != 1 {
		t.Fatalf("closed files %v, want one", closed)
	}
	infos, err := svc.ws[0].files.List()
	if err != nil {
		t.Fatal(err)
	}
	fi := infos[0]
	if fi.KernelDropped == 0 || fi.Received != fi.KernelDropped || fi.StoreDropped != st.Files.Dropped {
		t.Errorf("file info: received %d, kernel dropped %d, store dropped %d; want equal non-zero kernel counts, %d store drops",
			fi.Received, fi.KernelDropped, fi.StoreDropped, st.Files.Dropped)
	}
	path := filepath.Join(dir, closed[0])
	recv, ifDrop, osDrop := testenv.InterfaceStats(t, path)
	want := fmt.Sprint([]uint64{fi.Received + fi.KernelDropped}, []uint64{fi.KernelDropped}, []uint64{fi.StoreDropped})
	if got := fmt.Sprint(recv, ifDrop, osDrop); got != want {
		t.Errorf("tshark reads the ISB as %s, want %s", got, want)
	}
	rows := tshark(t, path, "frame.interface_name", "frame.interface_description")
	if len(rows) == 0 || rows[0][0] != "eth1" || !strings.HasPrefix(rows[0][1], "vrsniff decoded mirror traffic from eth1, ports ") {
		t.Errorf("tshark reads the interface as %q", rows[:min(len(rows), 1)])
	}

	// The warnings, once the capture ends.
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	kernel := log.find("the kernel dropped packets")
	if len(kernel) == 0 {
		t.Fatal("no warning about the kernel's drops")
	}
	var total uint64
	for _, w := range kernel {
		if p := w["drop_percent"].Float64(); p != 50 {
			t.Errorf("kernel drop warning says %v %%, want 50", p)
		}
		total += w["dropped"].Uint64()
		if !strings.Contains(w["msg"].String(), "--ring-mb") {
			t.Errorf("kernel drop warning does not name --ring-mb: %q", w["msg"])
		}
	}
	if total != st.Source.Dropped {
		t.Errorf("kernel drop warnings sum to %d, the kernel dropped %d", total, st.Source.Dropped)
	}
	store := log.find("the capture files lost packets")
	if len(store) == 0 || !slices.ContainsFunc(store, func(w map[string]slog.Value) bool {
		return strings.Contains(w["msg"].String(), "--split-max-open") && w["drop_percent"].Float64() > 0
	}) {
		t.Errorf("store drop warnings %v", store)
	}
}

// scrapeMetrics reads the unlabelled samples of url, a /metrics, without
// a token.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	vals := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			if len(m.Label) > 0 {
				continue
			}
			switch {
			case m.Counter != nil:
				vals[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				vals[name] = m.Gauge.GetValue()
			}
		}
	}
	return vals
}

// countingSource is a source that only counts, as the test sets.
type countingSource struct {
	source.Source
	st source.Stats
}

func (c *countingSource) Stats() source.Stats { return c.st }

// Each warning sums up the loss since the one before; without new loss
// there is none.
func TestDropWarningsSummarise(t *testing.T) {
	log := &records{}
	src := &countingSource{}
	s := &Service{c: Config{Listen: "0.0.0.0:8099"}, log: slog.New(log), ws: workers{{src: src, stats: &pipeline.Stats{}}}}
	t0 := time.Now()
	s.drops.lastAt = t0
	src.st = source.Stats{Received: 20, Dropped: 10}
	s.warnDrops(t0.Add(30 * time.Second))
	s.warnDrops(t0.Add(60 * time.Second))
	src.st = source.Stats{Received: 25, Dropped: 15}
	s.warnDrops(t0.Add(90 * time.Second))
	ws := log.find("the kernel dropped packets")
	var got []string
	for _, w := range ws {
		got = append(got, fmt.Sprint(w["dropped"], w["drop_percent"], w["over"], w["total_dropped"]))
		if !strings.Contains(w["msg"].String(), "net.core.rmem_max") {
			t.Errorf("UDP drop warning does not name net.core.rmem_max: %q", w["msg"])
		}
	}
	if want := []string{"10 33.3 30s 10", "5 50 1m0s 15"}; !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
}
