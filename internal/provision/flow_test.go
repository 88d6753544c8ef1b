package provision

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi"
	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi/agent"
)

// flows is traffic of vn-web and vn-db in every combination the scenarios
// decide differently, and one flow the mirror does not match (db to db).
var flows = []agent.Flow{
	flow(vnWeb, "10.1.1.10", vnDB, "10.2.2.10", 6, 40000, 80),
	flow(vnWeb, "10.1.1.10", vnDB, "10.2.2.10", 6, 40001, 22),
	flow(vnWeb, "10.1.1.10", vnDB, "10.2.2.10", 17, 40002, 53),
	flow(vnWeb, "10.1.1.10", vnDB, "10.2.2.10", 1, 0, 0),
	flow(vnDB, "10.2.2.10", vnWeb, "10.1.1.10", 6, 40003, 80),
	flow(vnDB, "10.2.2.10", vnWeb, "10.1.1.10", 6, 40004, 5432),
	flow(vnWeb, "10.1.1.10", vnWeb, "10.1.1.11", 6, 40005, 443),
	flow(vnDB, "10.2.2.10", vnDB, "10.2.2.11", 6, 40006, 443),
}

func flow(svn, src, dvn, dst string, proto uint8, sp, dp uint16) agent.Flow {
	return agent.Flow{SrcVN: svn, DstVN: dvn, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		Protocol: proto, SrcPort: sp, DstPort: dp}
}

func narrow(e *env) {
	r := rule(vnWeb, vnDB, "tcp", "pass")
	r["direction"] = ">"
	r["dst_ports"] = []any{map[string]any{"start_port": 80, "end_port": 80}}
	e.attach(e.web, "web-to-db-http", 0, r)
	e.refAdd(e.db, "web-to-db-http", map[string]any{"sequence": map[string]any{"major": 0, "minor": 0}})
}

func deny(e *env) {
	e.attach(e.web, "web-db-deny", 0, rule(vnWeb, vnDB, "any", "deny"))
	e.refAdd(e.db, "web-db-deny", map[string]any{"sequence": map[string]any{"major": 0, "minor": 0}})
}

// The networks a mirror is tried on: what each allows and denies must not
// change, every flow of vn-web must be mirrored (denied ones too), and
// delete must leave the server as it was.
var networks = []struct {
	name     string
	setup    func(*env)
	provider bool
}{
	{"no-policy", func(*env) {}, false},
	{"allow-all", func(e *env) { e.attach(e.web, "allow-all", 0, rule(vnWeb, "any", "any", "pass")) }, false},
	{"narrow-allow", narrow, false},
	{"explicit-deny", deny, false},
	{"provider", func(e *env) {
		e.update("virtual-network", e.web, map[string]any{"is_provider_network": true})
	}, true},
}

func TestMirrorIsAllowNeutral(t *testing.T) {
	for _, mode := range []Kind{KindPolicy, KindServiceInstance} {
		for _, nw := range networks {
			t.Run(string(mode)+"/"+nw.name, func(t *testing.T) {
				e := newEnv(t, fakeapi.Options{SvcMonitor: true})
				ctx := context.Background()
				nw.setup(e)
				before := e.fake.Snapshot()
				verdicts := make([]agent.Verdict, len(flows))
				for i, f := range flows {
					verdicts[i] = agent.Evaluate(e.fake, f)
					if len(verdicts[i].Mirrors) != 0 {
						t.Fatalf("flow %d mirrored before the mirror: %v", i, verdicts[i].Mirrors)
					}
				}
				s := policySpec("m")
				if mode == KindServiceInstance {
					s = Spec{Name: "m", Kind: KindServiceInstance, VN: vnWeb, AnalyzerVN: vnSniff, SnifferPort: e.sniff}
				}
				_, err := e.p.Create(ctx, s)
				if nw.provider {
					if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "--per-port") {
						t.Fatalf("provider network: err = %v, want ErrUnsafe offering --per-port", err)
					}
					snapshotEqual(t, before, e.fake.Snapshot())
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				for i, f := range flows {
					v := agent.Evaluate(e.fake, f)
					if v.Allowed != verdicts[i].Allowed {
						t.Errorf("flow %d (%s -> %s proto %d port %d): allowed %v, was %v", i, f.SrcVN, f.DstVN, f.Protocol, f.DstPort, v.Allowed, verdicts[i].Allowed)
					}
					want := f.SrcVN == vnWeb || f.DstVN == vnWeb
					got := len(v.Mirrors) == 1 && strings.HasPrefix(v.Mirrors[0], "default-domain:admin:vrsniff-m@") &&
						!strings.HasSuffix(v.Mirrors[0], "@")
					if want != got {
						t.Errorf("flow %d (%s -> %s proto %d port %d, allowed %v): mirrors %v, want mirrored %v", i, f.SrcVN, f.DstVN, f.Protocol, f.DstPort, v.Allowed, v.Mirrors, want)
					}
				}
				ms, err := e.p.List(ctx, scope)
				if err != nil || len(ms) != 1 || !ms[0].OK() || ms[0].Mechanism != MechDynamic {
					t.Fatalf("List = %+v, %v", ms, err)
				}
				if c := checks(ms[0]); !c["compiled"] || !c["allow-neutral"] || !c["analyzer"] {
					t.Errorf("checks = %+v", ms[0].Checks)
				}
				if _, err := e.p.Delete(ctx, scope, "m"); err != nil {
					t.Fatal(err)
				}
				snapshotEqual(t, before, e.fake.Snapshot())
			})
		}
	}
}

// A mirror made the old way (pass + mirror_to, attached statically after
// the network's policies) is reported for what it does, and deleted
// cleanly.
func TestLegacyStaticMirror(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	e.attach(e.web, "allow-all", 0, rule(vnWeb, "any", "any", "pass"))
	before := e.fake.Snapshot()
	r := rule(vnWeb, "any", "any", "pass")
	r["action_list"].(map[string]any)["mirror_to"] = map[string]any{"analyzer_name": "vrsniff-old", "analyzer_ip_address": analyzer, "udp_port": 8099}
	e.fake.Seed("network-policy", map[string]any{"fq_name": []string{"default-domain", "admin", "vrsniff-old"}, "parent_type": "project",
		"annotations": map[string]any{"key_value_pair": []any{
			map[string]any{"key": KeyMirror, "value": "old"}, map[string]any{"key": KeyKind, "value": "policy"},
			map[string]any{"key": KeyTarget, "value": vnWeb}, map[string]any{"key": KeyAnalyzer, "value": "10.10.10.5 udp/8099"}}},
		"network_policy_entries": map[string]any{"policy_rule": []any{r}}})
	e.refAdd(e.web, "vrsniff-old", map[string]any{"sequence": map[string]any{"major": 1, "minor": 0}})
	for _, f := range flows[:1] {
		if v := agent.Evaluate(e.fake, f); len(v.Mirrors) != 0 {
			t.Errorf("the old mirror mirrors %v behind allow-all", v.Mirrors)
		}
	}
	ms, err := e.p.List(ctx, scope)
	if err != nil || len(ms) != 1 {
		t.Fatalf("List = %+v, %v", ms, err)
	}
	m := ms[0]
	if m.Mechanism != MechStatic || m.OK() || !strings.Contains(m.State(), "removed at compile time behind allow-all#0") ||
		!strings.Contains(m.State(), "allow-neutral") {
		t.Errorf("List: %s: %s", m.Mechanism, m.State())
	}
	if _, err := e.p.Delete(ctx, scope, "old"); err != nil {
		t.Fatal(err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}

// A control plane that does not compile the mirror as a dynamic rule in
// time makes create roll back, and say why.
func TestNotCompiledRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  fakeapi.Options
		why   string
		setup func(*env)
	}{
		{"schema-transformer-down", fakeapi.Options{ManualCompile: true}, "schema transformer running", func(e *env) {
			e.attach(e.web, "allow-all", 0, rule(vnWeb, "any", "any", "pass"))
		}},
		// Behind allow-all the rule would be eliminated from the static
		// ACL too: nothing in the dynamic ACL, as with a slow transformer.
		{"timer-ignored-allow-all", fakeapi.Options{IgnoreTimer: true}, "dynamic policies", func(e *env) {
			e.attach(e.web, "allow-all", 0, rule(vnWeb, "any", "any", "pass"))
		}},
		{"timer-ignored", fakeapi.Options{IgnoreTimer: true}, "compiled into the static ACL", func(*env) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			tc.setup(e)
			e.fake.Compile()
			before := e.fake.Snapshot()
			e.p.Wait = 50 * time.Millisecond
			_, err := e.p.Create(context.Background(), policySpec("m"))
			var re *RollbackError
			if !errors.As(err, &re) || !errors.Is(err, ErrNotCompiled) || !strings.Contains(err.Error(), tc.why) || len(re.Left) != 0 {
				t.Fatalf("err = %v, want a rolled back ErrNotCompiled saying %q", err, tc.why)
			}
			e.fake.Compile()
			snapshotEqual(t, before, e.fake.Snapshot())
		})
	}
}

// The service-instance path end to end: template v2, instance, port tuple,
// the sniffer's port linked, the dynamic policy attached; list shows it
// compiled with svc-monitor's address; delete leaves nothing.
func TestServiceInstanceLifecycle(t *testing.T) {
	e := newEnv(t, fakeapi.Options{SvcMonitor: true})
	ctx := context.Background()
	before := e.fake.Snapshot()
	s := Spec{Name: "si1", Kind: KindServiceInstance, VN: vnWeb, AnalyzerVN: vnSniff, SnifferPort: e.sniff}
	if _, err := e.p.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := jsonString(e.policyRule(t, "si1")["action_list"]); got != `{"mirror_to":{"analyzer_name":"default-domain:admin:vrsniff-si1"}}` {
		t.Errorf("action_list = %s", got)
	}
	st := e.fake.Object(e.fake.Lookup("service-template", "default-domain", "vrsniff-si1"))
	if got := jsonString(st["service_template_properties"]); got != `{"interface_type":[{"service_interface_type":"left"}],"service_mode":"transparent","service_type":"analyzer","service_virtualization_type":"virtual-machine","version":2}` {
		t.Errorf("service template = %s", got)
	}
	port := e.fake.Object(e.sniff)
	if got := jsonString(port["virtual_machine_interface_properties"]); got != `{"max_flows":100,"service_interface_type":"left"}` {
		t.Errorf("sniffer port properties = %s", got)
	}
	ms, err := e.p.List(ctx, scope)
	if err != nil || len(ms) != 1 || !ms[0].OK() || ms[0].Kind != KindServiceInstance {
		t.Fatalf("List = %+v, %v", ms, err)
	}
	if !strings.Contains(ms[0].Checks[len(ms[0].Checks)-1].Detail+jsonString(ms[0].Checks), "0.255.255.252") {
		t.Errorf("checks = %+v", ms[0].Checks)
	}
	if r, err := e.p.Create(ctx, s); err != nil || r.Created {
		t.Errorf("second create: %+v, %v", r, err)
	}
	if _, err := e.p.Delete(ctx, scope, "si1"); err != nil {
		t.Fatal(err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}

// Without svc-monitor the instance never gets an address: create waits,
// then rolls everything back.
func TestServiceInstanceUnresolvedRollsBack(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	before := e.fake.Snapshot()
	e.p.Wait = 50 * time.Millisecond
	_, err := e.p.Create(context.Background(), Spec{Name: "si", Kind: KindServiceInstance, VN: vnWeb, AnalyzerVN: vnSniff, SnifferPort: e.sniff})
	var re *RollbackError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "svc-monitor") || len(re.Left) != 0 {
		t.Fatalf("err = %v", err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}
