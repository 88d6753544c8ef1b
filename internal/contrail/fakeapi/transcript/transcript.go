// Package transcript reads the recorded schema transformer scenarios
// (shared/contrail-real/acl-transcripts.json: the requests sent to a real
// OpenSDN control plane and the ACLs it compiled) and replays their
// requests to a server under test. Only tests import it.
package transcript

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

// Scenario is one recorded scenario (S1 … S8).
type Scenario struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Server      struct {
		SvcMonitor     bool `json:"svc_monitor"`
		LogicalRouters bool `json:"logical_routers_enabled"`
	} `json:"server"`
	Requests []Request  `json:"requests"`
	Compiled []Snapshot `json:"compiled"`
}

// Request is a recorded request with the real server's answer.
type Request struct {
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Body     json.RawMessage `json:"body"`
	Status   int             `json:"status"`
	Response json.RawMessage `json:"response"`
}

// Snapshot is what the real schema transformer had compiled once it
// converged after request After (0-based).
type Snapshot struct {
	Label string `json:"label"`
	After int    `json:"after_request_index"`
	VNs   map[string]struct {
		ACLs []ACL `json:"access_control_lists"`
	} `json:"vns"`
	// IIPs are the instance-ips on the sniffer port (S7*).
	IIPs []map[string]any `json:"sniffer_port_instance_ips"`
}

// ACL is a recorded access-control-list of a VN.
type ACL struct {
	Name    string      `json:"name"`
	UUID    string      `json:"uuid"`
	Dynamic bool        `json:"dynamic"`
	Hash    json.Number `json:"access_control_list_hash"`
	// Rules are acl_rule entries in the real shape, plus "rule_of": the
	// policy rule ("policy#index") or IMPLICIT_ALLOW / IMPLICIT_DENY.
	Rules []map[string]any `json:"acl_rule"`
}

// Load reads every scenario; a missing file fails the test.
func Load(t testing.TB) []Scenario {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.SharedDir(t), "contrail-real", "acl-transcripts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s []Scenario
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Get returns the scenario with the given id; a missing one fails the test.
func Get(t testing.TB, id string) Scenario {
	t.Helper()
	for _, s := range Load(t) {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no scenario %s in acl-transcripts.json", id)
	return Scenario{}
}

// Player replays a scenario's requests, in order, to a handler.
type Player struct {
	h    http.Handler
	sc   Scenario
	next int
	// UUIDs maps the recorded UUIDs to the server's, learnt from the
	// answers; recorded UUIDs in later requests are translated with it.
	UUIDs map[string]string
}

// NewPlayer returns a player of sc against h.
func NewPlayer(h http.Handler, sc Scenario) *Player {
	return &Player{h: h, sc: sc, UUIDs: map[string]string{}}
}

var reUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// The recorded server's base URL, and the one httptest requests carry.
const recordedHost, host = "http://127.0.0.1:18086/", "http://example.com/"

// Translate replaces the recorded UUIDs in s with the server's.
func (p *Player) Translate(s string) string {
	for r, f := range p.UUIDs {
		s = strings.ReplaceAll(s, r, f)
	}
	return s
}

// PlayTo sends the requests up to and including request last that were not
// sent yet. Each must get the recorded status, and the recorded answer
// once UUIDs and hosts are translated; a wrong status ends the test.
func (p *Player) PlayTo(t testing.TB, last int) {
	t.Helper()
	for ; p.next <= last; p.next++ {
		i, rq := p.next, p.sc.Requests[p.next]
		body := ""
		if len(rq.Body) > 0 && string(rq.Body) != "null" {
			body = p.Translate(string(rq.Body))
		}
		w := httptest.NewRecorder()
		p.h.ServeHTTP(w, httptest.NewRequest(rq.Method, p.Translate(rq.Path), strings.NewReader(body)))
		if w.Code != rq.Status {
			t.Fatalf("%s request %d %s %s: %d %s, recorded %d", p.sc.ID, i, rq.Method, rq.Path, w.Code, w.Body.String(), rq.Status)
		}
		var got, want any = "", nil // the recording keeps an empty answer as ""
		if w.Body.Len() > 0 {
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("%s request %d: %v: %s", p.sc.ID, i, err, w.Body.String())
			}
		}
		_ = json.Unmarshal(rq.Response, &want)
		learn(want, got, p.UUIDs)
		wantText := strings.ReplaceAll(p.Translate(string(rq.Response)), recordedHost, host)
		_ = json.Unmarshal([]byte(wantText), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s request %d %s %s: answer %s, recorded %s", p.sc.ID, i, rq.Method, rq.Path, w.Body.String(), wantText)
		}
	}
}

// learn maps the UUIDs of a recorded answer (the new object's, its
// parent's) to those of the server's answer.
func learn(recorded, got any, uuids map[string]string) {
	r, ok1 := recorded.(map[string]any)
	g, ok2 := got.(map[string]any)
	if !ok1 || !ok2 {
		return
	}
	for k, rv := range r {
		switch rv := rv.(type) {
		case string:
			if gv, ok := g[k].(string); ok && reUUID.MatchString(rv) && reUUID.MatchString(gv) {
				uuids[rv] = gv
			}
		case map[string]any:
			learn(rv, g[k], uuids)
		}
	}
}
