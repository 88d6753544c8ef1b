package fakeapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"reflect"
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

// newAdmin returns a server with the project default-domain:admin, which
// a fresh installation does not have.
func newAdmin(opts Options) *Server {
	s := New(opts)
	s.Seed("project", map[string]any{"fq_name": []string{"default-domain", "admin"}, "parent_type": "domain"})
	return s
}

const policy = `{"network-policy": {"fq_name": ["default-domain", "admin", "p"], "parent_type": "project",
 "network_policy_entries": {"policy_rule": [{"direction": "<>", "protocol": "any",
  "src_addresses": [{"virtual_network": "default-domain:admin:vn"}], "src_ports": [{"start_port": -1, "end_port": -1}],
  "dst_addresses": [{"virtual_network": "any"}], "dst_ports": [{"start_port": -1, "end_port": -1}],
  "action_list": {"simple_action": "pass", "mirror_to": {"analyzer_name": "a", "analyzer_ip_address": "10.0.0.1", "udp_port": 8099 MIRROR}}}]}}}`

func TestNoAdminProject(t *testing.T) {
	s := New(Options{})
	if s.Lookup("project", "default-domain", "default-project") == "" || s.Lookup("project", "default-domain", "admin") != "" {
		t.Error("a fresh server has default-domain:default-project and no default-domain:admin")
	}
	if st, b := do(t, s, "POST", "/network-policys", strings.Replace(policy, "MIRROR", "", 1)); st != 404 ||
		b != `Name['default-domain', 'admin'] not found` {
		t.Errorf("policy in a missing project: %d %s", st, b)
	}
}

func TestSchemaStrictness(t *testing.T) {
	for _, tc := range []struct {
		name, extra, version string
		status               int
		msg                  string
	}{
		{"valid", "", "", 200, ""},
		{"3.1 fields on a current server", `, "juniper_header": false, "nh_mode": "static", "static_nh_header": {"vtep_dst_ip_address": "10.0.0.9", "vni": 5000}`, "", 200, ""},
		{"3.1 field on 3.0", `, "juniper_header": true`, "3.0", 400, `MirrorActionType'> does not have field juniper_header`},
		{"unknown field", `, "analyser_ip": "x"`, "", 400, `MirrorActionType'> does not have field analyser_ip`},
		{"bool as string", `, "juniper_header": "true"`, "", 400, "juniper_header: true/false expected instead of true"},
		{"int as string", `, "nic_assisted_mirroring_vlan": "5"`, "", 200, ""},
		{"int not a number", `, "nic_assisted_mirroring_vlan": "five"`, "", 400, "nic_assisted_mirroring_vlan: integer value expected instead of five"},
		{"vlan out of range", `, "nic_assisted_mirroring_vlan": 4095`, "", 400, "value must be between 0 and 4094"},
		{"vni out of range", `, "static_nh_header": {"vni": 16777216}`, "", 400, "vni: value must be between 1 and 16777215"},
		{"falsy not validated", `, "static_nh_header": {"vni": 0}, "nh_mode": ""`, "", 200, ""},
		{"bad enum", `, "nh_mode": "fast"`, "", 400, "nh_mode: value must be one of ['dynamic', 'static']"},
		{"IP not validated", `, "analyzer_mac_address": "x", "static_nh_header": {"vtep_dst_ip_address": "10.0.0"}`, "", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAdmin(Options{Version: tc.version})
			st, body := do(t, s, "POST", "/network-policys", strings.Replace(policy, "MIRROR", tc.extra, 1))
			if st != tc.status || !strings.Contains(body, tc.msg) {
				t.Errorf("= %d %s, want %d %q", st, body, tc.status, tc.msg)
			}
			if st == 200 && !strings.HasPrefix(body, `{"network-policy": {"name": "p", "fq_name": ["default-domain", "admin", "p"], "uuid": "`) {
				t.Errorf("create answer %s", body)
			}
		})
	}
}

func TestIntegersConverted(t *testing.T) {
	s := newAdmin(Options{})
	pol := strings.Replace(policy, `"udp_port": 8099 MIRROR`, `"udp_port": "8099", "nic_assisted_mirroring_vlan": 7.9`, 1)
	if st, b := do(t, s, "POST", "/network-policys", pol); st != 200 {
		t.Fatal(st, b)
	}
	o := s.Object(s.Lookup("network-policy", "default-domain", "admin", "p"))
	rule := o["network_policy_entries"].(map[string]any)["policy_rule"].([]any)[0].(map[string]any)
	m := rule["action_list"].(map[string]any)["mirror_to"].(map[string]any)
	if m["udp_port"] != float64(8099) || m["nic_assisted_mirroring_vlan"] != float64(7) {
		t.Errorf("mirror_to = %v: integers are stored converted", m)
	}
	if u, _ := rule["rule_uuid"].(string); !isUUID(u) {
		t.Errorf("rule_uuid = %v: the server fills it in", rule["rule_uuid"])
	}
}

func TestPolicyRuleChecks(t *testing.T) {
	rule := `{"direction": "<>", "protocol": "PROTO", "ethertype": "IPv4", "src_addresses": [{"virtual_network": "any"}],
	 "src_ports": [{"start_port": -1, "end_port": -1}], "dst_addresses": [{DST}], "dst_ports": [{"start_port": -1, "end_port": -1}],
	 "action_list": {"simple_action": "pass"}}`
	for _, tc := range []struct {
		proto, dst, rules string
		status            int
		msg               string
	}{
		{"tcp", `"virtual_network": "any"`, "", 200, ""},
		{"58", `"virtual_network": "any"`, "", 400, "IPv4 rule with IPv6 protocol : 58"},
		{"icmp6", `"virtual_network": "any"`, "", 400, "IPv4 rule with IPv6 protocol : icmp6"},
		{"256", `"virtual_network": "any"`, "", 400, "Rule with invalid protocol : 256"},
		{"SCTP", `"virtual_network": "any"`, "", 200, ""},
		{"bogus", `"virtual_network": "any"`, "", 400, "Rule with invalid protocol : bogus"},
		{"any", `"security_group": "local"`, "", 400, "Config Error: policy rule refering to security group is not allowed"},
		{"any", `"virtual_network": "any"`, "twice", 409, "Rule already exists : None"},
	} {
		r := strings.NewReplacer("PROTO", tc.proto, "DST", tc.dst).Replace(rule)
		rules := r
		if tc.rules == "twice" {
			rules = r + ", " + r
		}
		s := newAdmin(Options{})
		body := `{"network-policy": {"fq_name": ["default-domain", "admin", "p"], "parent_type": "project",
		 "network_policy_entries": {"policy_rule": [` + rules + `]}}}`
		if st, b := do(t, s, "POST", "/network-policys", body); st != tc.status || !strings.Contains(b, tc.msg) {
			t.Errorf("%s %s %s: %d %s, want %d %q", tc.proto, tc.dst, tc.rules, st, b, tc.status, tc.msg)
		}
	}
}

func TestRules(t *testing.T) {
	s := newAdmin(Options{})
	pol := strings.Replace(policy, "MIRROR", "", 1)
	if st, b := do(t, s, "POST", "/network-policys", pol); st != 200 {
		t.Fatal(st, b)
	}
	pid := s.Lookup("network-policy", "default-domain", "admin", "p")
	if st, b := do(t, s, "POST", "/network-policys", pol); st != 409 || b != "['default-domain', 'admin', 'p'] already exists with uuid: "+pid {
		t.Errorf("duplicate: %d %s", st, b)
	}
	wrongParent := `{"network-policy": {"fq_name": ["default-domain", "p"], "parent_type": "domain"}}`
	if st, b := do(t, s, "POST", "/network-policys", wrongParent); st != 400 || b != "Invalid parent type: domain. Allowed types: ['project']" {
		t.Errorf("wrong parent type: %d %s", st, b)
	}
	noAttr := `{"virtual-network": {"fq_name": ["default-domain", "admin", "vn"], "parent_type": "project", "network_policy_refs": [{"to": ["default-domain", "admin", "p"]}]}}`
	if st, b := do(t, s, "POST", "/virtual-networks", noAttr); st != 400 || !strings.HasSuffix(b, "'attr'") {
		t.Errorf("ref without attr: %d %s", st, b)
	}
	missingRef := `{"virtual-network": {"fq_name": ["default-domain", "admin", "vn"], "parent_type": "project", "network_policy_refs": [{"to": ["default-domain", "admin", "q"], "attr": {"sequence": {"major": 0, "minor": 0}}}]}}`
	if st, b := do(t, s, "POST", "/virtual-networks", missingRef); st != 400 || !strings.HasPrefix(b, "Unknown reference in resource create") {
		t.Errorf("ref to missing object: %d %s", st, b)
	}
	badUUID := `{"virtual-network": {"fq_name": ["default-domain", "admin", "vn"], "parent_type": "project", "network_policy_refs": [{"uuid": "nope", "attr": {"sequence": {"major": 0, "minor": 0}}}]}}`
	if st, _ := do(t, s, "POST", "/virtual-networks", badUUID); st != 500 {
		t.Errorf("ref to missing uuid: %d", st)
	}
	vn := strings.Replace(missingRef, `"q"`, `"p"`, 1)
	if st, b := do(t, s, "POST", "/virtual-networks", vn); st != 200 {
		t.Fatal(st, b)
	}
	vid := s.Lookup("virtual-network", "default-domain", "admin", "vn")
	if st, b := do(t, s, "DELETE", "/network-policy/"+pid, ""); st != 409 || b != "Delete when resource still referred: ['http://example.com/virtual-network/"+vid+"']" {
		t.Errorf("delete referenced: %d %s", st, b)
	}
	if st, b := do(t, s, "DELETE", "/project/"+s.Lookup("project", "default-domain", "admin"), ""); st != 409 ||
		b != "Delete when children still present: ['http://example.com/virtual-network/"+vid+"']" {
		t.Errorf("delete with children: %d %s", st, b)
	}
	// PUT replaces a ref list whole: an empty list detaches everything.
	if st, b := do(t, s, "PUT", "/virtual-network/"+vid, `{"virtual-network": {"network_policy_refs": []}}`); st != 200 ||
		b != `{"virtual-network": {"uuid": "`+vid+`", "href": "http://example.com/virtual-network/`+vid+`"}}` {
		t.Fatal(st, b)
	}
	if o := s.Object(vid); o["network_policy_refs"] != nil {
		t.Errorf("refs after PUT []: %v", o["network_policy_refs"])
	}
	// Ignored: a new fq_name, uuid or name, unknown fields.
	if st, _ := do(t, s, "PUT", "/virtual-network/"+vid, `{"virtual-network": {"fq_name": ["x"], "uuid": "u", "name": "n", "bogus": 1}}`); st != 200 ||
		s.Lookup("virtual-network", "default-domain", "admin", "vn") != vid {
		t.Errorf("fq_name change: %d", st)
	}
	if st, b := do(t, s, "PUT", "/virtual-network/"+vid, `{"virtual-network": {"display_name": 5}}`); st != 400 ||
		b != "Bad property in http_put: Error validating property display_name: string value expected instead of 5" {
		t.Errorf("wrong type on PUT: %d %s", st, b)
	}
	if st, b := do(t, s, "PUT", "/virtual-network/"+vid, `{"network-policy": {}}`); st != 500 {
		t.Errorf("PUT with another type's wrapper: %d %s", st, b)
	}
	if st, b := do(t, s, "DELETE", "/network-policy/"+pid, ""); st != 200 || b != "" {
		t.Errorf("delete unreferenced: %d %s", st, b)
	}
	if st, b := do(t, s, "GET", "/network-policy/"+pid, ""); st != 404 || b != "Unknown id: "+pid {
		t.Errorf("get deleted: %d %s", st, b)
	}
	if st, _ := do(t, s, "POST", "/fqname-to-id", `{"type": "network-policy", "fq_name": ["default-domain", "admin", "p"]}`); st != 404 {
		t.Errorf("fqname-to-id deleted: %d", st)
	}
}

func TestPutReplacesFieldWhole(t *testing.T) {
	s := newAdmin(Options{})
	s.Seed("virtual-network", map[string]any{"fq_name": []string{"default-domain", "admin", "vn"}, "parent_type": "project"})
	id := s.Seed("virtual-machine-interface", map[string]any{"fq_name": []string{"default-domain", "admin", "port"}, "parent_type": "project",
		"virtual_network_refs":                 []any{map[string]any{"to": []string{"default-domain", "admin", "vn"}}},
		"virtual_machine_interface_properties": map[string]any{"max_flows": 10, "local_preference": 5}})
	if st, b := do(t, s, "PUT", "/virtual-machine-interface/"+id,
		`{"virtual-machine-interface": {"virtual_machine_interface_properties": {"max_flows": 20}}}`); st != 200 {
		t.Fatal(st, b)
	}
	props := s.Object(id)["virtual_machine_interface_properties"].(map[string]any)
	if len(props) != 1 || props["max_flows"] != float64(20) {
		t.Errorf("props = %v: the sent field must replace the stored one whole", props)
	}
	if st, b := do(t, s, "PUT", "/virtual-machine-interface/"+id,
		`{"virtual-machine-interface": {"virtual_machine_interface_properties": {"service_interface_type": "sniffer"}}}`); st != 400 ||
		!strings.HasSuffix(b, "Invalid service interface type sniffer. Valid values are: management|left|right|other[0-9]*") {
		t.Errorf("service_interface_type: %d %s", st, b)
	}
}

func keys(t *testing.T, s *Server, id string) []string {
	t.Helper()
	a, _ := s.Object(id)["annotations"].(map[string]any)
	var k []string
	l, _ := a["key_value_pair"].([]any)
	for _, e := range l {
		k = append(k, e.(map[string]any)["key"].(string)+"="+e.(map[string]any)["value"].(string))
	}
	return k
}

func TestAnnotations(t *testing.T) {
	s := newAdmin(Options{})
	id := s.Seed("network-policy", map[string]any{"fq_name": []string{"default-domain", "admin", "p"}, "parent_type": "project"})
	put := func(ann string) (int, string) {
		return do(t, s, "PUT", "/network-policy/"+id, `{"network-policy": {"annotations": `+ann+`}}`)
	}
	if st, _ := put(`{"key_value_pair": [{"key": "z", "value": "1"}, {"key": "a", "value": "2"}, {"key": "z", "value": "3"}]}`); st != 200 {
		t.Fatal(st)
	}
	if got := keys(t, s, id); !reflect.DeepEqual(got, []string{"a=2", "z=3"}) {
		t.Errorf("annotations = %v: sorted by key, the last of a repeated key kept", got)
	}
	if st, b := put("null"); st != 500 || b != "TypeError: 'NoneType' object is not iterable" {
		t.Errorf("annotations null: %d %s", st, b)
	}
	if got := keys(t, s, id); len(got) != 2 {
		t.Errorf("annotations after the failed PUT = %v: unchanged", got)
	}
	pcu := func(u string) {
		t.Helper()
		if st, b := do(t, s, "POST", "/prop-collection-update", `{"uuid": "`+id+`", "updates": [`+u+`]}`); st != 200 || b != "" {
			t.Errorf("prop-collection-update %s: %d %s", u, st, b)
		}
	}
	pcu(`{"field": "annotations", "operation": "set", "value": {"key": "m", "value": "x"}}`)
	pcu(`{"field": "annotations", "operation": "SET", "value": {"key": "a", "value": "9"}}`)
	pcu(`{"field": "annotations", "operation": "delete", "position": "z"}`)
	if got := keys(t, s, id); !reflect.DeepEqual(got, []string{"a=9", "m=x"}) {
		t.Errorf("annotations = %v after set m, set a, delete z", got)
	}
	if st, b := do(t, s, "POST", "/prop-collection-update", `{"uuid": "`+id+`", "updates": [{"field": "display_name", "operation": "set", "value": {"key": "k"}}]}`); st != 400 ||
		b != `display_name neither "ListProperty" nor "MapProperty"` {
		t.Errorf("prop-collection-update of a plain property: %d %s", st, b)
	}
	if st, _ := put(`{"key_value_pair": []}`); st != 200 || s.Object(id)["annotations"] != nil {
		t.Errorf("annotations cleared by an empty list: %d %v", st, s.Object(id)["annotations"])
	}
}

func TestRefUpdate(t *testing.T) {
	s := newAdmin(Options{})
	vn := s.Seed("virtual-network", map[string]any{"fq_name": []string{"default-domain", "admin", "vn"}, "parent_type": "project"})
	p1 := s.Seed("network-policy", map[string]any{"fq_name": []string{"default-domain", "admin", "p1"}, "parent_type": "project"})
	p2 := s.Seed("network-policy", map[string]any{"fq_name": []string{"default-domain", "admin", "p2"}, "parent_type": "project"})
	ru := func(body string) (int, string) {
		return do(t, s, "POST", "/ref-update", body)
	}
	// Added in the order p2, p1: read back by UUID (creation order here).
	if st, b := ru(`{"operation": "add", "type": "virtual_network", "uuid": "` + vn + `", "ref-type": "network_policy", "ref-uuid": "` + p2 + `", "extra": 1}`); st != 200 ||
		b != `{"uuid": "`+vn+`"}` {
		t.Fatal(st, b)
	}
	if st, b := ru(`{"operation": "ADD", "type": "virtual-network", "uuid": "` + vn + `", "ref-type": "network-policy", "ref-fq-name": ["default-domain", "admin", "p1"], "attr": {"sequence": {"major": "2", "minor": 0}}}`); st != 200 {
		t.Fatal(st, b)
	}
	refs := s.Object(vn)["network_policy_refs"].([]any)
	if len(refs) != 2 || refs[0].(map[string]any)["uuid"] != p1 || refs[1].(map[string]any)["attr"] != nil {
		t.Errorf("refs = %v: by UUID, the ref added without attr has a null attr", refs)
	}
	if a := refs[0].(map[string]any)["attr"].(map[string]any)["sequence"].(map[string]any)["major"]; a != float64(2) {
		t.Errorf("major = %v, converted to an integer", a)
	}
	for _, tc := range []struct {
		body   string
		status int
		msg    string
	}{
		{`{"operation": "DELETE", "type": "virtual-network", "uuid": "` + vn + `", "ref-type": "network-policy", "ref-uuid": "00000000-0000-4000-8000-000000000000"}`, 200, ""},
		{`{"operation": "REPLACE", "type": "virtual-network", "uuid": "` + vn + `", "ref-type": "network-policy", "ref-uuid": "` + p1 + `"}`, 400, "Bad Request: operation should be add or delete: REPLACE"},
		{`{"operation": "ADD", "type": "virtual-network", "uuid": "` + vn + `", "ref-type": "network-policy", "ref-fq-name": ["default-domain", "admin", "nope"]}`, 404, "Name ['default-domain', 'admin', 'nope'] not found"},
		{`{"operation": "ADD", "type": "bogus", "uuid": "` + vn + `", "ref-type": "network-policy", "ref-uuid": "` + p1 + `"}`, 404, "Resource type 'bogus' not found"},
		{`{"operation": "ADD", "type": "virtual-network", "uuid": "` + p1 + `", "ref-type": "network-policy", "ref-uuid": "` + p1 + `"}`, 404, "Unknown id: " + p1},
		{`{"operation": "ADD", "type": "virtual-network", "uuid": "` + vn + `", "ref-type": "network-policy", "ref-uuid": "` + p1 + `", "attr": {"sequence": {"major": 1}, "x": 1}}`, 400, "VirtualNetworkPolicyType'> does not have field x"},
	} {
		if st, b := ru(tc.body); st != tc.status || !strings.Contains(b, tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.body, st, b, tc.status, tc.msg)
		}
	}
	if st, _ := ru(`{"operation": "DELETE", "type": "virtual-network", "uuid": "` + vn + `", "ref-type": "network-policy", "ref-fq-name": ["default-domain", "admin", "p2"]}`); st != 200 {
		t.Fatal(st)
	}
	if refs := s.Object(vn)["network_policy_refs"].([]any); len(refs) != 1 {
		t.Errorf("refs after DELETE p2: %v", refs)
	}
}

func TestLists(t *testing.T) {
	s := newAdmin(Options{})
	prj := s.Lookup("project", "default-domain", "admin")
	p := s.Seed("network-policy", map[string]any{"fq_name": []string{"default-domain", "admin", "p"}, "parent_type": "project"})
	vn1 := s.Seed("virtual-network", map[string]any{"fq_name": []string{"default-domain", "admin", "vn1"}, "parent_type": "project"})
	s.Seed("virtual-network", map[string]any{"fq_name": []string{"default-domain", "admin", "vn2"}, "parent_type": "project",
		"network_policy_refs": []any{map[string]any{"to": []string{"default-domain", "admin", "p"}, "attr": nil}}})
	list := func(path string) []any {
		t.Helper()
		st, b := do(t, s, "GET", path, "")
		var v map[string][]any
		if st != 200 || json.Unmarshal([]byte(b), &v) != nil {
			t.Fatalf("%s: %d %s", path, st, b)
		}
		for _, l := range v {
			return l
		}
		return nil
	}
	l := list("/virtual-networks?parent_id=" + prj)
	if len(l) != 2 || l[0].(map[string]any)["uuid"] != vn1 || len(l[0].(map[string]any)) != 3 {
		t.Errorf("list = %v: children in creation order, uuid, fq_name and href", l)
	}
	// Detail: properties and forward refs; back refs only when asked for.
	for _, o := range list("/virtual-networks?detail=True&parent_id=" + prj) {
		vn := o.(map[string]any)["virtual-network"].(map[string]any)
		if vn["name"] == "vn2" && vn["network_policy_refs"] == nil {
			t.Errorf("detail list without the forward refs: %v", vn)
		}
		if vn["access_control_lists"] != nil {
			t.Errorf("detail list with children: %v", vn)
		}
	}
	d := list("/network-policys?detail=true&parent_id=" + prj)[0].(map[string]any)["network-policy"].(map[string]any)
	if d["virtual_network_back_refs"] != nil || d["display_name"] != "p" {
		t.Errorf("detail list of policies: %v", d)
	}
	d = list("/network-policys?detail=True&fields=virtual_network_back_refs&parent_id=" + prj)[0].(map[string]any)["network-policy"].(map[string]any)
	if br, _ := d["virtual_network_back_refs"].([]any); len(br) != 1 {
		t.Errorf("detail list with fields=virtual_network_back_refs: %v", d)
	}
	if o := s.Object(p); o["virtual_network_back_refs"] == nil {
		t.Errorf("a single GET holds the back refs: %v", o)
	}
	if st, b := do(t, s, "GET", "/network-policys?count=true", ""); st != 200 || b != `{"network-policys": {"count": 1}}` {
		t.Errorf("count: %d %s", st, b)
	}
	if l := list("/network-policys?parent_id=" + vn1); len(l) != 0 {
		t.Errorf("list under another parent: %v", l)
	}
	if l := list("/virtual-networks?back_ref_id=" + p); len(l) != 1 {
		t.Errorf("list by back_ref_id: %v", l)
	}
}

func TestKeystone(t *testing.T) {
	s := New(Options{Keystone: true, Username: "u", Password: "p", Project: "admin"})
	if st, b := do(t, s, "GET", "/virtual-networks", ""); st != 401 || !isKeystoneError(b, 401) {
		t.Errorf("no token: %d %s", st, b)
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

// FuzzServer sends arbitrary requests: the server must not panic, must
// answer a status the real one uses, and a request it refuses must leave
// everything as it was.
func FuzzServer(f *testing.F) {
	f.Add("POST", "/network-policys", strings.Replace(policy, "MIRROR", "", 1))
	f.Add("POST", "/ref-update", `{"operation": "ADD", "type": "virtual-network", "uuid": "x", "ref-type": "network-policy", "ref-fq-name": ["a"]}`)
	f.Add("POST", "/fqname-to-id", `{"type": "project", "fq_name": ["default-domain", "admin"]}`)
	f.Add("PUT", "/project/x", `{"project": {"display_name": null}}`)
	f.Add("POST", "/prop-collection-update", `{"uuid": "x", "updates": [{"field": "annotations", "operation": "set", "value": {"key": "k", "value": "v"}}]}`)
	f.Add("GET", "/virtual-networks?detail=True&fields=network_policy_back_refs", "")
	// VN stands for the UUID of a seeded VN.
	f.Add("PUT", "/virtual-network/VN", `{"virtual-network": {"network_policy_refs": [{"to": ["default-domain", "admin", "vn"], "attr": {"sequence": {"major": 0}}}], "annotations": null}}`)
	f.Add("POST", "/ref-update", `{"operation": "add", "type": "virtual_network", "uuid": "VN", "ref-type": "network_policy", "ref-fq-name": ["default-domain", "admin", "p"], "attr": {"timer": {}}}`)
	f.Add("POST", "/network-policys", `{"network-policy": {"fq_name": ["default-domain", "admin", "p"], "network_policy_entries": {"policy_rule": [{"protocol": "6", "src_addresses": [{"network_policy": "default-domain:admin:p"}], "dst_addresses": [{"subnet": {"ip_prefix": "10.0.0.0", "ip_prefix_len": "8"}}], "src_ports": [{}], "dst_ports": [{"start_port": "80"}], "action_list": {"mirror_to": {"analyzer_name": "default-domain:admin:si"}}}]}}}`)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if u, err := url.ParseRequestURI(path); err != nil || u.Path != strings.SplitN(path, "?", 2)[0] {
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
		s := newAdmin(Options{})
		vn := s.Seed("virtual-network", map[string]any{"fq_name": []string{"default-domain", "admin", "vn"}, "parent_type": "project"})
		path = strings.ReplaceAll(path, "VN", vn)
		body = strings.ReplaceAll(body, "VN", vn)
		before := s.Snapshot()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(method, path, bytes.NewReader([]byte(body))))
		switch w.Code {
		case 200, 400, 404, 405, 409, 500:
		default:
			t.Fatalf("%s %s %q: status %d", method, path, body, w.Code)
		}
		if w.Code >= 400 && !reflect.DeepEqual(before, s.Snapshot()) {
			t.Fatalf("%s %s %q: %d %s, and the server state changed", method, path, body, w.Code, w.Body.String())
		}
		if w.Code == 200 && w.Body.Len() > 0 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s %q: 200 with a body that is not JSON: %s", method, path, body, w.Body.String())
		}
	})
}

// isKeystoneError reports whether body is Keystone's JSON error with code.
func isKeystoneError(body string, code int) bool {
	var v struct {
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	return json.Unmarshal([]byte(body), &v) == nil && v.Error.Code == code
}
