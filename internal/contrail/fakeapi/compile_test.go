package fakeapi

import (
	"strings"
	"testing"
)

// demo returns a server with project default-domain:demo, VN vn-web and a
// mirror-only policy "mirror" (vn-web <> any to 10.10.10.5).
func demo(opts Options) (s *Server, vn string) {
	s = New(opts)
	s.Seed("project", map[string]any{"fq_name": []string{"default-domain", "demo"}, "parent_type": "domain"})
	vn = s.Seed("virtual-network", map[string]any{"fq_name": []string{"default-domain", "demo", "vn-web"}, "parent_type": "project"})
	s.Seed("network-policy", map[string]any{"fq_name": []string{"default-domain", "demo", "mirror"}, "parent_type": "project",
		"network_policy_entries": map[string]any{"policy_rule": []any{map[string]any{
			"direction": "<>", "protocol": "any",
			"src_addresses": []any{map[string]any{"virtual_network": "default-domain:demo:vn-web"}},
			"src_ports":     []any{map[string]any{"start_port": -1, "end_port": -1}},
			"dst_addresses": []any{map[string]any{"virtual_network": "any"}},
			"dst_ports":     []any{map[string]any{"start_port": -1, "end_port": -1}},
			"action_list":   map[string]any{"mirror_to": map[string]any{"analyzer_name": "m", "analyzer_ip_address": "10.10.10.5"}}}}}})
	return s, vn
}

func attach(t *testing.T, s *Server, vn, attr string) {
	t.Helper()
	body := `{"operation": "ADD", "type": "virtual-network", "uuid": "` + vn + `", "ref-type": "network-policy",
	 "ref-fq-name": ["default-domain", "demo", "mirror"], "attr": ` + attr + `}`
	if st, b := do(t, s, "POST", "/ref-update", body); st != 200 {
		t.Fatal(st, b)
	}
}

const dynamicAttr = `{"sequence": {"major": 0, "minor": 0}, "timer": {}}`

func TestManualCompile(t *testing.T) {
	s, vn := demo(Options{ManualCompile: true})
	attach(t, s, vn, dynamicAttr)
	if st, dyn := s.ACLs(vn); st != nil || dyn != nil {
		t.Fatalf("compiled while the transformer is down: %v %v", st, dyn)
	}
	s.Compile()
	if st, dyn := s.ACLs(vn); st != nil || len(dyn) != 1 || dyn[0].Action.Mirror.AnalyzerIP != "10.10.10.5" {
		t.Errorf("after Compile: static %v, dynamic %v", st, dyn)
	}
}

func TestIgnoreTimer(t *testing.T) {
	s, vn := demo(Options{IgnoreTimer: true})
	attach(t, s, vn, dynamicAttr)
	st, dyn := s.ACLs(vn)
	if dyn != nil || len(st) != 2 || st[0].Action.Mirror == nil || st[1].RuleUUID != ImplicitAllow {
		t.Errorf("a timer ref on a server that ignores timers: static %+v, dynamic %+v", st, dyn)
	}
}

func TestACLLifecycle(t *testing.T) {
	s, vn := demo(Options{})
	attach(t, s, vn, dynamicAttr)
	st, dyn := s.ACLs(vn)
	if st != nil || len(dyn) != 1 {
		t.Fatalf("static %v, dynamic %v", st, dyn)
	}
	r := dyn[0].Action
	if r.SimpleAction != "" || !r.Mirror.JuniperHeader || r.Mirror.NICAssisted || r.Log || r.Alert {
		t.Errorf("compiled action %+v", r)
	}
	acl := s.Lookup("access-control-list", "default-domain", "demo", "vn-web", "dynamic")
	o := s.Object(acl)
	if o["parent_uuid"] != vn || o["access_control_list_entries"].(map[string]any)["dynamic"] != true {
		t.Errorf("dynamic ACL object %v", o)
	}
	if l := s.Object(vn)["access_control_lists"].([]any); len(l) != 1 {
		t.Errorf("the VN's children %v", l)
	}
	// The same entries hash alike in one server and differently in another.
	h := o["access_control_list_hash"]
	s.Compile()
	if s.Object(acl)["access_control_list_hash"] != h {
		t.Error("hash changed without a change of entries")
	}
	s2, vn2 := demo(Options{})
	attach(t, s2, vn2, dynamicAttr)
	if h2 := s2.Object(s2.Lookup("access-control-list", "default-domain", "demo", "vn-web", "dynamic"))["access_control_list_hash"]; h2 == h {
		t.Errorf("two servers give the same hash %v: it must not be relied upon", h)
	}
	// A VN goes with its ACLs.
	if st, b := do(t, s, "PUT", "/virtual-network/"+vn, `{"virtual-network": {"network_policy_refs": []}}`); st != 200 {
		t.Fatal(st, b)
	}
	if s.Object(acl) != nil {
		t.Error("dynamic ACL kept after detach")
	}
	attach(t, s, vn, dynamicAttr)
	do(t, s, "PUT", "/virtual-network/"+vn, `{"virtual-network": {"network_policy_refs": []}}`)
	if st, b := do(t, s, "DELETE", "/virtual-network/"+vn, ""); st != 200 || s.Count("access-control-list") != 0 {
		t.Errorf("delete VN: %d %s, %d ACLs left", st, b, s.Count("access-control-list"))
	}
}

// A provider network without policies has a static ACL of its own that
// denies its traffic to other VNs; attaching any policy, even a dynamic
// one, replaces it.
func TestProviderNetwork(t *testing.T) {
	s, _ := demo(Options{})
	vn := s.Seed("virtual-network", map[string]any{"fq_name": []string{"default-domain", "demo", "provider"}, "parent_type": "project",
		"is_provider_network": true})
	st, _ := s.ACLs(vn)
	var got []string
	for _, r := range st {
		got = append(got, r.Match.Src.VirtualNetwork+">"+r.Match.Dst.VirtualNetwork+":"+r.Action.SimpleAction)
	}
	want := "default-domain:demo:provider>default-domain:demo:provider:pass default-domain:demo:provider>any:deny any>any:pass"
	if strings.Join(got, " ") != want {
		t.Errorf("provider ACL %v, want %s", got, want)
	}
	attach(t, s, vn, dynamicAttr)
	if st, dyn := s.ACLs(vn); st != nil || len(dyn) != 1 {
		t.Errorf("with a dynamic policy: static %v, dynamic %v", st, dyn)
	}
}
