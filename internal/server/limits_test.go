package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// serve runs s on a fresh loopback port until the end of the test and
// returns its address.
func serve(t *testing.T, s *Server, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, "", "") }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// serverConns counts this process's sockets that are the server end of an
// established TCP connection on port: the connections the server holds.
func serverConns(t *testing.T, port int) int {
	t.Helper()
	inodes := map[string]bool{}
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 10 || f[3] != "01" { // ESTABLISHED
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
				inodes[f[9]] = true
			}
		}
	}
	return countFDs(t, func(link string) bool {
		in, ok := strings.CutPrefix(link, "socket:[")
		return ok && inodes[strings.TrimSuffix(in, "]")]
	})
}

// countFDs counts this process's open file descriptors whose link
// satisfies match.
func countFDs(t *testing.T, match func(link string) bool) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && match(l) {
			n++
		}
	}
	return n
}

func portOf(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// peakRSS measures how much the resident memory of the process peaks above
// its level at the start of f: the freed heap is handed back first, so
// that what f allocates shows.
func peakRSS(t *testing.T, f func()) int64 {
	t.Helper()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS: %v", err)
	}
	base := procStatus(t, "VmRSS")
	f()
	return procStatus(t, "VmHWM") - base
}

// 200 connections each sending 1 MiB of header lines that never end: the
// server holds at most MaxConns of them, reads a few KiB of each and answers
// 431, so the memory stays small (without the limits it held every header:
// 200 MiB here, 2.37 GB for 1000 connections of 900 KB).
func TestHeaderFlood(t *testing.T) {
	const conns, headerBytes = 200, 1 << 20
	s, err := New(Options{MaxConns: 32})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s, "127.0.0.1")
	line := []byte("X-Pad: " + strings.Repeat("a", 1000) + "\r\n")
	chunk := bytes.Repeat(line, 16)

	var status sync.Map // first response line -> count
	peak := peakRSS(t, func() {
		var wg sync.WaitGroup
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				// A guard against hanging, not a measure.
				_ = c.SetDeadline(time.Now().Add(60 * time.Second))
				_, err = fmt.Fprintf(c, "GET /api/stats HTTP/1.1\r\nHost: localhost\r\n")
				for n := 0; err == nil && n < headerBytes; n += len(chunk) {
					_, err = c.Write(chunk)
				}
				first, _ := bufio.NewReader(c).ReadString('\n')
				v, _ := status.LoadOrStore(strings.TrimSpace(first), new(atomic.Int32))
				v.(*atomic.Int32).Add(1)
			}()
		}
		wg.Wait()
	})
	counts := map[string]int32{}
	status.Range(func(k, v any) bool { counts[k.(string)] = v.(*atomic.Int32).Load(); return true })
	for first := range counts {
		if first != "" && !strings.HasPrefix(first, "HTTP/1.1 431") {
			t.Errorf("answer %q to an endless header", first)
		}
	}
	if counts["HTTP/1.1 431 Request Header Fields Too Large"] == 0 {
		t.Errorf("no 431 among the answers: %v", counts)
	}
	t.Logf("%d connections x %d header bytes: answers %v, peak RSS +%.1f MiB", conns, headerBytes, counts, float64(peak)/(1<<20))
	if peak > 48<<20 {
		t.Errorf("peak RSS grew by %.1f MiB under the header flood, want under 48 MiB", float64(peak)/(1<<20))
	}
}

// With MaxConns connections held open, the server accepts no more until one
// closes: the next waits in the kernel's queue, not in a file descriptor of
// the process.
func TestConnectionCap(t *testing.T) {
	const limit, extra = 8, 40
	s, err := New(Options{MaxConns: limit})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s, "127.0.0.1")
	port := portOf(t, addr)
	get := func(c net.Conn) {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	}
	// limit kept-alive connections, each answered once.
	var held []net.Conn
	for range limit {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		get(c)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		held = append(held, c)
	}
	// extra more, each with a request; an answer is counted as it comes.
	var answered atomic.Int32
	for range extra {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		get(c)
		go func() {
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				resp.Body.Close()
				answered.Add(1)
			}
		}()
	}
	if n := serverConns(t, port); n != limit {
		t.Fatalf("server holds %d connections, want %d", n, limit)
	}
	// One held connection closes: exactly one waiting one gets in.
	held[0].Close()
	testenv.WaitFor(t, "a waiting connection to be served", func() bool { return answered.Load() >= 1 })
	if n, a := serverConns(t, port), answered.Load(); n != limit || a != 1 {
		t.Fatalf("after one closed: server holds %d connections, %d waiting ones answered; want %d, 1", n, a, limit)
	}
}

// countingStore counts the files it has open.
type countingStore struct {
	*dirStore
	open atomic.Int32
}

type countedFile struct {
	*os.File
	n *atomic.Int32
}

func (f countedFile) Close() error {
	f.n.Add(-1)
	return f.File.Close()
}

func (s *countingStore) Open(name string) (io.ReadSeekCloser, FileInfo, error) {
	f, in, err := s.dirStore.Open(name)
	if err != nil {
		return nil, in, err
	}
	s.open.Add(1)
	return countedFile{f.(*os.File), &s.open}, in, nil
}

// bigFile adds a file of n bytes to the store and returns its content.
func bigFile(t *testing.T, st *dirStore, name string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>12)
	}
	if err := os.WriteFile(filepath.Join(st.dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// A download whose client stops reading ends after WriteTimeout without
// progress: its connection and its file are released (before, both were
// held forever). A client that reads gets the whole file.
func TestDownloadWriteDeadline(t *testing.T) {
	st := &countingStore{dirStore: newDirStore(t)}
	const name = "big_00001.pcap"
	want := bigFile(t, st.dirStore, name, 32<<20)
	s, err := New(Options{Store: st, WriteTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s, "127.0.0.1")
	port := portOf(t, addr)
	path, _ := filepath.EvalSymlinks(filepath.Join(st.dir, name))
	fileFDs := func() int { return countFDs(t, func(l string) bool { return l == path }) }

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/api/captures/" + name)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(body, want) {
		t.Fatalf("download: %d bytes, %v; want the file's %d", len(body), err, len(want))
	}
	testenv.WaitFor(t, "the download's connection to close", func() bool { return serverConns(t, port) == 0 })

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /api/captures/%s HTTP/1.1\r\nHost: localhost\r\n\r\n", name)
	testenv.WaitFor(t, "the download to start", func() bool { return st.open.Load() == 1 })
	if fileFDs() != 1 || serverConns(t, port) != 1 {
		t.Fatalf("during the download: %d descriptors on the file, %d connections", fileFDs(), serverConns(t, port))
	}
	// The client never reads: the server gives up, closes the file and
	// the connection.
	testenv.WaitFor(t, "the stalled download to be dropped", func() bool {
		return st.open.Load() == 0 && fileFDs() == 0 && serverConns(t, port) == 0
	})
}

// More than MaxRanges ranges are refused with 416; up to MaxRanges are
// served as multipart/byteranges, byte-exact.
func TestRangeCap(t *testing.T) {
	st := newDirStore(t)
	want := bigFile(t, st, "r_00001.pcap", 100_000)
	_, ts := newTestServer(t, Options{Store: st})
	ranges := func(n int) string {
		var parts []string
		for i := range n {
			parts = append(parts, fmt.Sprintf("%d-%d", i*1000, i*1000+99))
		}
		return "bytes=" + strings.Join(parts, ", ")
	}
	url := ts.URL + "/api/captures/r_00001.pcap"
	resp, body := do(t, "GET", url, map[string]string{"Range": ranges(MaxRanges + 1)})
	mustStatus(t, resp.StatusCode, http.StatusRequestedRangeNotSatisfiable, "too many ranges")
	if cr := resp.Header.Get("Content-Range"); cr != "bytes */100000" {
		t.Errorf("416 Content-Range %q", cr)
	}
	if len(body) > 100 {
		t.Errorf("416 body of %d bytes", len(body))
	}
	// Empty elements are not ranges.
	resp, _ = do(t, "GET", url, map[string]string{"Range": "bytes=0-9,,,,,,,,,,,,,,20-29"})
	mustStatus(t, resp.StatusCode, http.StatusPartialContent, "two ranges and empty elements")

	resp, body = do(t, "GET", url, map[string]string{"Range": ranges(MaxRanges)})
	mustStatus(t, resp.StatusCode, http.StatusPartialContent, "MaxRanges ranges")
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("content type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			if i != MaxRanges {
				t.Fatalf("%d parts, want %d", i, MaxRanges)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(p)
		if !bytes.Equal(got, want[i*1000:i*1000+100]) {
			t.Errorf("part %d differs", i)
		}
	}
}

// manyStore is a store of n files whose every one lists pairs VN pairs, as
// spoofed VN names would make them.
func manyStore(t *testing.T, n, pairs int) *dirStore {
	t.Helper()
	dir := t.TempDir()
	st := &dirStore{dir: dir, infos: map[string]FileInfo{}}
	ps := make([]vnpair.Pair, pairs)
	for i := range ps {
		ps[i] = vnpair.Pair{SrcVN: fmt.Sprintf("default-domain:spoof:vn-%06d", i), DstVN: vnB, Packets: uint64(pairs - i)}
	}
	for i := range n {
		name := fmt.Sprintf("cap_%05d.pcapng", i+1)
		if err := os.WriteFile(filepath.Join(dir, name), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		st.infos[name] = FileInfo{First: t0.Add(time.Duration(i) * time.Minute), Packets: uint64(pairs), Pairs: ps}
	}
	return st
}

func listPage(t *testing.T, url string) ([]CaptureEntry, int, int) {
	t.Helper()
	resp, body := do(t, "GET", url, nil)
	mustStatus(t, resp.StatusCode, 200, url)
	var got []CaptureEntry
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	total, _ := strconv.Atoi(resp.Header.Get("X-Total-Count"))
	return got, total, len(body)
}

// 300k spoofed VN pairs (in a file's pairs and in the counters) give answers
// of a few KiB, not 139 MB; files come in pages of at most MaxPageSize.
func TestListPaging(t *testing.T) {
	const files, pairs = 1500, 300_000
	st := manyStore(t, files, pairs)
	stats := &pipeline.Stats{}
	for i := range pairs {
		stats.CountPair(fmt.Appendf(nil, "default-domain:spoof:vn-%06d", i), []byte(vnB))
	}
	_, ts := newTestServer(t, Options{Store: st, Stats: stats})
	name := func(i int) string { return fmt.Sprintf("cap_%05d.pcapng", i+1) }

	got, total, size := listPage(t, ts.URL+"/api/captures")
	if total != files || len(got) != MaxPageSize || got[0].Name != name(0) || got[MaxPageSize-1].Name != name(MaxPageSize-1) {
		t.Fatalf("default page: %d entries of %d, from %s", len(got), total, got[0].Name)
	}
	for _, e := range got {
		if len(e.Pairs) != DefaultPairs || e.PairsTotal != pairs || e.Pairs[0].Packets != pairs {
			t.Fatalf("%s: %d pairs listed of %d", e.Name, len(e.Pairs), e.PairsTotal)
		}
	}
	t.Logf("default page: %d files, %d KiB", len(got), size>>10)
	if size > 8<<20 {
		t.Errorf("default page of %d bytes", size)
	}

	got, _, size = listPage(t, ts.URL+"/api/captures?order=newest&limit=100&offset=1450&pairs=0")
	if len(got) != 50 || got[0].Name != name(49) || got[49].Name != name(0) || len(got[0].Pairs) != 0 || got[0].Pairs == nil {
		t.Fatalf("last page, newest first: %d entries from %s", len(got), got[0].Name)
	}
	if size > 32<<10 {
		t.Errorf("50 files without pairs: %d bytes", size)
	}
	got, _, _ = listPage(t, ts.URL+"/api/captures?offset=5000")
	if len(got) != 0 {
		t.Errorf("past the end: %d entries", len(got))
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "offset=-1", "pairs=1001", "order=random"} {
		resp, body := do(t, "GET", ts.URL+"/api/captures?"+q, nil)
		mustStatus(t, resp.StatusCode, 400, q)
		t.Logf("%s: %s", q, strings.TrimSpace(string(body)))
	}

	resp, body := do(t, "GET", ts.URL+"/api/stats", nil)
	mustStatus(t, resp.StatusCode, 200, "stats")
	var rep StatsReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatal(err)
	}
	// The pipeline tracks at most pipeline.DefaultMaxPairs pairs; the
	// packets of the others are counted as other too.
	if len(rep.Pipeline.Pairs) != DefaultPairs || rep.PairsTotal != min(pairs, pipeline.DefaultMaxPairs) || rep.PairsOtherPackets != pairs-DefaultPairs {
		t.Errorf("stats: %d pairs listed, %d in all, %d other packets", len(rep.Pipeline.Pairs), rep.PairsTotal, rep.PairsOtherPackets)
	}
	t.Logf("/api/stats with %d pairs: %d bytes", pairs, len(body))
	if len(body) > 16<<10 {
		t.Errorf("/api/stats of %d bytes", len(body))
	}
	resp, _ = do(t, "GET", ts.URL+"/api/stats?pairs=-1", nil)
	mustStatus(t, resp.StatusCode, 400, "pairs=-1")
}

// Without a token, only loopback names and the listen address may appear in
// Host: a page whose own name was made to resolve to 127.0.0.1 gets 421 and
// can neither read nor delete.
func TestHostAllowList(t *testing.T) {
	st := newDirStore(t)
	s, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s, "127.0.0.2")
	_, port, _ := net.SplitHostPort(addr)
	req := func(method, path, host string) int {
		t.Helper()
		r, err := http.NewRequest(method, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = host
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, host := range []string{"evil.example", "evil.example:" + port, "127.0.0.3:" + port, "localhost.evil.example", "10.0.0.1", "[::2]:" + port} {
		for _, p := range []string{"/", "/api/captures", "/api/captures/cap_00001.pcapng", "/api/stats", "/metrics", "/api/stream"} {
			if code := req("GET", p, host); code != http.StatusMisdirectedRequest {
				t.Errorf("GET %s with Host %s: %d, want 421", p, host, code)
			}
		}
		if code := req("DELETE", "/api/captures/cap_00001.pcapng", host); code != http.StatusMisdirectedRequest {
			t.Errorf("DELETE with Host %s: %d", host, code)
		}
		if code := req("GET", "/healthz", host); code != 200 {
			t.Errorf("/healthz with Host %s: %d", host, code)
		}
	}
	if _, err := os.Stat(filepath.Join(st.dir, "cap_00001.pcapng")); err != nil {
		t.Fatalf("file gone after refused deletes: %v", err)
	}
	for _, host := range []string{"localhost", "localhost:" + port, "LOCALHOST.:" + port, "127.0.0.1:" + port, "[::1]:" + port, "127.0.0.2:" + port, "127.0.0.2"} {
		if code := req("GET", "/api/captures", host); code != 200 {
			t.Errorf("Host %s: %d, want 200", host, code)
		}
	}
	// HTTP/1.0 without a Host is refused as well.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /api/captures HTTP/1.0\r\n\r\n")
	if first, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(first, "HTTP/1.0 421") {
		t.Errorf("without Host: %q", first)
	}

	// With a token any name may reach the server: the token is the guard.
	_, ts := newTestServer(t, Options{Store: st, Token: "host-token"})
	r, _ := http.NewRequest("GET", ts.URL+"/api/captures", nil)
	r.Host = "sniffer.example:8080"
	r.Header.Set("Authorization", "Bearer host-token")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mustStatus(t, resp.StatusCode, 200, "any host with the token")
}

// Every answer, page, API, errors included, carries the security headers.
func TestSecurityHeaders(t *testing.T) {
	st := newDirStore(t)
	_, open := newTestServer(t, Options{Store: st})
	_, tok := newTestServer(t, Options{Store: st, Token: "hdr-token"})
	auth := map[string]string{"Authorization": "Bearer hdr-token"}
	for _, c := range []struct {
		base, path string
		hdr        map[string]string
		status     int
	}{
		{open.URL, "/", nil, 200},
		{open.URL, "/app.js", nil, 200},
		{open.URL, "/style.css", nil, 200},
		{open.URL, "/api/captures", nil, 200},
		{open.URL, "/api/captures/cap_00001.pcapng", nil, 200},
		{open.URL, "/api/captures/nope", nil, 404},
		{open.URL, "/api/stats", nil, 200},
		{open.URL, "/metrics", nil, 200},
		{open.URL, "/healthz", nil, 200},
		{open.URL, "/nothing", nil, 404},
		{tok.URL, "/", nil, 200}, // the page, which asks for the token
		{tok.URL, "/api/info", nil, 401},
		{tok.URL, "/api/history", auth, 200},
		{tok.URL, "/api/captures", auth, 200},
	} {
		resp, _ := do(t, "GET", c.base+c.path, c.hdr)
		mustStatus(t, resp.StatusCode, c.status, c.path)
		for k, v := range securityHeaders {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s (%d): %s %q, want %q", c.path, c.status, k, got, v)
			}
		}
	}
}

// Download links carry a signature and an expiry, never the token; they open
// one file, for a limited time, for GET only.
func TestSignedLinks(t *testing.T) {
	st := newDirStore(t)
	const token = "link-token-value"
	s, ts := newTestServer(t, Options{Store: st, Token: token})
	auth := map[string]string{"Authorization": "Bearer " + token}
	resp, body := do(t, "GET", ts.URL+"/api/captures", auth)
	mustStatus(t, resp.StatusCode, 200, "list")
	if bytes.Contains(body, []byte(token)) {
		t.Fatalf("the list holds the token: %s", body)
	}
	var got []CaptureEntry
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	link := got[0].Download
	if !regexp.MustCompile(`^/api/captures/cap_00001\.pcapng\?expires=\d+&sig=[A-Za-z0-9_-]{43}$`).MatchString(link) {
		t.Fatalf("link %q", link)
	}
	want, _ := os.ReadFile(filepath.Join(st.dir, "cap_00001.pcapng"))
	resp, body = do(t, "GET", ts.URL+link, nil)
	mustStatus(t, resp.StatusCode, 200, "signed link")
	if !bytes.Equal(body, want) {
		t.Errorf("signed link: %d bytes, want the file's %d", len(body), len(want))
	}
	resp, _ = do(t, "GET", ts.URL+link, map[string]string{"Range": "bytes=1-2"})
	mustStatus(t, resp.StatusCode, 206, "signed link with a range")

	sig := link[strings.Index(link, "&sig=")+5:]
	exp := link[strings.Index(link, "expires=")+8 : strings.Index(link, "&sig=")]
	changed := "A" + sig[1:]
	if sig[0] == 'A' { // one signature in 64
		changed = "B" + sig[1:]
	}
	for what, bad := range map[string]string{
		"another file":     "/api/captures/cap_00002.pcap?expires=" + exp + "&sig=" + sig,
		"another expiry":   "/api/captures/cap_00001.pcapng?expires=9" + exp + "&sig=" + sig,
		"a changed sig":    "/api/captures/cap_00001.pcapng?expires=" + exp + "&sig=" + changed,
		"no expiry":        "/api/captures/cap_00001.pcapng?sig=" + sig,
		"the list":         "/api/captures?expires=" + exp + "&sig=" + sig,
		"a path elsewhere": "/api/stats?expires=" + exp + "&sig=" + sig,
	} {
		resp, _ := do(t, "GET", ts.URL+bad, nil)
		mustStatus(t, resp.StatusCode, 401, what)
	}
	resp, _ = do(t, "DELETE", ts.URL+link, nil)
	mustStatus(t, resp.StatusCode, 401, "DELETE with a signed link")

	// Past its expiry the link is refused.
	later := time.Now().Add(LinkTTL + time.Second)
	s.now = func() time.Time { return later }
	resp, _ = do(t, "GET", ts.URL+link, nil)
	mustStatus(t, resp.StatusCode, 401, "expired link")

	// Without a token, links are plain paths.
	_, ts2 := newTestServer(t, Options{Store: st})
	got2, _, _ := listPage(t, ts2.URL+"/api/captures")
	if got2[0].Download != "/api/captures/cap_00001.pcapng" {
		t.Errorf("link without a token: %q", got2[0].Download)
	}
}

// healthStore is a store whose writing health the test sets.
type healthStore struct {
	*dirStore
	err error
}

func (s *healthStore) Healthy() error { return s.err }

// fullStore only knows, as the ring does, whether its disk is full.
type fullStore struct {
	*dirStore
	full bool
}

func (s *fullStore) StoreStats() StoreStats { return StoreStats{DiskFull: s.full, Dropped: 5} }

func (s *fullStore) Healthy() error {
	if s.full {
		return errors.New("capture disk full")
	}
	return nil
}

// /healthz fails, with the reason, while the store cannot write.
func TestHealthz(t *testing.T) {
	hs := &healthStore{dirStore: newDirStore(t)}
	_, ts := newTestServer(t, Options{Store: hs})
	check := func(url string, code int, body string) {
		t.Helper()
		resp, b := do(t, "GET", url+"/healthz", nil)
		mustStatus(t, resp.StatusCode, code, "healthz")
		if string(b) != body {
			t.Errorf("healthz body %q, want %q", b, body)
		}
	}
	writing := func(url string, want float64) {
		t.Helper()
		if got := value(t, scrape(t, url+"/metrics"), "vrsniff_store_writing"); got != want {
			t.Errorf("vrsniff_store_writing %v, want %v", got, want)
		}
	}
	check(ts.URL, 200, "ok\n")
	writing(ts.URL, 1)
	hs.err = fmt.Errorf("open /var/lib/vrsniff/x.part: %w", os.ErrPermission)
	check(ts.URL, 503, "store cannot write: open /var/lib/vrsniff/x.part: permission denied\n")
	writing(ts.URL, 0)
	hs.err = nil
	check(ts.URL, 200, "ok\n")

	fs := &fullStore{dirStore: newDirStore(t), full: true}
	_, ts2 := newTestServer(t, Options{Store: fs})
	check(ts2.URL, 503, "store cannot write: capture disk full\n")
	fs.full = false
	check(ts2.URL, 200, "ok\n")

	_, ts3 := newTestServer(t, Options{})
	check(ts3.URL, 200, "ok\n")
}
