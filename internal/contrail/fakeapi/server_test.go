package fakeapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func do(t testing.TB, s *Server, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

const policy = `{"network-policy": {"fq_name": ["default-domain", "admin", "p"], "parent_type": "project",
 "network_policy_entries": {"policy_rule": [{"direction": "<>", "protocol": "any",
  "src_addresses": [{"virtual_network": "default-domain:admin:vn"}], "src_ports": [{"start_port": -1, "end_port": -1}],
  "dst_addresses": [{"virtual_network": "any"}], "dst_ports": [{"start_port": -1, "end_port": -1}],
  "action_list": {"simple_action": "pass", "mirror_to": {"analyzer_name": "a", "analyzer_ip_address": "10.0.0.1", "udp_port": 8099 MIRROR}}}]}}}`

func TestSchemaStrictness(t *testing.T) {
	for _, tc := range []struct {
		name, extra, version string
		status               int
		msg                  string
	}{
		{"valid", "", "", 200, ""},
		{"3.1 fields on a current server", `, "juniper_header": false, "nh_mode": "static", "static_nh_header": {"vtep_dst_ip_address": "10.0.0.9", "vni": 5000}`, "", 200, ""},
		{"3.1 field on 3.0", `, "juniper_header": true`, "3.0", 400, `unknown field "juniper_header"`},
		{"unknown field", `, "analyser_ip": "x"`, "", 400, `unknown field "analyser_ip"`},
		{"bool as string", `, "juniper_header": "true"`, "", 400, "want a boolean"},
		{"int as string", `, "nh_mode": "dynamic", "nic_assisted_mirroring_vlan": "5"`, "", 400, "want an integer"},
		{"bad enum", `, "nh_mode": "fast"`, "", 400, "not one of"},
		{"bad ip", `, "analyzer_mac_address": "x", "static_nh_header": {"vtep_dst_ip_address": "10.0.0"}`, "", 400, "not an IP address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{Version: tc.version})
			st, body := do(t, s, "POST", "/network-policys", strings.Replace(policy, "MIRROR", tc.extra, 1))
			if st != tc.status || !strings.Contains(body, tc.msg) {
				t.Errorf("= %d %s, want %d %q", st, body, tc.status, tc.msg)
			}
		})
	}
}

func TestRules(t *testing.T) {
	s := New(Options{})
	pol := strings.Replace(policy, "MIRROR", "", 1)
	if st, b := do(t, s, "POST", "/network-policys", pol); st != 200 {
		t.Fatal(st, b)
	}
	if st, b := do(t, s, "POST", "/network-policys", pol); st != 409 || !strings.Contains(b, "already exists with uuid") {
		t.Errorf("duplicate: %d %s", st, b)
	}
	orphan := `{"network-policy": {"fq_name": ["default-domain", "nope", "p"], "parent_type": "project"}}`
	if st, _ := do(t, s, "POST", "/network-policys", orphan); st != 404 {
		t.Errorf("missing parent: %d", st)
	}
	wrongParent := `{"network-policy": {"fq_name": ["default-domain", "p"], "parent_type": "domain"}}`
	if st, _ := do(t, s, "POST", "/network-policys", wrongParent); st != 400 {
		t.Errorf("wrong parent type: %d", st)
	}
	noAttr := `{"virtual-network": {"fq_name": ["default-domain", "admin", "vn"], "parent_type": "project", "network_policy_refs": [{"to": ["default-domain", "admin", "p"]}]}}`
	if st, b := do(t, s, "POST", "/virtual-networks", noAttr); st != 400 || !strings.Contains(b, "attr is required") {
		t.Errorf("ref without attr: %d %s", st, b)
	}
	missingRef := `{"virtual-network": {"fq_name": ["default-domain", "admin", "vn"], "parent_type": "project", "network_policy_refs": [{"to": ["default-domain", "admin", "q"], "attr": {"sequence": {"major": 0, "minor": 0}}}]}}`
	if st, _ := do(t, s, "POST", "/virtual-networks", missingRef); st != 404 {
		t.Errorf("ref to missing object: %d", st)
	}
	vn := strings.Replace(missingRef, `"q"`, `"p"`, 1)
	if st, b := do(t, s, "POST", "/virtual-networks", vn); st != 200 {
		t.Fatal(st, b)
	}
	pid := s.Lookup("network-policy", "default-domain", "admin", "p")
	vid := s.Lookup("virtual-network", "default-domain", "admin", "vn")
	if st, b := do(t, s, "DELETE", "/network-policy/"+pid, ""); st != 409 || !strings.Contains(b, "still referred") {
		t.Errorf("delete referenced: %d %s", st, b)
	}
	if st, _ := do(t, s, "DELETE", "/project/"+s.Lookup("project", "default-domain", "admin"), ""); st != 409 {
		t.Errorf("delete with children: %d", st)
	}
	// PUT replaces a ref list whole: an empty list detaches everything.
	if st, b := do(t, s, "PUT", "/virtual-network/"+vid, `{"virtual-network": {"network_policy_refs": []}}`); st != 200 {
		t.Fatal(st, b)
	}
	if o := s.Object(vid); o["network_policy_refs"] != nil {
		t.Errorf("refs after PUT []: %v", o["network_policy_refs"])
	}
	if st, _ := do(t, s, "PUT", "/virtual-network/"+vid, `{"virtual-network": {"fq_name": ["x"]}}`); st != 400 {
		t.Errorf("fq_name change: %d", st)
	}
	if st, _ := do(t, s, "PUT", "/virtual-network/"+vid, `{"virtual-network": {"display_name": 5}}`); st != 400 {
		t.Errorf("wrong type on PUT: %d", st)
	}
	if st, _ := do(t, s, "DELETE", "/network-policy/"+pid, ""); st != 200 {
		t.Errorf("delete unreferenced: %d", st)
	}
	if st, _ := do(t, s, "GET", "/network-policy/"+pid, ""); st != 404 {
		t.Errorf("get deleted: %d", st)
	}
	if st, _ := do(t, s, "POST", "/fqname-to-id", `{"type": "network-policy", "fq_name": ["default-domain", "admin", "p"]}`); st != 404 {
		t.Errorf("fqname-to-id deleted: %d", st)
	}
}

func TestPutReplacesFieldWhole(t *testing.T) {
	s := New(Options{})
	id := s.Seed("virtual-machine-interface", map[string]any{"fq_name": []string{"default-domain", "admin", "port"},
		"virtual_machine_interface_properties": map[string]any{"max_flows": 10, "local_preference": 5}})
	if st, b := do(t, s, "PUT", "/virtual-machine-interface/"+id,
		`{"virtual-machine-interface": {"virtual_machine_interface_properties": {"max_flows": 20}}}`); st != 200 {
		t.Fatal(st, b)
	}
	props := s.Object(id)["virtual_machine_interface_properties"].(map[string]any)
	if len(props) != 1 || props["max_flows"] != float64(20) {
		t.Errorf("props = %v: the sent field must replace the stored one whole", props)
	}
}

func TestKeystone(t *testing.T) {
	s := New(Options{Keystone: true, Username: "u", Password: "p", Project: "admin"})
	if st, _ := do(t, s, "GET", "/virtual-networks", ""); st != 401 {
		t.Errorf("no token: %d", st)
	}
	body := `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "u", "password": "PW", "domain": {"name": "Default"}}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}`
	req := httptest.NewRequest("POST", "/v3/auth/tokens", strings.NewReader(strings.Replace(body, "PW", "p", 1)))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	tok := w.Header().Get("X-Subject-Token")
	if w.Code != 201 || tok == "" {
		t.Fatalf("v3 auth: %d", w.Code)
	}
	req = httptest.NewRequest("GET", "/virtual-networks", nil)
	req.Header.Set("X-Auth-Token", tok)
	w = httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("with token: %d", w.Code)
	}
	if st, _ := do(t, s, "POST", "/v3/auth/tokens", strings.Replace(body, "PW", "wrong", 1)); st != 401 {
		t.Errorf("wrong password: %d", st)
	}
}

func FuzzServer(f *testing.F) {
	f.Add("POST", "/network-policys", strings.Replace(policy, "MIRROR", "", 1))
	f.Add("POST", "/ref-update", `{"operation": "ADD", "type": "virtual-network", "uuid": "x", "ref-type": "network-policy", "ref-fq-name": ["a"]}`)
	f.Add("POST", "/fqname-to-id", `{"type": "project", "fq_name": ["default-domain", "admin"]}`)
	f.Add("PUT", "/project/x", `{"project": {"display_name": null}}`)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if u, err := url.ParseRequestURI(path); err != nil || u.Path != path {
			return
		}
		// A request target has no spaces or control characters: such a
		// path cannot reach a server (httptest.NewRequest panics on it).
		if strings.IndexFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return
		}
		switch method {
		case "GET", "POST", "PUT", "DELETE":
		default:
			return
		}
		s := New(Options{})
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(method, path, bytes.NewReader([]byte(body))))
		if w.Code >= http.StatusInternalServerError {
			t.Fatalf("%s %s %q: %d %s", method, path, body, w.Code, w.Body.String())
		}
	})
}
