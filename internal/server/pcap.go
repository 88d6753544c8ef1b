package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vrsniff/vrsniff/internal/extract"
	"github.com/vrsniff/vrsniff/internal/filter"
)

// pcapParams are the query parameters of GET /api/pcap; any other is
// refused, so that a misspelt filter never turns into the whole store.
var pcapParams = map[string]bool{"since": true, "until": true, "vn": true, "src_vn": true, "dst_vn": true,
	"direction": true, "bpf": true, "token": true}

// pcap answers GET /api/pcap: the stored packets of a time window
// [since, until) that pass the filter, merged from every file that overlaps
// it into one time-ordered pcapng (extract.Write). since is required,
// until defaults to now; both take what extract.ParseTime does. A bad or
// unknown parameter is answered 400 with the reason. The trailers
// X-Vrsniff-Packets and X-Vrsniff-Warnings give the packets written and
// the files skipped (removed by retention meanwhile, unreadable). More
// files overlapping one instant than extract.DefaultMaxOpen is answered
// 503 when found before any packet was sent, else by aborting the answer.
func (s *Server) pcap(w http.ResponseWriter, r *http.Request) {
	o, name, err := s.pcapOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var srcs []extract.Source
	if s.opts.Store != nil {
		files, err := s.opts.Store.List()
		if err != nil {
			s.log.Error("list captures", "err", err)
			http.Error(w, "cannot list captures", http.StatusInternalServerError)
			return
		}
		srcs = storeSources(s.opts.Store, files)
	}
	o.Log, o.MaxOpen = s.log, s.pcapMaxOpen
	s.streamPcap(w, r, "extract", name, func(w io.Writer) (uint64, int, error) {
		st, err := extract.Write(r.Context(), w, srcs, o)
		return st.Written, st.Warnings(), err
	})
}

// streamPcap answers with the pcapng that write writes, as the attachment
// name; the trailers X-Vrsniff-Packets and X-Vrsniff-Warnings give the
// packets it wrote and the files it skipped. A failure before the first
// byte is a 503 (a 400 for ErrBadQuery); after it, the answer is aborted,
// so that the client knows it is not whole. what names write in the log.
func (s *Server) streamPcap(w http.ResponseWriter, r *http.Request, what, name string,
	write func(io.Writer) (packets uint64, warnings int, err error)) {
	h := w.Header()
	h.Set("Content-Type", "application/x-pcapng")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Trailer", "X-Vrsniff-Packets, X-Vrsniff-Warnings")
	cw := &countWriter{w: w}
	packets, warnings, err := write(cw)
	switch {
	case err != nil && r.Context().Err() != nil:
		return // the client went away
	case err != nil && cw.n == 0:
		// Nothing sent yet (the writer buffers the start): the status can
		// still say so.
		h.Del("Content-Disposition")
		h.Del("Trailer")
		if errors.Is(err, ErrBadQuery) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.log.Warn(what, "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		// The status is sent: an aborted response tells the client that
		// what it got is not the whole answer.
		s.log.Warn(what, "err", err)
		panic(http.ErrAbortHandler)
	}
	h.Set("X-Vrsniff-Packets", strconv.FormatUint(packets, 10))
	h.Set("X-Vrsniff-Warnings", strconv.Itoa(warnings))
}

// pcapOptions reads the query of GET /api/pcap, and names the answer's
// file after its window.
func (s *Server) pcapOptions(r *http.Request) (extract.Options, string, error) {
	q := r.URL.Query()
	for k, v := range q {
		if !pcapParams[k] {
			return extract.Options{}, "", fmt.Errorf("unknown parameter %q (want since, until, vn, src_vn, dst_vn, direction, bpf)", k)
		}
		if len(v) > 1 {
			return extract.Options{}, "", fmt.Errorf("parameter %q given %d times", k, len(v))
		}
	}
	if !q.Has("since") {
		return extract.Options{}, "", errors.New("since is required (RFC 3339, now, or relative like -15m)")
	}
	if q.Has("until") && q.Get("until") == "" {
		return extract.Options{}, "", errors.New("until is empty")
	}
	since, until, err := extract.ParseWindow(q.Get("since"), q.Get("until"), s.now())
	if err != nil {
		return extract.Options{}, "", err
	}
	f, err := filter.FromQuery(q)
	if err != nil {
		return extract.Options{}, "", err
	}
	return extract.Options{Since: since, Until: until, Filter: f, Application: "vrsniff"}, windowName(since, until), nil
}

// windowName is the file name of an extract: vrsniff_<since>_<until>.pcapng
// in UTC, seconds or finer as the bounds need.
func windowName(since, until time.Time) string {
	stamp := func(t time.Time) string {
		s := t.UTC().Format("20060102T150405.999999999Z")
		return strings.Replace(s, ".", "_", 1)
	}
	return "vrsniff_" + stamp(since) + "-" + stamp(until) + ".pcapng"
}

// storeSources are the files of st as extract reads them. A file being
// written is opened by its name without ".part" (Store.Open resolves it),
// so it is found whether it is still written or closed meanwhile.
func storeSources(st Store, files []FileInfo) []extract.Source {
	srcs := make([]extract.Source, len(files))
	for i, f := range files {
		name := strings.TrimSuffix(f.Name, ".part")
		srcs[i] = extract.Source{Name: f.Name, First: f.First, Last: f.Last, Partial: f.Open,
			Stats: extract.Drops{Opened: f.Opened, Closed: f.Closed, Received: f.Received,
				KernelDropped: f.KernelDropped, StoreDropped: f.StoreDropped},
			Open: func() (io.ReadCloser, error) {
				rc, _, err := st.Open(name)
				return rc, err
			}}
	}
	return srcs
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
