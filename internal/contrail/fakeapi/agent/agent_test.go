package agent

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi"
	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi/transcript"
)

const (
	web = "default-domain:demo:vn-web"
	db  = "default-domain:demo:vn-db"
	// other is a VN the scenarios do not create: no ACLs.
	other = "default-domain:demo:vn-other"
)

// scenario replays a recorded scenario into a fake up to snapshot i.
type scenario struct {
	srv *fakeapi.Server
	p   *transcript.Player
	sc  transcript.Scenario
}

func play(t *testing.T, id string) *scenario {
	t.Helper()
	sc := transcript.Get(t, id)
	srv := fakeapi.New(fakeapi.Options{SvcMonitor: sc.Server.SvcMonitor, LogicalRoutersDisabled: !sc.Server.LogicalRouters})
	return &scenario{srv: srv, p: transcript.NewPlayer(srv, sc), sc: sc}
}

// to plays up to the snapshot whose label starts with label.
func (s *scenario) to(t *testing.T, label string) *fakeapi.Server {
	t.Helper()
	for _, c := range s.sc.Compiled {
		if strings.HasPrefix(c.Label, label) {
			s.p.PlayTo(t, c.After)
			return s.srv
		}
	}
	t.Fatalf("%s has no snapshot %q", s.sc.ID, label)
	return nil
}

// ruleOf returns the rule_uuid of rule i of a policy in default-domain:demo.
func ruleOf(t *testing.T, srv *fakeapi.Server, policy string, i int) string {
	t.Helper()
	p := srv.Object(srv.Lookup("network-policy", "default-domain", "demo", policy))
	return p["network_policy_entries"].(map[string]any)["policy_rule"].([]any)[i].(map[string]any)["rule_uuid"].(string)
}

func flow(srcVN, src, dstVN, dst string, proto uint8, dport uint16) Flow {
	return Flow{SrcVN: srcVN, DstVN: dstVN, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		Protocol: proto, SrcPort: 40000, DstPort: dport}
}

var (
	webToDB80  = flow(web, "10.1.1.5", db, "10.2.2.5", 6, 80)
	webToDB53  = flow(web, "10.1.1.5", db, "10.2.2.5", 17, 53)
	webToOther = flow(web, "10.1.1.5", other, "10.9.9.9", 6, 443)
	dbToWeb    = flow(db, "10.2.2.5", web, "10.1.1.5", 6, 22)
	webToWeb   = flow(web, "10.1.1.5", web, "10.1.1.6", 6, 22)
	analyzer   = []string{"vrsniff-web@10.10.10.5"}
)

func check(t *testing.T, what string, v Verdict, allowed bool, mirrors []string) {
	t.Helper()
	if v.Allowed != allowed || !reflect.DeepEqual(v.Mirrors, mirrors) {
		t.Errorf("%s: allowed %v, mirrors %v; want %v, %v (source %+v, dest %+v)", what, v.Allowed, v.Mirrors, allowed, mirrors, v.Source, v.Dest)
	}
}

// S1: a dynamic mirror-only policy on a VN without policies mirrors its
// traffic both ways and changes nothing about what passes.
func TestDynamicMirrorOnly(t *testing.T) {
	s := play(t, "S1")
	srv := s.to(t, "before")
	check(t, "before", Evaluate(srv, webToDB80), true, nil)
	srv = s.to(t, "after")
	check(t, "web → db", Evaluate(srv, webToDB80), true, analyzer)
	check(t, "db → web, mirrored on the web side", Evaluate(srv, dbToWeb), true, analyzer)
	check(t, "web → web", Evaluate(srv, webToWeb), true, analyzer)
}

// S2: a pass+mirror rule appended after an allow-all policy is compiled
// away: nothing is mirrored.
func TestAppendedMirrorEliminated(t *testing.T) {
	srv := play(t, "S2").to(t, "after")
	v := Evaluate(srv, webToOther)
	check(t, "web → elsewhere", v, true, nil)
	if v.Source.Rule != ruleOf(t, srv, "allow-all", 0) {
		t.Errorf("decided by %s, want the allow-all rule", v.Source.Rule)
	}
}

// S5: a flow the static ACL denies is still mirrored by the dynamic ACL,
// and still denied.
func TestDeniedFlowStillMirrored(t *testing.T) {
	s := play(t, "S5")
	srv := s.to(t, "before")
	check(t, "before: web → db", Evaluate(srv, webToDB80), false, nil)
	srv = s.to(t, "after")
	v := Evaluate(srv, webToDB80)
	check(t, "after: web → db", v, false, analyzer)
	if v.Source.Rule != ruleOf(t, srv, "web-db-deny", 0) {
		t.Errorf("denied by %s, want the web-db-deny rule", v.Source.Rule)
	}
	check(t, "after: web → elsewhere", Evaluate(srv, webToOther), true, analyzer)
}

// S4: the appended static pass+mirror rule removes the hidden per-rule
// deny: web → db UDP, denied on vn-web before, passes on vn-web after
// (and is mirrored); vn-db's own ACL still denies it.
func TestAppendedPassOpensTraffic(t *testing.T) {
	s := play(t, "S4")
	srv := s.to(t, "before")
	v := Evaluate(srv, webToDB53)
	if v.Source.Allowed || v.Source.Rule != ruleOf(t, srv, "web-to-db-http", 0) {
		t.Errorf("before: vn-web side %+v, want denied by the narrow policy's hidden deny", v.Source)
	}
	check(t, "before: web → db tcp/80", Evaluate(srv, webToDB80), true, nil)
	srv = s.to(t, "after")
	v = Evaluate(srv, webToDB53)
	if !v.Source.Allowed || v.Source.Rule != ruleOf(t, srv, "vrsniff-web", 0) || !reflect.DeepEqual(v.Source.Mirrors, analyzer) {
		t.Errorf("after: vn-web side %+v, want passed and mirrored by the appended rule", v.Source)
	}
	check(t, "after: web → db udp/53, vn-db still denies", v, false, analyzer)
	check(t, "after: web → db tcp/80, decided before the mirror rule", Evaluate(srv, webToDB80), true, nil)
}

// S4n: without logical routers the appended pass opens everything from
// vn-web that the final deny used to block.
func TestAppendedPassOpensEverything(t *testing.T) {
	s := play(t, "S4n")
	srv := s.to(t, "before")
	check(t, "before: web → elsewhere", Evaluate(srv, webToOther), false, nil)
	srv = s.to(t, "after")
	v := Evaluate(srv, webToOther)
	check(t, "after: web → elsewhere", v, true, analyzer)
	if v.Source.Rule != ruleOf(t, srv, "vrsniff-web", 0) {
		t.Errorf("passed by %s, want the appended rule", v.Source.Rule)
	}
}

// S7, S7m: a mirror to a service instance has an analyzer IP only with
// svc-monitor's shared service IP; without it nothing is mirrored.
func TestServiceInstanceAnalyzer(t *testing.T) {
	check(t, "no svc-monitor", Evaluate(play(t, "S7").to(t, "after"), webToOther), true, nil)
	check(t, "svc-monitor", Evaluate(play(t, "S7m").to(t, "after"), webToOther), true,
		[]string{"default-domain:demo:vrsniff-si@0.255.255.252"})
}

// S8: a subnet-only source with another VN as destination compiles to
// nothing; with the VN next to the subnet it mirrors that traffic only.
func TestSubnetSource(t *testing.T) {
	s := play(t, "S8")
	srv := s.to(t, "after: subnet")
	check(t, "subnet rule", Evaluate(srv, webToDB80), true, nil)
	srv = s.to(t, "after: also")
	check(t, "vn+subnet rule", Evaluate(srv, webToDB80), true, []string{"vrsniff-web-vnsubnet@10.10.10.5"})
	check(t, "vn+subnet rule, another destination", Evaluate(srv, webToOther), true, nil)
	outside := flow(web, "10.7.7.7", db, "10.2.2.5", 6, 80)
	check(t, "vn+subnet rule, a source outside the subnet", Evaluate(srv, outside), true, nil)
}

// A flow carries two analyzers at most; a terminal static rule without
// simple action lets the flow through.
func TestMirrorLimitAndMirrorOnlyStatic(t *testing.T) {
	srv := fakeapi.New(fakeapi.Options{})
	srv.Seed("project", map[string]any{"fq_name": []string{"default-domain", "demo"}, "parent_type": "domain"})
	rule := func(name, proto string) map[string]any {
		return map[string]any{"direction": "<>", "protocol": proto,
			"src_addresses": []any{map[string]any{"virtual_network": web}}, "src_ports": []any{map[string]any{"start_port": -1, "end_port": -1}},
			"dst_addresses": []any{map[string]any{"virtual_network": "any"}}, "dst_ports": []any{map[string]any{"start_port": -1, "end_port": -1}},
			"action_list": map[string]any{"mirror_to": map[string]any{"analyzer_name": name, "analyzer_ip_address": "10.10.10.5"}}}
	}
	policy := func(name string, rules ...any) {
		srv.Seed("network-policy", map[string]any{"fq_name": []string{"default-domain", "demo", name}, "parent_type": "project",
			"network_policy_entries": map[string]any{"policy_rule": rules}})
	}
	policy("three", rule("a1", "any"), rule("a2", "tcp"), rule("a3", "6"))
	policy("static", rule("s1", "any"))
	seq := func(major int, timer bool) map[string]any {
		a := map[string]any{"sequence": map[string]any{"major": major, "minor": 0}}
		if timer {
			a["timer"] = map[string]any{}
		}
		return a
	}
	srv.Seed("virtual-network", map[string]any{"fq_name": strings.Split(web, ":"), "parent_type": "project",
		"network_policy_refs": []any{
			map[string]any{"to": []string{"default-domain", "demo", "three"}, "attr": seq(0, true)},
			map[string]any{"to": []string{"default-domain", "demo", "static"}, "attr": seq(1, false)},
		}})
	_, dyn := srv.ACLs(srv.Lookup("virtual-network", strings.Split(web, ":")...))
	if len(dyn) != 3 {
		t.Fatalf("dynamic ACL has %d rules, want the 3 (other analyzers: not subsets)", len(dyn))
	}
	check(t, "three analyzers and a mirror-only static rule", Evaluate(srv, webToOther), true,
		[]string{"a1@10.10.10.5", "a2@10.10.10.5"})
}
