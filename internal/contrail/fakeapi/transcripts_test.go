package fakeapi

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/testkit"
)

// transcript is one scenario of shared/contrail-real/acl-transcripts.json:
// the requests sent to the real control plane and the ACLs its schema
// transformer compiled.
type transcript struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Server      struct {
		SvcMonitor     bool `json:"svc_monitor"`
		LogicalRouters bool `json:"logical_routers_enabled"`
	} `json:"server"`
	Requests []struct {
		Method   string          `json:"method"`
		Path     string          `json:"path"`
		Body     json.RawMessage `json:"body"`
		Status   int             `json:"status"`
		Response json.RawMessage `json:"response"`
	} `json:"requests"`
	Compiled []struct {
		Label string `json:"label"`
		After int    `json:"after_request_index"`
		VNs   map[string]struct {
			ACLs []recordedACL `json:"access_control_lists"`
		} `json:"vns"`
		IIPs []map[string]any `json:"sniffer_port_instance_ips"`
	} `json:"compiled"`
}

type recordedACL struct {
	Name    string           `json:"name"`
	UUID    string           `json:"uuid"`
	Dynamic bool             `json:"dynamic"`
	Hash    json.Number      `json:"access_control_list_hash"`
	Rules   []map[string]any `json:"acl_rule"`
}

func loadTranscripts(t *testing.T) []transcript {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testkit.SharedDir(t), "contrail-real", "acl-transcripts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ts []transcript
	if err := json.Unmarshal(b, &ts); err != nil {
		t.Fatal(err)
	}
	return ts
}

const recordedHost = "http://127.0.0.1:18086/"

// replay sends a scenario's requests to s up to and including request
// last, starting at next, checking each answer against the recorded one
// once the recorded UUIDs are translated to the fake's (uuids: recorded →
// fake, filled from the answers).
func replay(t *testing.T, s *Server, tr transcript, next, last int, uuids map[string]string) {
	t.Helper()
	for i := next; i <= last; i++ {
		rq := tr.Requests[i]
		tr := func(b string) string {
			for r, f := range uuids {
				b = strings.ReplaceAll(b, r, f)
			}
			return b
		}
		body := ""
		if len(rq.Body) > 0 && string(rq.Body) != "null" {
			body = tr(string(rq.Body))
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(rq.Method, tr(rq.Path), strings.NewReader(body)))
		if w.Code != rq.Status {
			t.Fatalf("request %d %s %s: %d %s, recorded %d", i, rq.Method, rq.Path, w.Code, w.Body.String(), rq.Status)
		}
		var got, want any
		if w.Body.Len() == 0 {
			got = "" // the recording keeps an empty answer as ""
		} else {
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("request %d: %v: %s", i, err, w.Body.String())
			}
		}
		_ = json.Unmarshal(rq.Response, &want)
		// The answer names the new object's UUID (and its parent's): learn them.
		learn(want, got, uuids)
		wantText := strings.ReplaceAll(tr(string(rq.Response)), recordedHost, "http://example.com/")
		_ = json.Unmarshal([]byte(wantText), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("request %d %s %s: answer %s, recorded %s", i, rq.Method, rq.Path, w.Body.String(), wantText)
		}
	}
}

// learn maps the UUIDs of a recorded answer to those of the fake's.
func learn(recorded, got any, uuids map[string]string) {
	r, ok1 := recorded.(map[string]any)
	g, ok2 := got.(map[string]any)
	if !ok1 || !ok2 {
		return
	}
	for k, rv := range r {
		switch rv := rv.(type) {
		case string:
			if gv, ok := g[k].(string); ok && isUUID(rv) && isUUID(gv) {
				uuids[rv] = gv
			}
		case map[string]any:
			learn(rv, g[k], uuids)
		}
	}
}

// TestTranscripts replays each recorded scenario and compares every
// compiled snapshot with the real schema transformer's ACLs: which ACLs
// each VN has, and their rules in order, by match, action and direction.
// A rule's rule_uuid must be the rule_uuid of the policy rule it came from
// (the implicit rules' fixed ones), and an ACL keeps its uuid, and its
// hash, between snapshots exactly when the real one did.
func TestTranscripts(t *testing.T) {
	for _, tr := range loadTranscripts(t) {
		t.Run(tr.ID, func(t *testing.T) {
			s := New(Options{SvcMonitor: tr.Server.SvcMonitor, LogicalRoutersDisabled: !tr.Server.LogicalRouters})
			uuids := map[string]string{}
			// (VN, ACL name) → recorded and fake uuid and hash, last snapshot.
			type seen struct{ ruuid, rhash, fuuid, fhash string }
			prev := map[string]seen{}
			next := 0
			for _, snap := range tr.Compiled {
				replay(t, s, tr, next, snap.After, uuids)
				next = snap.After + 1
				cur := map[string]seen{}
				for vnName, vn := range snap.VNs {
					vnID := s.Lookup("virtual-network", "default-domain", "demo", vnName)
					got := s.aclObjects(vnID)
					if len(got) != len(vn.ACLs) {
						t.Errorf("%s: %s has ACLs %v, recorded %d", snap.Label, vnName, keysOf(got), len(vn.ACLs))
					}
					for _, want := range vn.ACLs {
						o := got[want.Name]
						if o == nil {
							t.Errorf("%s: %s has no ACL %q", snap.Label, vnName, want.Name)
							continue
						}
						entries := o["access_control_list_entries"].(map[string]any)
						if entries["dynamic"] != want.Dynamic {
							t.Errorf("%s: %s ACL %s: dynamic %v", snap.Label, vnName, want.Name, entries["dynamic"])
						}
						compareRules(t, s, fmt.Sprintf("%s: %s ACL %s", snap.Label, vnName, want.Name), entries["acl_rule"], want.Rules)
						k := vnName + "/" + want.Name
						now := seen{want.UUID, want.Hash.String(), o["uuid"].(string), fmt.Sprint(o["access_control_list_hash"])}
						if p, ok := prev[k]; ok {
							if (p.ruuid == now.ruuid) != (p.fuuid == now.fuuid) || (p.rhash == now.rhash) != (p.fhash == now.fhash) {
								t.Errorf("%s: %s ACL %s: uuid/hash kept %v/%v, the real ones %v/%v", snap.Label, vnName, want.Name,
									p.fuuid == now.fuuid, p.fhash == now.fhash, p.ruuid == now.ruuid, p.rhash == now.rhash)
							}
						}
						cur[k] = now
					}
				}
				prev = cur
				if snap.IIPs != nil {
					compareIIPs(t, s, snap.Label, snap.IIPs, uuids)
				}
			}
		})
	}
}

// aclObjects returns the API view of a VN's ACLs by name.
func (s *Server) aclObjects(vnID string) map[string]map[string]any {
	out := map[string]map[string]any{}
	vn := s.Object(vnID)
	l, _ := vn["access_control_lists"].([]any)
	for _, c := range l {
		id := c.(map[string]any)["uuid"].(string)
		o := s.Object(id)
		out[o["name"].(string)] = o
	}
	return out
}

func keysOf(m map[string]map[string]any) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// compareRules compares compiled rules with recorded ones, in order.
func compareRules(t *testing.T, s *Server, what string, gotv any, want []map[string]any) {
	t.Helper()
	got, _ := gotv.([]any)
	if len(got) != len(want) {
		t.Errorf("%s: %d rules, recorded %d:\n got  %s\n want %s", what, len(got), len(want), pyJSON(got), pyJSON(toAny(want)))
		return
	}
	for i, w := range want {
		g := got[i].(map[string]any)
		for _, k := range []string{"direction", "match_condition", "action_list"} {
			if !reflect.DeepEqual(g[k], w[k]) {
				t.Errorf("%s rule %d (%s) %s:\n got  %s\n want %s", what, i, w["rule_of"], k, pyJSON(g[k]), pyJSON(w[k]))
			}
		}
		if u := ruleUUIDOf(s, w["rule_of"].(string)); g["rule_uuid"] != u {
			t.Errorf("%s rule %d: rule_uuid %v, want %v (%s)", what, i, g["rule_uuid"], u, w["rule_of"])
		}
	}
}

func toAny(l []map[string]any) []any {
	out := make([]any, len(l))
	for i, m := range l {
		out[i] = m
	}
	return out
}

// ruleUUIDOf resolves a recorded rule_of ("policy#index", IMPLICIT_ALLOW,
// IMPLICIT_DENY) to the rule_uuid the fake must have used.
func ruleUUIDOf(s *Server, ruleOf string) string {
	switch ruleOf {
	case "IMPLICIT_ALLOW":
		return ImplicitAllow
	case "IMPLICIT_DENY":
		return ImplicitDeny
	}
	name, idx, _ := strings.Cut(ruleOf, "#")
	p := s.Object(s.Lookup("network-policy", "default-domain", "demo", name))
	var i int
	fmt.Sscan(idx, &i)
	rules := p["network_policy_entries"].(map[string]any)["policy_rule"].([]any)
	return rules[i].(map[string]any)["rule_uuid"].(string)
}

// compareIIPs compares the instance-ips on the sniffer port with the
// recorded ones (svc-monitor's shared service IPs, when it ran).
func compareIIPs(t *testing.T, s *Server, label string, want []map[string]any, uuids map[string]string) {
	t.Helper()
	port := s.Lookup("virtual-machine-interface", "default-domain", "demo", "sniffer-port")
	got := map[string]map[string]any{}
	for _, br := range asList(s.Object(port)["instance_ip_back_refs"]) {
		o := s.Object(br.(map[string]any)["uuid"].(string))
		got[o["name"].(string)] = o
	}
	if len(got) != len(want) {
		t.Errorf("%s: the sniffer port has instance-ips %v, recorded %d", label, keysOf(got), len(want))
	}
	for _, w := range want {
		name := w["name"].(string)
		for r, f := range uuids {
			name = strings.ReplaceAll(name, r, f)
		}
		o := got[name]
		if o == nil {
			t.Errorf("%s: no instance-ip %s on the sniffer port", label, name)
			continue
		}
		for _, k := range []string{"instance_ip_address", "instance_ip_family", "service_instance_ip", "instance_ip_secondary", "instance_ip_mode"} {
			if o[k] != w[k] {
				t.Errorf("%s: instance-ip %s %s = %v, recorded %v", label, name, k, o[k], w[k])
			}
		}
		var ipams []any
		for _, r := range asList(o["network_ipam_refs"]) {
			ipams = append(ipams, strings.Join(strList2(r.(map[string]any)["to"]), ":"))
		}
		if w["network_ipam_refs"] != nil && !reflect.DeepEqual(ipams, w["network_ipam_refs"]) {
			t.Errorf("%s: instance-ip %s IPAMs %v, recorded %v", label, name, ipams, w["network_ipam_refs"])
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func strList2(v any) []string {
	l, _ := strList(v)
	return l
}
