// Package server serves a capture directory, a live pcapng stream of decoded
// packets, Prometheus metrics and a small web page over HTTP.
package server

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// Defaults of the Options limits.
const (
	DefaultStreamBuffer  = 16 << 20
	DefaultStreamClients = 32
	DefaultMaxConns      = 256
	// DefaultMaxHeaderBytes leaves room for a filter expression at its
	// length cap (filter.MaxExprLen), percent-encoded in /api/stream?bpf=.
	DefaultMaxHeaderBytes = 16 << 10
	// DefaultSendBuffer caps a connection's kernel send buffer: without
	// it Linux grows each one to net.ipv4.tcp_wmem's maximum (4 MiB), and
	// stream clients that stop reading pin that much kernel memory each.
	DefaultSendBuffer    = 256 << 10
	DefaultHeaderTimeout = 10 * time.Second
	DefaultWriteTimeout  = time.Minute
)

// Limits of the API that are part of its contract.
const (
	// MaxRanges is the most byte ranges one download request may ask
	// for; more are answered 416.
	MaxRanges = 8
	// MaxPageSize is the most files one /api/captures answer lists, and
	// its default.
	MaxPageSize = 1000
	// MaxPairs is the most VN pairs listed per file on /api/captures and
	// in /api/stats; DefaultPairs are listed unless the request asks.
	MaxPairs     = 1000
	DefaultPairs = 20
	// LinkTTL is how long a signed download link stays valid.
	LinkTTL = 10 * time.Minute
)

// SourceStats are the capture source's own counters.
type SourceStats struct {
	Received    uint64 `json:"received"`     // packets the source saw
	KernelDrops uint64 `json:"kernel_drops"` // packets the kernel dropped before the source read them
}

// Counters are the pipeline counters the server reports: one pipeline's
// *pipeline.Stats, or the sum over a capture's workers. Summary is called
// for every /api/stats and /metrics request and every history sample.
type Counters interface {
	Summary() pipeline.Summary
}

// Options configure a Server. Zero limits take their defaults.
type Options struct {
	Store  Store              // capture files; nil when there are none
	Stats  Counters           // pipeline counters; nil reads as zero
	Source func() SourceStats // capture source counters; may be nil
	Token  string             // bearer token required on every request but /healthz; "" for none
	// Version is the program's version, the version label of
	// vrsniff_build_info; "" takes the main module's from the build.
	Version string
	Logger  *slog.Logger // nil discards
	// Health returns why the capture is unhealthy (a failed source, no
	// packet for too long), nil while it is not; /healthz answers 503 with
	// its message and vrsniff_healthy is 0. nil: always healthy.
	Health func() error
	// StreamBuffer is the size in bytes of the backlog of encoded packets
	// that all live stream clients share: how far behind the capture a
	// client may fall before it loses packets. At least MinStreamBuffer.
	StreamBuffer int
	// StreamClients caps the live stream clients; a stream request past
	// it is answered 503.
	StreamClients int
	// MaxConns caps the open HTTP connections; further ones wait in the
	// kernel's accept queue until one closes. Live streams hold theirs.
	MaxConns int
	// MaxHeaderBytes caps the request line and header of a request, in
	// bytes; a larger one is answered 431.
	MaxHeaderBytes int
	// SendBuffer caps each connection's kernel send buffer, in bytes
	// (SO_SNDBUF): what a client that stops reading can pin in the kernel.
	SendBuffer int
	// HeaderTimeout is how long a client has to send its request header.
	HeaderTimeout time.Duration
	// WriteTimeout is the longest one write to a client may wait: a client
	// that stops reading a download or a stream for that long is
	// disconnected, which frees its connection and file.
	WriteTimeout time.Duration
	// Capture describes the capture for /api/info and the page.
	Capture CaptureInfo
	// HistoryEvery is how often the counters are sampled for the rates
	// of /api/history (DefaultHistoryEvery when 0), HistoryLen how many
	// samples are kept (DefaultHistoryLen when 0): a fixed ring.
	HistoryEvery time.Duration
	HistoryLen   int
	// Querier answers GET /api/query across the fleet's stored files; nil
	// when the server has no fleet store (404).
	Querier Querier
}

// Server is the HTTP side of a capture.
type Server struct {
	pcapMaxOpen int // files /api/pcap opens at once; 0: extract.DefaultMaxOpen

	opts    Options
	log     *slog.Logger
	hub     *Hub
	reg     *prometheus.Registry
	handler http.Handler
	linkKey []byte                   // signs download links
	hosts   atomic.Pointer[[]string] // Host names accepted without a token
	now     func() time.Time         // the clock, for links
	health  func() error             // nil while the store can write
	// history holds the sampled counters; pairRates the VN pairs' rates.
	history   *History
	pairRates pairRates
}

//go:embed static
var static embed.FS

// New checks the options and builds the server.
func New(o Options) (*Server, error) {
	return newServer(o, newPcapNG)
}

func newServer(o Options, enc newEncoderFunc) (*Server, error) {
	for _, l := range []struct {
		name string
		v    int
	}{{"stream buffer", o.StreamBuffer}, {"stream clients", o.StreamClients}, {"connection limit", o.MaxConns}, {"send buffer", o.SendBuffer},
		{"header limit", o.MaxHeaderBytes}, {"header timeout", int(o.HeaderTimeout)}, {"write timeout", int(o.WriteTimeout)},
		{"history interval", int(o.HistoryEvery)}, {"history length", o.HistoryLen}} {
		if l.v < 0 {
			return nil, fmt.Errorf("%s %d: must not be negative", l.name, l.v)
		}
	}
	o.StreamBuffer = cmp0(o.StreamBuffer, DefaultStreamBuffer)
	o.StreamClients = cmp0(o.StreamClients, DefaultStreamClients)
	o.MaxConns = cmp0(o.MaxConns, DefaultMaxConns)
	o.MaxHeaderBytes = cmp0(o.MaxHeaderBytes, DefaultMaxHeaderBytes)
	o.SendBuffer = cmp0(o.SendBuffer, DefaultSendBuffer)
	o.HeaderTimeout = cmp0(o.HeaderTimeout, DefaultHeaderTimeout)
	o.WriteTimeout = cmp0(o.WriteTimeout, DefaultWriteTimeout)
	o.HistoryEvery = cmp0(o.HistoryEvery, DefaultHistoryEvery)
	o.HistoryLen = cmp0(o.HistoryLen, DefaultHistoryLen)
	if o.Stats == nil {
		o.Stats = new(pipeline.Stats)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	hub, err := newHub(o.StreamBuffer, o.StreamClients, enc)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, log: o.Logger, hub: hub, linkKey: make([]byte, 32), now: time.Now,
		health: storeHealth(o.Store), history: NewHistory(o.HistoryLen)}
	if _, err := rand.Read(s.linkKey); err != nil {
		return nil, fmt.Errorf("link key: %w", err)
	}
	s.hosts.Store(&[]string{"localhost", "127.0.0.1", "::1"})

	s.reg = prometheus.NewRegistry()
	if err := s.reg.Register(newCollector(s)); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if err := s.reg.Register(healthGauge(s)); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if err := s.reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if err := s.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}

	page, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(page)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /api/captures", s.listCaptures)
	mux.HandleFunc("GET /api/captures/{name}", s.getCapture)
	mux.HandleFunc("DELETE /api/captures/{name}", s.deleteCapture)
	mux.HandleFunc("GET /api/stream", s.stream)
	mux.HandleFunc("GET /api/pcap", s.pcap)
	mux.HandleFunc("GET /api/query", s.query)
	mux.HandleFunc("GET /api/stats", s.stats)
	mux.HandleFunc("GET /api/info", s.info)
	mux.HandleFunc("GET /api/history", s.historyHandler)
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.Handle("GET /{$}", files)
	mux.Handle("GET /app.js", files)
	mux.Handle("GET /style.css", files)
	s.handler = s.logRequests(s.secure(s.checkHost(s.auth(mux))))
	return s, nil
}

// cmp0 returns v, or def when v is zero.
func cmp0[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Handler serves the API, the stream, the metrics and the page.
func (s *Server) Handler() http.Handler { return s.handler }

// Hub is the live stream sink, to be added to the pipeline's sinks.
func (s *Server) Hub() *Hub { return s.hub }

// Registry holds the server's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// securityHeaders go on every answer. The page loads its script and style
// from the server itself and talks only to the API; nothing may frame it or
// learn its address from a Referer.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
		"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"Referrer-Policy":        "no-referrer",
	"X-Frame-Options":        "DENY",
	"X-Content-Type-Options": "nosniff",
}

func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		next.ServeHTTP(w, r)
	})
}

// allowHost adds the host of a listen address to the names a request's Host
// header may carry when the server has no token.
func (s *Server) allowHost(addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return
	}
	host = normalizeHost(host)
	old := *s.hosts.Load()
	if slices.Contains(old, host) {
		return
	}
	next := append(slices.Clip(old), host)
	s.hosts.Store(&next)
}

// normalizeHost lowercases a host name and drops a port, IPv6 brackets and
// a trailing dot.
func normalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// checkHost refuses, when there is no token, requests whose Host is not a
// loopback name or the listen address: a web page whose name was made to
// resolve to 127.0.0.1 (DNS rebinding) would otherwise read and delete
// captures from the operator's browser.
func (s *Server) checkHost(next http.Handler) http.Handler {
	if s.opts.Token != "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && !slices.Contains(*s.hosts.Load(), normalizeHost(r.Host)) {
			http.Error(w, "host "+strconv.Quote(r.Host)+" not served without a token: use localhost",
				http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// publicPaths are served without the token: the health check, and the
// page with its script and style, which the browser loads before it has the
// token (they hold nothing but what the page is; the page asks for the
// token with a form).
var publicPaths = map[string]bool{"/healthz": true, "/": true, "/app.js": true, "/style.css": true}

// auth requires the bearer token, from the Authorization header or, on GET,
// from the token query parameter; a download may instead carry a signed
// link (see downloadLink). A request that changes something (DELETE) takes
// the header only: a URL ends up in logs and histories.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.opts.Token == "" {
		return next
	}
	want := []byte(s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if publicPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		get := r.Method == http.MethodGet || r.Method == http.MethodHead
		var got string
		if h := r.Header.Get("Authorization"); h != "" {
			if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
				got = strings.TrimSpace(tok)
			}
		} else if get {
			q := r.URL.Query()
			if q.Has("sig") {
				if name, ok := strings.CutPrefix(r.URL.Path, "/api/captures/"); ok && s.checkLink(name, q.Get("expires"), q.Get("sig")) {
					next.ServeHTTP(w, r)
					return
				}
			}
			got = q.Get("token")
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vrsniff"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// respWriter records the status for the request log and gives every write
// WriteTimeout to complete. Unwrap lets http.ResponseController reach the
// Flusher and deadlines underneath.
type respWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	status  int
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	// A deadline per write, not per response: a large download to a slow
	// reader goes on as long as it makes progress.
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.ResponseWriter.Write(b)
}

func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &respWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: s.opts.WriteTimeout}
		next.ServeHTTP(rw, r)
		if rw.status == 0 {
			rw.status = http.StatusOK
		}
		// The path only: the query may hold the token.
		s.log.Debug("http request", "method", r.Method, "path", r.URL.Path, "status", rw.status,
			"remote", r.RemoteAddr, "duration", time.Since(start))
	})
}

// storeHealth finds how to ask st whether it can write: a store that
// knows reports why not (StoreHealth); one that does not is taken as able.
func storeHealth(st Store) func() error {
	if h, ok := st.(StoreHealth); ok {
		return h.Healthy
	}
	return func() error { return nil }
}

// healthz answers 503 with the reason while the store cannot write or the
// capture is unhealthy (Options.Health).
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.unhealthy(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "%v\n", err)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// validName accepts only a plain base name, whatever the store would say.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." &&
		!strings.ContainsAny(name, `/\`+"\x00") && !strings.Contains(name, "..") &&
		!filepath.IsAbs(name) && filepath.Base(name) == name
}

// CaptureEntry is one file of /api/captures: its FileInfo, with at most the
// requested number of VN pairs (busiest first), how many its sidecar lists
// (at most --max-file-pairs; the packets of the rest are in
// vn_pairs_other_packets), and a link to download it without the token.
type CaptureEntry struct {
	FileInfo
	PairsTotal int    `json:"vn_pairs_total"`
	Download   string `json:"download"`
}

// intParam reads query parameter name as an integer in [lo, hi], def when
// absent.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// listCaptures answers one page of the files: offset and limit (at most
// MaxPageSize) select it, order=newest lists the newest first, pairs caps
// the VN pairs per file; since=, until= (RFC 3339) and vn= keep only the
// files with packets in that time or of a VN pair naming vn (fileFilter).
// X-Total-Count says how many files there are, after that selection.
func (s *Server) listCaptures(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", MaxPageSize, 1, MaxPageSize)
	var offset, pairs int
	if err == nil {
		offset, err = intParam(r, "offset", 0, 0, int(^uint(0)>>1))
	}
	if err == nil {
		pairs, err = intParam(r, "pairs", DefaultPairs, 0, MaxPairs)
	}
	var sel fileFilter
	if err == nil {
		sel, err = fileFilterFrom(r)
	}
	order := r.URL.Query().Get("order")
	if err == nil && order != "" && order != "oldest" && order != "newest" {
		err = fmt.Errorf("order=%q: want oldest or newest", order)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var files []FileInfo
	if s.opts.Store != nil {
		if files, err = s.opts.Store.List(); err != nil {
			s.log.Error("list captures", "err", err)
			http.Error(w, "cannot list captures", http.StatusInternalServerError)
			return
		}
	}
	if !sel.zero() {
		files = slices.DeleteFunc(files, func(f FileInfo) bool { return !sel.match(&f) })
	}
	if order == "newest" {
		slices.Reverse(files)
	}
	total := len(files)
	start := min(offset, total)
	files = files[start:min(start+limit, total)]
	out := make([]CaptureEntry, len(files))
	for i, f := range files {
		out[i] = CaptureEntry{FileInfo: f, PairsTotal: len(f.Pairs), Download: s.downloadLink(f.Name)}
		out[i].Pairs = f.Pairs[:min(pairs, len(f.Pairs))]
		if out[i].Pairs == nil {
			out[i].Pairs = []vnpair.Pair{}
		}
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	writeJSON(w, out)
}

// storeName reads and checks the {name} path value; it answers the request
// itself when the name is unusable.
func (s *Server) storeName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if !validName(name) {
		http.Error(w, "invalid capture name", http.StatusBadRequest)
		return "", false
	}
	if s.opts.Store == nil {
		http.Error(w, "no such capture", http.StatusNotFound)
		return "", false
	}
	return name, true
}

// countRanges is the number of ranges a Range header asks for, counted as
// http.ServeContent reads them.
func countRanges(h string) int {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return 0
	}
	n := 0
	for part := range strings.SplitSeq(spec, ",") {
		if strings.Trim(part, " \t") != "" {
			n++
		}
	}
	return n
}

func (s *Server) getCapture(w http.ResponseWriter, r *http.Request) {
	name, ok := s.storeName(w, r)
	if !ok {
		return
	}
	f, info, err := s.opts.Store.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		http.Error(w, "no such capture", http.StatusNotFound)
		return
	}
	if err != nil {
		s.log.Error("open capture", "name", name, "err", err)
		http.Error(w, "cannot open capture", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	if countRanges(r.Header.Get("Range")) > MaxRanges {
		// Each range is a part with its own header: many small ones cost
		// far more to send than they ask for.
		if size, err := f.Seek(0, io.SeekEnd); err == nil {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		}
		http.Error(w, fmt.Sprintf("more than %d ranges", MaxRanges), http.StatusRequestedRangeNotSatisfiable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType(name))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	// ServeContent handles Range and If-Modified-Since.
	http.ServeContent(w, r, name, info.Last, f)
}

func contentType(name string) string {
	if strings.HasSuffix(strings.TrimSuffix(name, ".part"), ".pcapng") {
		return "application/x-pcapng"
	}
	return "application/vnd.tcpdump.pcap"
}

func (s *Server) deleteCapture(w http.ResponseWriter, r *http.Request) {
	name, ok := s.storeName(w, r)
	if !ok {
		return
	}
	// Delete alone decides: a file listed a moment ago may be gone, or
	// have become the one being written, by the time it is asked.
	switch err := s.opts.Store.Delete(name); {
	case errors.Is(err, ErrBusy):
		http.Error(w, "capture is still being written", http.StatusConflict)
		return
	case errors.Is(err, fs.ErrNotExist):
		http.Error(w, "no such capture", http.StatusNotFound)
		return
	case err != nil:
		s.log.Error("delete capture", "name", name, "err", err)
		http.Error(w, "cannot delete capture", http.StatusInternalServerError)
		return
	}
	s.log.Info("capture deleted", "name", name, "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

// StatsReport is the JSON of /api/stats. Pipeline.Pairs holds at most the
// requested number of VN pairs, busiest first; PairsTotal counts them all
// and PairsOtherPackets the packets of those left out.
type StatsReport struct {
	Pipeline          pipeline.Summary `json:"pipeline"`
	PairsTotal        int              `json:"vn_pairs_total"`
	PairsOtherPackets uint64           `json:"vn_pairs_other_packets"`
	Source            *SourceStats     `json:"source,omitempty"`
	StreamClients     int              `json:"stream_clients"`
	StreamSent        uint64           `json:"stream_packets"`
	StreamDrops       uint64           `json:"stream_drops"`
	StreamRejected    uint64           `json:"stream_rejected"`
	Streams           []StreamInfo     `json:"streams"`
	DiskUsage         int64            `json:"disk_usage_bytes"`
	// VNPairs are Pipeline.Pairs with their rate over the last history
	// interval and when they last had a packet, to within it.
	VNPairs []PairActivity `json:"vn_pairs"`
}

// PairActivity is a VN pair of /api/stats with its recent activity.
type PairActivity struct {
	vnpair.Pair
	Rate     float64   `json:"packets_per_s"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	pairs, err := intParam(r, "pairs", DefaultPairs, 0, MaxPairs)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rep := StatsReport{
		Pipeline:       s.opts.Stats.Summary(),
		StreamClients:  s.hub.Clients(),
		StreamSent:     s.hub.Sent(),
		StreamDrops:    s.hub.Dropped(),
		StreamRejected: s.hub.Rejected(),
		Streams:        s.hub.Streams(),
	}
	rep.PairsTotal = len(rep.Pipeline.Pairs)
	var left uint64
	rep.Pipeline.Pairs, left = vnpair.Top(rep.Pipeline.Pairs, pairs)
	rep.PairsOtherPackets = rep.Pipeline.PairsOther + left // the table let go of some
	rep.VNPairs = make([]PairActivity, len(rep.Pipeline.Pairs))
	for i, p := range rep.Pipeline.Pairs {
		seen, _ := s.pairRates.get(p.SrcVN, p.DstVN)
		rep.VNPairs[i] = PairActivity{Pair: p, Rate: seen.rate, LastSeen: seen.lastSeen}
	}

	if s.opts.Source != nil {
		src := s.opts.Source()
		rep.Source = &src
	}
	if s.opts.Store != nil {
		rep.DiskUsage = s.opts.Store.DiskUsage()
	}
	writeJSON(w, rep)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	f, err := filter.FromQuery(r.URL.Query())
	if err != nil {
		http.Error(w, "bad filter: "+err.Error(), http.StatusBadRequest)
		return
	}
	c, err := s.hub.attach(f, r.RemoteAddr)
	switch {
	case errors.Is(err, ErrHubClosed):
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	case errors.Is(err, ErrTooManyClients):
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("too many stream clients (at most %d)", s.opts.StreamClients),
			http.StatusServiceUnavailable)
		return
	case err != nil:
		s.log.Error("start stream", "err", err)
		http.Error(w, "cannot start stream", http.StatusInternalServerError)
		return
	}
	defer s.hub.detach(c)
	log := s.log.With("remote", r.RemoteAddr, "filter", c.g.key)
	log.Info("stream client connected")

	h := w.Header()
	h.Set("Content-Type", "application/x-pcapng")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)

	rc := http.NewResponseController(w)
	send := func() error {
		if len(c.out) == 0 {
			return nil
		}
		_, err := w.Write(c.out)
		if err == nil {
			err = rc.Flush()
		}
		if cap(c.out) > 4*clientBatch {
			c.out = make([]byte, 0, clientBatch) // after an outsized block
		}
		c.out = c.out[:0]
		return err
	}
	var reason string
loop:
	for {
		// Take the wake-up channel before looking: packets added after
		// the look close it.
		wake := s.hub.wakeup()
		more := s.hub.fill(c, ^uint64(0))
		if err := send(); err != nil {
			reason = err.Error()
			break
		}
		if more {
			continue
		}
		select {
		case <-wake:
		case <-r.Context().Done():
			reason = "client gone"
			break loop
		case <-s.hub.done:
			// Send what the backlog holds up to now, then end: the stream
			// ends after a whole block and stays a valid pcapng.
			reason = "server shutting down"
			end := c.headOf()
			for more := true; more; {
				more = s.hub.fill(c, end)
				if err := send(); err != nil {
					reason = err.Error()
					break
				}
			}
			break loop
		}
	}
	s.hub.detach(c)
	log.Info("stream client left", "reason", reason, "packets", c.sent.Load(), "dropped", c.dropped.Load())
}
