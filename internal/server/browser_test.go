package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/extract"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
)

// browser starts headless Chromium for the test, its window width x 900,
// on UTC: the page's time inputs are in the browser's local time.
func browser(t *testing.T, width int) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed for the page test (apt-get install -y chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(width, 900), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Env("TZ=UTC"))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

// requestLog records the URL of every request a test server gets, and
// whether it carried an Authorization header.
type requestLog struct {
	mu     sync.Mutex
	urls   []string
	bearer map[string]bool
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		u := r.URL.String()
		l.urls = append(l.urls, u)
		if l.bearer == nil {
			l.bearer = map[string]bool{}
		}
		l.bearer[u] = r.Header.Get("Authorization") != ""
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.urls...)
}

// find waits for a request whose URL starts with prefix and returns it and
// whether it carried the header; the test's context bounds the wait.
func (l *requestLog) find(ctx context.Context, prefix string) (string, bool, error) {
	for {
		l.mu.Lock()
		for _, u := range l.urls {
			if strings.HasPrefix(u, prefix) {
				b := l.bearer[u]
				l.mu.Unlock()
				return u, b, nil
			}
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// longName is a file name as a split capture makes them: one line of it
// would not fit the page's name column at 800 px.
const longName = "vrsniff_default-domain_k8s-default_k8s-default-pod-network-with-a-long-name__default-domain_admin_vn-b_00042.pcapng"

// liveServer is a server with files, traffic through two VN pairs, some
// kernel drops and an hour's worth of samples (taken on a clock of its own).
func liveServer(t *testing.T, token string) (*Server, *httptest.Server, *requestLog) {
	t.Helper()
	st := newDirStore(t)
	if err := os.WriteFile(filepath.Join(st.dir, longName), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	st.infos[longName] = FileInfo{First: t0.Add(70 * time.Minute), Last: t0.Add(75 * time.Minute), Packets: 40}
	stats := new(pipeline.Stats)
	var drops uint64
	s, err := New(Options{Store: st, Stats: stats, Token: token,
		Source: func() SourceStats { return SourceStats{Received: stats.Read.Load(), KernelDrops: drops} },
		Capture: CaptureInfo{Interface: "ens3f1", Ports: "8099,auto", VXLANPorts: "4789", Dir: st.dir,
			Started: time.Now().Add(-90 * time.Minute), Version: "v1.2.3", MaxBytes: 10 << 20,
			FileMaxSize: 1 << 20, MaxFiles: 50}})
	if err != nil {
		t.Fatal(err)
	}
	clk := time.Now().Add(-time.Hour)
	s.now = func() time.Time { return clk }
	for i := range 360 {
		for range 10 + i%30 {
			stats.Read.Add(1)
			stats.ReadBytes.Add(1000)
			stats.CountPairBytes([]byte("default-domain:admin:vn-a"), []byte("default-domain:admin:vn-b"), 1000)
		}
		stats.CountPair([]byte("default-domain:k8s-default:k8s-default-pod-network-with-a-long-name"), []byte("default-domain:admin:vn-b"))
		if i == 300 {
			drops += 25
		}
		s.sample()
		clk = clk.Add(10 * time.Second)
	}
	s.now = time.Now
	log := new(requestLog)
	ts := httptest.NewServer(log.wrap(s.Handler()))
	t.Cleanup(func() {
		s.Hub().Close()
		ts.Close()
	})
	return s, ts, log
}

// The page asks for the token with a form, keeps it in sessionStorage and
// sends it in the Authorization header only; then it shows what is
// captured, the rates of the last hour, the VN pairs and the files.
func TestPageLogin(t *testing.T) {
	const token = "login-token-0123456789"
	_, ts, log := liveServer(t, token)
	ctx := browser(t, 1280)
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible("#login")); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	loginShown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById("login").hidden && document.getElementById("main").hidden`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys("#token", token), chromedp.Click(`#login button`),
		chromedp.WaitReady(`body[data-loaded="1"]`)); err != nil {
		t.Fatalf("log in: %v", err)
	}
	if !loginShown {
		t.Errorf("before the token, the login form is not shown alone")
	}
	type result struct {
		Stored    string            `json:"stored"`
		Header    map[string]string `json:"header"`
		Points    map[string]string `json:"points"`
		Path      string            `json:"path"`
		Pairs     []string          `json:"pairs"`
		Files     []string          `json:"files"`
		Hours     int               `json:"hours"`
		Drop      string            `json:"drop"`
		PairBytes []string          `json:"pairBytes"`
		DropCls   string            `json:"dropcls"`
		Error     string            `json:"error"`
	}
	js := `(() => {
	  const h = {};
	  document.querySelectorAll("#capture > div").forEach(d => h[d.dataset.key] = d.querySelector("dd").textContent);
	  const p = {};
	  document.querySelectorAll(".chart").forEach(f => p[f.id] = f.dataset.points);
	  return {
	    stored: sessionStorage.getItem("vrsniff-token"), header: h, points: p,
	    path: document.querySelector("#chart-packets path").getAttribute("d"),
	    pairs: [...document.querySelectorAll("#pairs tbody tr")].map(r => r.dataset.pair),
	    pairBytes: [...document.querySelectorAll("#pairs tbody .bytes")].map(c => c.textContent),
	    files: [...document.querySelectorAll("#captures tr[data-name]")].map(r => r.dataset.name),
	    hours: document.querySelectorAll("#captures tr.hour").length,
	    drop: document.getElementById("dropline").textContent,
	    dropcls: document.getElementById("dropline").className,
	    error: document.getElementById("error").textContent,
	  };
	})()`
	got, err := chromedp.Run(ctx, chromedp.Evaluate[result](js))
	if err != nil {
		t.Fatal(err)
	}
	if got.Stored != token {
		t.Errorf("sessionStorage holds %q, want the token", got.Stored)
	}
	for k, v := range map[string]string{"Interface": "ens3f1", "Mirror ports": "8099,auto", "VXLAN ports": "4789",
		"Filter": "none", "Uptime": "1h 30m"} {
		if !strings.HasPrefix(got.Header[k], v) {
			t.Errorf("header %s = %q, want %q", k, got.Header[k], v)
		}
	}
	if d := got.Header["Disk used"]; !strings.Contains(d, "of 10.0 MiB") {
		t.Errorf("header Disk used = %q, want it against the 10 MiB limit", d)
	}
	if got.Header["Free"] == "" || got.Header["Started"] == "" {
		t.Errorf("header lacks free space or start: %v", got.Header)
	}
	for _, id := range []string{"chart-packets", "chart-bits", "chart-drops"} {
		if got.Points[id] != "359" {
			t.Errorf("chart %s has %q points, want 359 (360 samples)", id, got.Points[id])
		}
	}
	if n := strings.Count(got.Path, "L"); n != 358 {
		t.Errorf("packets path has %d segments, want 358: %.80s", n, got.Path)
	}
	if !strings.Contains(got.Drop, "Dropped 25 packets") || !strings.Contains(got.Drop, "last drop") || got.DropCls != "bad" {
		t.Errorf("drop line %q (class %q)", got.Drop, got.DropCls)
	}
	// 360 samples of 10 to 39 packets of 1000 bytes: 8,820 packets.
	if len(got.PairBytes) != 2 || got.PairBytes[0] != "8.82 MB" {
		t.Errorf("VN pair bytes %q, want 8.82 MB first", got.PairBytes)
	}
	if len(got.Pairs) != 2 || got.Pairs[0] != "default-domain:admin:vn-a default-domain:admin:vn-b" {
		t.Errorf("VN pairs table: %q", got.Pairs)
	}
	if strings.Join(got.Files, " ") != longName+" cap_00003.pcapng.part cap_00002.pcap cap_00001.pcapng" || got.Hours != 2 {
		t.Errorf("files %v under %d hour headings", got.Files, got.Hours)
	}
	if got.Error != "" {
		t.Errorf("page shows an error: %s", got.Error)
	}
	screenshot(t, ctx, "page-1280.png")

	// A pair's stream is the live stream filtered to it.
	cmd, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#pairs tbody tr:first-child button").click(),
	  document.getElementById("streamcmd").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `/api/stream?src_vn=default-domain%3Aadmin%3Avn-a&dst_vn=default-domain%3Aadmin%3Avn-b'`; !strings.Contains(cmd, want) ||
		!strings.Contains(cmd, `-H "Authorization: Bearer $TOKEN"`) || strings.Contains(cmd, token) {
		t.Errorf("stream command of a pair: %s", cmd)
	}

	// A pair's download goes to /api/pcap with its VNs and the time range,
	// the token in the header.
	if err := chromedp.Do(ctx, chromedp.Click(`#pairs tbody tr:first-child a.dl`)); err != nil {
		t.Fatal(err)
	}
	u, bearer, err := log.find(ctx, "/api/pcap?")
	if err != nil {
		t.Fatalf("no request to /api/pcap after a click on download: %v", err)
	}
	if !bearer || !strings.Contains(u, "src_vn=default-domain%3Aadmin%3Avn-a&dst_vn=default-domain%3Aadmin%3Avn-b&since=") ||
		!strings.Contains(u, "&until=") {
		t.Errorf("download of a pair: %s (Authorization header %v)", u, bearer)
	}
	urls := log.all()
	if len(urls) < 6 {
		t.Errorf("the server saw only %v", urls)
	}
	for _, u := range urls {
		if strings.Contains(u, token) || strings.Contains(u, "token=") {
			t.Errorf("the page requested %s: the token is in a URL", u)
		}
	}
}

// At 800 px the page does not scroll sideways and a long file name takes
// one line, cut with an ellipsis and whole in its title.
func TestPageNarrow(t *testing.T) {
	_, ts, _ := liveServer(t, "")
	ctx := browser(t, 800)
	type result struct {
		Width     int      `json:"width"`
		Client    int      `json:"client"`
		NameH     float64  `json:"nameh"`
		LineH     float64  `json:"lineh"`
		Title     string   `json:"title"`
		Cut       bool     `json:"cut"`
		Overflows []string `json:"overflows"`
		Hidden    int      `json:"hidden"`
	}
	js := `(() => {
	  const a = document.querySelector("#captures tr[data-name^='vrsniff_'] a.name");
	  const over = [...document.querySelectorAll("table")].filter(t => t.getBoundingClientRect().right > document.documentElement.clientWidth + 1).map(t => t.id);
	  return {width: document.scrollingElement.scrollWidth, client: document.documentElement.clientWidth,
	    nameh: a.getBoundingClientRect().height, lineh: parseFloat(getComputedStyle(a).fontSize) * 1.25,
	    cut: a.scrollWidth > a.clientWidth, title: a.title, overflows: over,
	    hidden: [...document.querySelectorAll("#pairs tbody tr td:last-child > *")].filter(x => {
	      const r = x.getBoundingClientRect();
	      return r.width === 0 || r.right > document.documentElement.clientWidth;
	    }).length};
	})()`
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 900), chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitReady(`body[data-loaded="1"]`)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[result](js))
	if err != nil {
		t.Fatal(err)
	}
	if got.Width > 800 {
		t.Errorf("at 800 px the page is %d px wide", got.Width)
	}
	if len(got.Overflows) > 0 {
		t.Errorf("tables cut off at the right: %v", got.Overflows)
	}
	if got.Hidden > 0 {
		t.Errorf("%d of the VN pairs' stream and download actions are not shown", got.Hidden)
	}
	if got.NameH > 2*got.LineH {
		t.Errorf("a file name is %.0f px tall, lines are %.0f", got.NameH, got.LineH)
	}
	if !got.Cut {
		t.Errorf("the long file name is not cut to its column: %+v", got)
	}
	if got.Title != longName {
		t.Errorf("name title %q", got.Title)
	}
	screenshot(t, ctx, "page-800.png")
}

// screenshot writes the page to docs/NAME when VRSNIFF_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("VRSNIFF_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPageDownloadRange: a VN pair's download over the time range set on
// the page saves, through the browser, the pcapng that extract writes for
// that pair and range from the same files, packet for packet.
func TestPageDownloadRange(t *testing.T) {
	const token = "download-token-0123456789"
	dir := t.TempDir()
	pairs := [][2]string{{"default-domain:admin:vn-a", "default-domain:admin:vn-b"}, {"default-domain:admin:vn-c", "default-domain:admin:vn-d"}}
	var files [2][]*mirror.Packet
	stats := new(pipeline.Stats)
	for i := range 60 {
		pr := pairs[i%2]
		p := decodedPacket(frame(t, i%3 == 0, uint16(2000+i), 80+i), pr[0], pr[1], mirror.DirEgress, t0.Add(time.Duration(i)*time.Second))
		files[i/30] = append(files[i/30], p)
		stats.CountPair(p.Meta.SrcVN, p.Meta.DstVN)
	}
	st := &dirStore{dir: dir, infos: map[string]FileInfo{}}
	var srcs []extract.Source
	for k, ps := range files {
		name := fmt.Sprintf("cap_%05d.pcapng", k+1)
		path := filepath.Join(dir, name)
		capturetest.WritePcapng(t, path, ps)
		st.infos[name] = FileInfo{First: ps[0].Timestamp, Last: ps[len(ps)-1].Timestamp, Packets: uint64(len(ps))}
		srcs = append(srcs, extract.Source{Name: name, First: ps[0].Timestamp, Last: ps[len(ps)-1].Timestamp,
			Open: func() (io.ReadCloser, error) { return os.Open(path) }})
	}
	s, err := New(Options{Store: st, Stats: stats, Token: token, Capture: CaptureInfo{Interface: "ens3f1", Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	log := new(requestLog)
	ts := httptest.NewServer(log.wrap(s.Handler()))
	t.Cleanup(func() {
		s.Hub().Close()
		ts.Close()
	})

	ctx := browser(t, 1280)
	saved := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: saved}); err != nil {
		t.Fatal(err)
	}
	// The range [t0+10s, t0+45s) crosses from the first file into the
	// second; the inputs are UTC (browser).
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", token), chromedp.Click(`#login button`),
		chromedp.WaitReady(`body[data-loaded="1"]`)); err != nil {
		t.Fatalf("log in: %v", err)
	}
	set := fmt.Sprintf(`document.getElementById("dlsince").value = %q; document.getElementById("dluntil").value = %q;
	  [...document.querySelectorAll("#pairs tbody tr")].map(r => r.dataset.pair)`,
		t0.Add(10*time.Second).Format("2006-01-02T15:04:05"), t0.Add(45*time.Second).Format("2006-01-02T15:04:05"))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](set))
	if err != nil {
		t.Fatal(err)
	}
	want := pairs[1][0] + " " + pairs[1][1]
	i := slices.Index(rows, want)
	if i < 0 {
		t.Fatalf("VN pairs table %q lacks %q", rows, want)
	}
	if err := chromedp.Do(ctx, chromedp.Click(fmt.Sprintf(`#pairs tbody tr:nth-child(%d) a.dl`, i+1))); err != nil {
		t.Fatal(err)
	}
	u, _, err := log.find(ctx, "/api/pcap?")
	if err != nil {
		t.Fatalf("no request to /api/pcap: %v", err)
	}
	name := strings.NewReplacer(":", "_", "-", "-").Replace(pairs[1][0]+"_"+pairs[1][1]) + ".pcapng"
	var got []byte
	for {
		if b, err := os.ReadFile(filepath.Join(saved, name)); err == nil && len(b) > 0 {
			got = b
			break
		}
		select {
		case <-ctx.Done():
			entries, _ := os.ReadDir(saved)
			t.Fatalf("no download %s in %v after %s", name, entries, u)
		case <-time.After(50 * time.Millisecond):
		}
	}

	// The reference: extract over the same files, the window and the
	// pair's filter as the page's request states them.
	q, err := url.ParseQuery(strings.TrimPrefix(u, "/api/pcap?"))
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("since") != "2026-03-01T12:00:10Z" || q.Get("until") != "2026-03-01T12:00:45Z" {
		t.Errorf("the page asked for %s to %s, want the range set on it", q.Get("since"), q.Get("until"))
	}
	since, _ := time.Parse(time.RFC3339, q.Get("since"))
	until, _ := time.Parse(time.RFC3339, q.Get("until"))
	q.Del("since")
	q.Del("until")
	f, err := filter.FromQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	var ref bytes.Buffer
	if _, err := extract.Write(context.Background(), &ref, srcs, extract.Options{Since: since, Until: until, Filter: f}); err != nil {
		t.Fatal(err)
	}
	type rec struct {
		ts      time.Time
		data    string
		comment string
	}
	read := func(b []byte) []rec {
		rd, err := pcapfile.NewReaderBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		var rs []rec
		var p mirror.Packet
		for rd.Next(&p) == nil {
			rs = append(rs, rec{p.Timestamp, string(p.Data), string(bytes.Join(p.Comments, []byte("|")))})
		}
		return rs
	}
	gotRecs, refRecs := read(got), read(ref.Bytes())
	// vn-c to vn-d is every odd second: 11, 13, ..., 43.
	if len(refRecs) != 17 {
		t.Fatalf("extract wrote %d packets, want 17", len(refRecs))
	}
	if !slices.Equal(gotRecs, refRecs) {
		t.Errorf("the page's download holds %d packets, extract %d: not the same", len(gotRecs), len(refRecs))
	}
}
