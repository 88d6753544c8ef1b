package query_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/query"
	"github.com/vrsniff/vrsniff/internal/server"
)

// planner is the server's Querier over Run, as a capture wires it.
type planner struct {
	b query.Bucket
	o query.Options
}

func (p planner) Query(ctx context.Context, w io.Writer, q server.FleetQuery) (server.QueryStats, error) {
	st, err := query.Run(ctx, p.b, query.Query{Since: q.Since, Until: q.Until, Filter: q.Filter, Sniffers: q.Sniffers,
		CommunityID: q.CommunityID}, w, p.o)
	return server.QueryStats{Packets: st.Packets, Warnings: st.Extract.Warnings()}, err
}

// TestAPIQuery: GET /api/query answers what Run writes for the same query.
func TestAPIQuery(t *testing.T) {
	fl := newFleet(t)
	o := query.Options{OpenIndex: openFakeIndex, CommunityID: communityID, Application: "vrsniff"}
	srv, err := server.New(server.Options{Querier: planner{fl.b, o}, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Hub().Close()
		ts.Close()
	})
	since, until := t0.Add(30*time.Second), t0.Add(150*time.Second)
	cid := communityID(flows[2].packet(t, false, t0, 1, 0))
	for _, q := range []query.Query{
		{Since: since, Until: until, Filter: filter.Options{BPF: "host 10.0.0.1 and port 80", Direction: "egress"}},
		{Since: since, Until: until, Sniffers: []string{"sniffer-0", "sniffer-2"}, CommunityID: cid},
		{Since: since, Until: until, Filter: filter.Options{VN: "vn-c"}},
	} {
		var want bytes.Buffer
		st, err := query.Run(context.Background(), fl.b, q, &want, o)
		if err != nil {
			t.Fatal(err)
		}
		if st.Packets == 0 {
			t.Fatalf("%+v finds nothing", q)
		}
		v := url.Values{"since": {q.Since.Format(time.RFC3339)}, "until": {q.Until.Format(time.RFC3339)}}
		for k, s := range q.Filter.Query() {
			v[k] = s
		}
		if len(q.Sniffers) > 0 {
			v.Set("sniffer", q.Sniffers[0]+","+q.Sniffers[1])
		}
		if q.CommunityID != "" {
			v.Set("community_id", q.CommunityID)
		}
		req, err := http.NewRequest("GET", ts.URL+"/api/query?"+v.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", v.Encode(), resp.StatusCode, err)
		}
		if !bytes.Equal(body, want.Bytes()) {
			t.Errorf("%s: answer of %d bytes, Run wrote %d", v.Encode(), len(body), want.Len())
		}
		if p := resp.Trailer.Get("X-Vrsniff-Packets"); p != strconv.FormatUint(st.Packets, 10) {
			t.Errorf("%s: packets trailer %q, want %d", v.Encode(), p, st.Packets)
		}
	}
}
