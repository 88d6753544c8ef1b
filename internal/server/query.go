package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/objstore"
)

// Querier finds packets across a fleet's stored files (internal/query
// over the fleet's bucket): GET /api/query's answer.
type Querier interface {
	// Query writes to w, as one time-ordered pcapng stream, the stored
	// packets of q. The error is a write error, a store that cannot be
	// read or listed, too many files overlapping one instant, or ctx's.
	Query(ctx context.Context, w io.Writer, q FleetQuery) (QueryStats, error)
}

// ErrBadQuery, wrapped in a Querier's error, says that the query cannot
// be answered as asked (a window too long, a bad Community ID): a 400, not
// a 503.
var ErrBadQuery = errors.New("bad query")

// FleetQuery is what GET /api/query asks for.
type FleetQuery struct {
	Since, Until time.Time      // the window [Since, Until)
	Filter       filter.Options // VN patterns, direction, BPF
	Sniffers     []string       // the sniffers to read; empty: all
	CommunityID  string         // the flow's Community ID (v1); "" for any
}

// QueryStats are what the answer's trailers report.
type QueryStats struct {
	Packets  uint64 // packets written
	Warnings int    // files skipped because they could not be read
}

// queryParams are the query parameters of GET /api/query: /api/pcap's
// and the fleet's own; any other is refused.
var queryParams = map[string]bool{"since": true, "until": true, "vn": true, "src_vn": true, "dst_vn": true,
	"direction": true, "bpf": true, "token": true, "sniffer": true, "community_id": true}

// query answers GET /api/query: the packets of a time window [since,
// until) stored by the fleet's sniffers (sniffer: a comma-separated list
// of sniffer ids, all when absent) that pass the filter and, with
// community_id, belong to that flow, merged into one time-ordered pcapng.
// The parameters are otherwise /api/pcap's, as are the trailers, the 400
// for a bad or unknown parameter and the 503 for an answer that fails
// before its first byte; a server without a fleet store answers 404.
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	if s.opts.Querier == nil {
		http.Error(w, "no fleet store: this server was started without one", http.StatusNotFound)
		return
	}
	q, err := s.fleetQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.streamPcap(w, r, "query", windowName(q.Since, q.Until), func(w io.Writer) (uint64, int, error) {
		st, err := s.opts.Querier.Query(r.Context(), w, q)
		return st.Packets, st.Warnings, err
	})
}

// fleetQuery reads the parameters of GET /api/query.
func (s *Server) fleetQuery(r *http.Request) (FleetQuery, error) {
	q := r.URL.Query()
	for k, v := range q {
		if !queryParams[k] {
			return FleetQuery{}, fmt.Errorf("unknown parameter %q (want since, until, vn, src_vn, dst_vn, direction, bpf, sniffer, community_id)", k)
		}
		if len(v) > 1 {
			return FleetQuery{}, fmt.Errorf("parameter %q given %d times", k, len(v))
		}
	}
	// The window and the filter are read as /api/pcap reads them.
	o, _, err := s.pcapOptions(withoutFleetParams(r))
	if err != nil {
		return FleetQuery{}, err
	}
	fq := FleetQuery{Since: o.Since, Until: o.Until, Filter: o.Filter.Options(), CommunityID: q.Get("community_id")}
	if q.Has("community_id") && fq.CommunityID == "" {
		return FleetQuery{}, errors.New("community_id is empty")
	}
	if q.Has("sniffer") {
		for id := range strings.SplitSeq(q.Get("sniffer"), ",") {
			if err := objstore.CheckSniffer(id); err != nil {
				return FleetQuery{}, err
			}
			fq.Sniffers = append(fq.Sniffers, id)
		}
	}
	return fq, nil
}

// withoutFleetParams is r without the parameters /api/pcap does not know.
func withoutFleetParams(r *http.Request) *http.Request {
	q := r.URL.Query()
	q.Del("sniffer")
	q.Del("community_id")
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	return r2
}
