// Package server serves a capture directory, a live pcapng stream of decoded
// packets, Prometheus metrics and a small web page over HTTP.
package server

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/ring"
)

// DefaultStreamBuffer is the default for Options.StreamBuffer.
const DefaultStreamBuffer = 4 << 20

// streamWriteTimeout bounds one write to a stream client, so that a client
// that stopped reading cannot hold its connection (and a shutdown) forever.
const streamWriteTimeout = time.Minute

// SourceStats are the capture source's own counters.
type SourceStats struct {
	Received    uint64 `json:"received"`     // packets the source saw
	KernelDrops uint64 `json:"kernel_drops"` // packets the kernel dropped before the source read them
}

// Options configure a Server.
type Options struct {
	Store  ring.Store         // capture files; nil when there are none
	Stats  *pipeline.Stats    // pipeline counters; nil reads as zero
	Source func() SourceStats // capture source counters; may be nil
	Token  string             // bearer token required on every request but /healthz; "" for none
	Logger *slog.Logger       // nil discards
	// StreamBuffer is how many encoded bytes may wait for one stream
	// client before its packets are dropped (default DefaultStreamBuffer).
	StreamBuffer int
}

// Server is the HTTP side of a capture.
type Server struct {
	opts    Options
	log     *slog.Logger
	hub     *Hub
	reg     *prometheus.Registry
	handler http.Handler
}

//go:embed static
var static embed.FS

// New checks the options and builds the server.
func New(o Options) (*Server, error) {
	return newServer(o, newPcapNG)
}

func newServer(o Options, enc newEncoderFunc) (*Server, error) {
	if o.StreamBuffer < 0 {
		return nil, fmt.Errorf("stream buffer %d: must not be negative", o.StreamBuffer)
	}
	if o.StreamBuffer == 0 {
		o.StreamBuffer = DefaultStreamBuffer
	}
	if o.Stats == nil {
		o.Stats = new(pipeline.Stats)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: o, log: o.Logger, hub: newHub(o.StreamBuffer, enc)}

	s.reg = prometheus.NewRegistry()
	if err := s.reg.Register(newCollector(s)); err != nil {
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /api/captures", s.listCaptures)
	mux.HandleFunc("GET /api/captures/{name}", s.getCapture)
	mux.HandleFunc("DELETE /api/captures/{name}", s.deleteCapture)
	mux.HandleFunc("GET /api/stream", s.stream)
	mux.HandleFunc("GET /api/stats", s.stats)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}))
	mux.Handle("GET /{$}", http.FileServerFS(page))
	s.handler = s.logRequests(s.auth(mux))
	return s, nil
}

// Handler serves the API, the stream, the metrics and the page.
func (s *Server) Handler() http.Handler { return s.handler }

// Hub is the live stream sink, to be added to the pipeline's sinks.
func (s *Server) Hub() *Hub { return s.hub }

// Registry holds the server's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// auth requires the bearer token, from the Authorization header or, on GET,
// from the token query parameter (for links and the page).
func (s *Server) auth(next http.Handler) http.Handler {
	if s.opts.Token == "" {
		return next
	}
	want := []byte(s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		var got string
		if h := r.Header.Get("Authorization"); h != "" {
			if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
				got = strings.TrimSpace(tok)
			}
		} else if r.Method == http.MethodGet || r.Method == http.MethodHead {
			got = r.URL.Query().Get("token")
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vrsniff"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status for the request log. Unwrap lets
// http.ResponseController reach the Flusher and deadlines underneath.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		// The path only: the query may hold the token.
		s.log.Debug("http request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"remote", r.RemoteAddr, "duration", time.Since(start))
	})
}

// validName accepts only a plain base name, whatever the store would say.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." &&
		!strings.ContainsAny(name, `/\`+"\x00") && !strings.Contains(name, "..") &&
		!filepath.IsAbs(name) && filepath.Base(name) == name
}

func (s *Server) listCaptures(w http.ResponseWriter, _ *http.Request) {
	files := []ring.Info{}
	if s.opts.Store != nil {
		var err error
		if files, err = s.opts.Store.List(); err != nil {
			s.log.Error("list captures", "err", err)
			http.Error(w, "cannot list captures", http.StatusInternalServerError)
			return
		}
		if files == nil {
			files = []ring.Info{}
		}
	}
	writeJSON(w, files)
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
	// The store refuses the open file but does not say so with a typed
	// error, so look first.
	files, err := s.opts.Store.List()
	if err != nil {
		s.log.Error("list captures", "err", err)
		http.Error(w, "cannot list captures", http.StatusInternalServerError)
		return
	}
	found := false
	for _, fi := range files {
		if fi.Name == name {
			if fi.Open {
				http.Error(w, "capture is still being written", http.StatusConflict)
				return
			}
			found = true
		}
	}
	if !found {
		http.Error(w, "no such capture", http.StatusNotFound)
		return
	}
	if err := s.opts.Store.Delete(name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			http.Error(w, "no such capture", http.StatusNotFound)
			return
		}
		s.log.Error("delete capture", "name", name, "err", err)
		http.Error(w, "cannot delete capture: "+err.Error(), http.StatusConflict)
		return
	}
	s.log.Info("capture deleted", "name", name, "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

// StatsReport is the JSON of /api/stats.
type StatsReport struct {
	Pipeline      pipeline.Summary `json:"pipeline"`
	Source        *SourceStats     `json:"source,omitempty"`
	StreamClients int              `json:"stream_clients"`
	StreamSent    uint64           `json:"stream_packets"`
	StreamDrops   uint64           `json:"stream_drops"`
	DiskUsage     int64            `json:"disk_usage_bytes"`
}

func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	rep := StatsReport{
		Pipeline:      s.opts.Stats.Summary(),
		StreamClients: s.hub.Clients(),
		StreamSent:    s.hub.Sent(),
		StreamDrops:   s.hub.Dropped(),
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
	c, err := s.hub.attach(f)
	if errors.Is(err, ErrHubClosed) {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		s.log.Error("start stream", "err", err)
		http.Error(w, "cannot start stream", http.StatusInternalServerError)
		return
	}
	defer s.hub.detach(c)
	log := s.log.With("remote", r.RemoteAddr, "filter", f.Options().Query().Encode())
	log.Info("stream client connected")

	h := w.Header()
	h.Set("Content-Type", "application/x-pcapng")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	rc := http.NewResponseController(w)
	spare := make([]byte, 0, 64<<10)
	send := func() error {
		buf := c.take(spare)
		if len(buf) > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if _, err := w.Write(buf); err != nil {
				return err
			}
			if err := rc.Flush(); err != nil {
				return err
			}
		}
		spare = buf
		return nil
	}
	var reason string
loop:
	for {
		select {
		case <-c.wake:
			if err := send(); err != nil {
				reason = err.Error()
				break loop
			}
		case <-r.Context().Done():
			reason = "client gone"
			break loop
		case <-s.hub.done:
			// Stop new packets, then send what is encoded: the stream
			// ends after a whole block and stays a valid pcapng.
			s.hub.detach(c)
			reason = "server shutting down"
			if err := send(); err != nil {
				reason = err.Error()
			}
			break loop
		}
	}
	log.Info("stream client left", "reason", reason, "packets", c.sent.Load(), "dropped", c.dropped.Load())
}
