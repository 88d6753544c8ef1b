package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
)

// fakeQuerier records the queries it is asked and answers with its body,
// then its error.
type fakeQuerier struct {
	mu   sync.Mutex
	got  []FleetQuery
	body string
	err  error
}

func (f *fakeQuerier) Query(ctx context.Context, w io.Writer, q FleetQuery) (QueryStats, error) {
	f.mu.Lock()
	f.got = append(f.got, q)
	f.mu.Unlock()
	if f.body != "" {
		if _, err := io.WriteString(w, f.body); err != nil {
			return QueryStats{}, err
		}
	}
	return QueryStats{Packets: 7, Warnings: 2}, f.err
}

func (f *fakeQuerier) queries() []FleetQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got
}

// TestQueryParams: the parameters reach the querier as a FleetQuery, and
// its stream and counts come back as the answer and its trailers.
func TestQueryParams(t *testing.T) {
	fq := &fakeQuerier{body: "pcapng bytes"}
	_, ts := newTestServer(t, Options{Querier: fq})
	since, until := t0, t0.Add(90*time.Second)
	q := url.Values{"since": {since.Format(time.RFC3339)}, "until": {until.Format(time.RFC3339)},
		"vn": {"vn-a"}, "src_vn": {"*:x"}, "dst_vn": {"vn-b"}, "direction": {"ingress"}, "bpf": {"host 10.0.0.1 and port 53"},
		"sniffer": {"sniffer-1,sniffer-2"}, "community_id": {"1:LQU9qZlK+B5F3KDmev6m5PMibrg="}}
	resp, body := do(t, "GET", ts.URL+"/api/query?"+q.Encode(), nil)
	mustStatus(t, resp.StatusCode, 200, "query")
	if string(body) != fq.body {
		t.Errorf("body %q, want the querier's %q", body, fq.body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-pcapng" {
		t.Errorf("content type %q", ct)
	}
	if cd, want := resp.Header.Get("Content-Disposition"), `attachment; filename=vrsniff_20260301T120000Z-20260301T120130Z.pcapng`; cd != want {
		t.Errorf("Content-Disposition %q, want %q", cd, want)
	}
	if p, w := resp.Trailer.Get("X-Vrsniff-Packets"), resp.Trailer.Get("X-Vrsniff-Warnings"); p != "7" || w != "2" {
		t.Errorf("trailers packets %q warnings %q, want 7 and 2", p, w)
	}
	want := FleetQuery{Since: since, Until: until,
		Filter:   filter.Options{VN: "vn-a", SrcVN: "*:x", DstVN: "vn-b", Direction: "ingress", BPF: "host 10.0.0.1 and port 53"},
		Sniffers: []string{"sniffer-1", "sniffer-2"}, CommunityID: "1:LQU9qZlK+B5F3KDmev6m5PMibrg="}
	if got := fq.queries(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("querier asked %+v, want %+v", got, want)
	}

	// The least: a start; until is now, every sniffer, no filter.
	resp, _ = do(t, "GET", ts.URL+"/api/query?since=-1h", nil)
	mustStatus(t, resp.StatusCode, 200, "query since")
	got := fq.queries()[1]
	if got.Until.Sub(got.Since) != time.Hour || got.Sniffers != nil || got.CommunityID != "" || got.Filter != (filter.Options{}) {
		t.Errorf("since=-1h asked %+v", got)
	}
}

// TestQueryBadQuery: a parameter the API does not know, one given twice,
// or a bad value is answered 400 with the reason and never asks the
// querier.
func TestQueryBadQuery(t *testing.T) {
	fq := &fakeQuerier{}
	_, ts := newTestServer(t, Options{Querier: fq})
	for q, reason := range map[string]string{
		"":                                             "since is required",
		"since=-1h&snifer=a":                           `unknown parameter "snifer"`,
		"since=-1h&communityid=x":                      `unknown parameter "communityid"`,
		"since=-1h&sniffer=a&sniffer=b":                `"sniffer" given 2 times`,
		"since=-1h&sniffer=../etc":                     "sniffer id",
		"since=-1h&sniffer=a,,b":                       "sniffer id",
		"since=-1h&community_id=":                      "community_id is empty",
		"since=yesterday":                              "since: time",
		"since=now&until=-1h":                          "is not before until",
		"since=-1h&direction=sideways":                 "direction",
		"since=-1h&bpf=" + url.QueryEscape("tcp port"): "tcp port",
	} {
		resp, body := do(t, "GET", ts.URL+"/api/query?"+q, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), reason) {
			t.Errorf("?%s: %d %q, want 400 saying %q", q, resp.StatusCode, body, reason)
		}
	}
	if n := len(fq.queries()); n != 0 {
		t.Errorf("the querier was asked %d times", n)
	}
}

// TestQueryAuth: /api/query takes the token as the other downloads do, in
// the header or the query; a signed link of a capture file is no token.
func TestQueryAuth(t *testing.T) {
	fq := &fakeQuerier{body: "x"}
	srv, ts := newTestServer(t, Options{Querier: fq, Store: newDirStore(t), Token: "s3cret-token"})
	u := ts.URL + "/api/query?since=-1h"
	resp, _ := do(t, "GET", u, nil)
	mustStatus(t, resp.StatusCode, 401, "no token")
	resp, _ = do(t, "GET", u+"&token=wrong", nil)
	mustStatus(t, resp.StatusCode, 401, "wrong query token")
	resp, _ = do(t, "GET", u, map[string]string{"Authorization": "Bearer wrong"})
	mustStatus(t, resp.StatusCode, 401, "wrong token")
	link := srv.downloadLink("cap_00002.pcap")
	resp, _ = do(t, "GET", u+"&"+link[strings.IndexByte(link, '?')+1:], nil)
	mustStatus(t, resp.StatusCode, 401, "a capture's signed link")
	if n := len(fq.queries()); n != 0 {
		t.Errorf("the querier was asked %d times without the token", n)
	}
	resp, _ = do(t, "GET", u+"&token=s3cret-token", nil)
	mustStatus(t, resp.StatusCode, 200, "query token")
	resp, _ = do(t, "GET", u, map[string]string{"Authorization": "Bearer s3cret-token"})
	mustStatus(t, resp.StatusCode, 200, "token")
}

// TestQueryFailures: no fleet store is 404; a query failing before its
// first byte is 503 with the reason; one failing after is an aborted
// answer.
func TestQueryFailures(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	resp, body := do(t, "GET", ts.URL+"/api/query?since=-1h", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "no fleet store") {
		t.Errorf("without a querier: %d %q, want 404", resp.StatusCode, body)
	}

	fq := &fakeQuerier{err: errors.New("too many files overlap in time")}
	_, ts = newTestServer(t, Options{Querier: fq})
	resp, body = do(t, "GET", ts.URL+"/api/query?since=-1h", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "too many files") {
		t.Errorf("failing query: %d %q, want 503 with the reason", resp.StatusCode, body)
	}

	fq = &fakeQuerier{body: strings.Repeat("x", 100<<10), err: errors.New("bucket gone")}
	_, ts = newTestServer(t, Options{Querier: fq})
	r, err := http.Get(ts.URL + "/api/query?since=-1h")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if _, err := io.ReadAll(r.Body); err == nil {
		t.Errorf("a query failing midway was answered as whole (status %d)", r.StatusCode)
	}
}
