package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/contrail"
	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi"
)

const (
	password = "s3cret-Pa55word"
	vnWeb    = "default-domain:admin:vn-web"
	vnDB     = "default-domain:admin:vn-db"
	vnSniff  = "default-domain:admin:vn-sniff"
	analyzer = "10.10.10.5" // the sniffer's address on vn-sniff
	inWeb    = "10.1.1.250" // an analyzer on vn-web itself
)

var (
	project = []string{"default-domain", "admin"}
	scope   = [][]string{project}
)

type env struct {
	fake   *fakeapi.Server
	url    string
	p      *Provisioner
	logs   *bytes.Buffer
	web    string // vn-web's uuid
	db     string
	sniffN string
	port0  string // web-1's first port on vn-web: has properties and annotations
	port1  string // web-1's second port on vn-web: has neither
	sniff  string // the sniffer's port on vn-sniff, holding the analyzer address
}

func fq(s string) []string { return strings.Split(s, ":") }

// keystone authenticates as admin at the fake's Keystone.
func keystone(t *testing.T, url, pw string) *contrail.Keystone {
	t.Helper()
	k, err := contrail.NewKeystone(contrail.Credentials{AuthURL: url + "/v3", Username: "admin",
		Password: contrail.Secret(pw), ProjectName: "admin"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newEnv is a fresh server with project default-domain:admin, three
// networks with subnets (vn-web 10.1.1.0/24, vn-db 10.2.2.0/24, vn-sniff
// 10.10.10.0/24), a VM with two ports on vn-web and the sniffer's port on
// vn-sniff.
func newEnv(t *testing.T, opts fakeapi.Options) *env {
	t.Helper()
	opts.Keystone, opts.Username, opts.Password, opts.Project = true, "admin", password, "admin"
	f := fakeapi.New(opts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	e := &env{fake: f, url: srv.URL, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	api, err := contrail.New(contrail.Config{Endpoint: srv.URL, Auth: keystone(t, srv.URL, password),
		Retries: 2, Backoff: time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.p = &Provisioner{API: api, Log: log, Wait: 2 * time.Second, Poll: time.Millisecond}

	if f.Lookup("project", project...) == "" {
		f.Seed("project", map[string]any{"fq_name": project, "parent_type": "domain"})
	}
	f.Seed("network-ipam", map[string]any{"fq_name": []string{"default-domain", "admin", "ipam"}, "parent_type": "project"})
	// The schema transformer makes the service chains' IPAM when it
	// starts; svc-monitor takes the instances' shared IPs from it.
	f.Seed("network-ipam", map[string]any{"fq_name": []string{"default-domain", "default-project", "service-chain-flat-ipam"},
		"parent_type": "project", "ipam_subnet_method": "flat-subnet"})
	vn := func(name, prefix string) string {
		return f.Seed("virtual-network", map[string]any{"fq_name": fq(name), "parent_type": "project",
			"network_ipam_refs": []any{map[string]any{"to": []string{"default-domain", "admin", "ipam"},
				"attr": map[string]any{"ipam_subnets": []any{map[string]any{"subnet": map[string]any{"ip_prefix": prefix, "ip_prefix_len": 24}}}}}}})
	}
	e.web, e.db, e.sniffN = vn(vnWeb, "10.1.1.0"), vn(vnDB, "10.2.2.0"), vn(vnSniff, "10.10.10.0")
	vm := f.Seed("virtual-machine", map[string]any{"fq_name": []string{"3f0e4f5a-1111-4111-8111-000000000001"}, "display_name": "web-1"})
	e.port0 = f.Seed("virtual-machine-interface", map[string]any{"fq_name": []string{"default-domain", "admin", "port-web-1-a"}, "parent_type": "project",
		"virtual_machine_interface_properties": map[string]any{"local_preference": 100, "max_flows": 5000, "sub_interface_vlan_tag": 7},
		"annotations":                          map[string]any{"key_value_pair": []any{map[string]any{"key": "owner", "value": "ops"}}},
		"virtual_network_refs":                 []any{map[string]any{"to": fq(vnWeb)}},
		"virtual_machine_refs":                 []any{map[string]any{"uuid": vm}}})
	e.port1 = f.Seed("virtual-machine-interface", map[string]any{"fq_name": []string{"default-domain", "admin", "port-web-1-b"}, "parent_type": "project",
		"virtual_network_refs": []any{map[string]any{"to": fq(vnWeb)}},
		"virtual_machine_refs": []any{map[string]any{"uuid": vm}}})
	e.sniff = f.Seed("virtual-machine-interface", map[string]any{"fq_name": []string{"default-domain", "admin", "port-sniffer"}, "parent_type": "project",
		"virtual_machine_interface_properties": map[string]any{"max_flows": 100},
		"virtual_network_refs":                 []any{map[string]any{"to": fq(vnSniff)}}})
	e.iip("iip-sniffer", e.sniff, analyzer)
	return e
}

// iip gives port an instance IP.
func (e *env) iip(name, port, addr string) string {
	return e.fake.Seed("instance-ip", map[string]any{"fq_name": []string{name}, "instance_ip_address": addr,
		"virtual_machine_interface_refs": []any{map[string]any{"uuid": port}}})
}

// rule is a policy rule in the API's JSON shape.
func rule(src, dst, proto, action string) map[string]any {
	r := map[string]any{"direction": "<>", "protocol": proto,
		"src_addresses": []any{map[string]any{"virtual_network": src}}, "src_ports": []any{map[string]any{"start_port": -1, "end_port": -1}},
		"dst_addresses": []any{map[string]any{"virtual_network": dst}}, "dst_ports": []any{map[string]any{"start_port": -1, "end_port": -1}},
		"action_list": map[string]any{"simple_action": action}}
	return r
}

// attach creates a policy with rules and attaches it to the network vn at
// sequence major (statically, as tenants do).
func (e *env) attach(vn, name string, major int, rules ...map[string]any) string {
	var l []any
	for _, r := range rules {
		l = append(l, r)
	}
	id := e.fake.Seed("network-policy", map[string]any{"fq_name": []string{"default-domain", "admin", name}, "parent_type": "project",
		"network_policy_entries": map[string]any{"policy_rule": l}})
	e.refAdd(vn, name, map[string]any{"sequence": map[string]any{"major": major, "minor": 0}})
	return id
}

func (e *env) refAdd(vn, policy string, attr map[string]any) {
	err := e.p.API.UpdateRef(context.Background(), contrail.RefUpdate{Operation: contrail.RefAdd, Type: "virtual-network", UUID: vn,
		RefType: "network-policy", RefFQName: []string{"default-domain", "admin", policy}, Attr: attr})
	if err != nil {
		panic(err)
	}
}

// update sends a partial update to the fake.
func (e *env) update(typ, id string, fields map[string]any) {
	if err := e.p.API.Update(context.Background(), typ, id, fields); err != nil {
		panic(err)
	}
}

// snapshotEqual fails with the objects that differ between two snapshots.
func snapshotEqual(t *testing.T, before, after map[string]any) {
	t.Helper()
	for id, b := range before {
		if a, ok := after[id]; !ok {
			t.Errorf("gone: %s", jsonString(b))
		} else if !reflect.DeepEqual(a, b) {
			t.Errorf("changed:\nbefore: %s\nafter:  %s", jsonString(b), jsonString(a))
		}
	}
	for id, a := range after {
		if _, ok := before[id]; !ok {
			t.Errorf("new: %s", jsonString(a))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func policySpec(name string) Spec {
	return Spec{Name: name, Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: inWeb}}
}

// policyRule returns the rule of the policy created for name.
func (e *env) policyRule(t *testing.T, name string) map[string]any {
	t.Helper()
	id := e.fake.Lookup("network-policy", "default-domain", "admin", Prefix+name)
	if id == "" {
		t.Fatalf("policy for %s not created", name)
	}
	rules := e.fake.Object(id)["network_policy_entries"].(map[string]any)["policy_rule"].([]any)
	if len(rules) != 1 {
		t.Fatalf("want one rule, got %d", len(rules))
	}
	return rules[0].(map[string]any)
}

// refs lists the network's policy references as name@major, with "+timer"
// for dynamic ones.
func (e *env) refs(t *testing.T, vn string) []string {
	t.Helper()
	var names []string
	refs, _ := e.fake.Object(vn)["network_policy_refs"].([]any)
	for _, r := range refs {
		m := r.(map[string]any)
		to := m["to"].([]any)
		attr := m["attr"].(map[string]any)
		n := to[2].(string) + "@" + jsonString(attr["sequence"].(map[string]any)["major"])
		if _, ok := attr["timer"]; ok {
			n += "+timer"
		}
		names = append(names, n)
	}
	return names
}

func jsonString(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSpace(b.String())
}

func checks(m Mirror) map[string]bool {
	out := map[string]bool{}
	for _, c := range m.Checks {
		out[c.Name] = c.OK
	}
	return out
}

func TestPolicyMirrorLifecycle(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	e.attach(e.web, "allow-all", 0, rule(vnWeb, "any", "any", "pass"))
	before := e.fake.Snapshot()

	res, err := e.p.Create(ctx, policySpec("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Mirror.Mechanism != MechDynamic || len(res.Warnings) != 0 {
		t.Errorf("first create: %+v", res)
	}
	r := e.policyRule(t, "m1")
	al := r["action_list"].(map[string]any)
	if _, ok := al["simple_action"]; ok {
		t.Errorf("the mirror rule has a simple_action: %v", al)
	}
	want := `{"analyzer_ip_address":"10.1.1.250","analyzer_name":"default-domain:admin:vrsniff-m1","udp_port":8099}`
	if got := jsonString(al["mirror_to"]); got != want {
		t.Errorf("mirror_to = %s, want %s (unset fields omitted, a cluster-wide name)", got, want)
	}
	if got, want := e.refs(t, e.web), []string{"allow-all@0", "vrsniff-m1@1+timer"}; !reflect.DeepEqual(got, want) {
		t.Errorf("VN policies = %v, want %v", got, want)
	}

	n := e.fake.Count("network-policy")
	res, err = e.p.Create(ctx, policySpec("m1"))
	if err != nil || res.Created {
		t.Fatalf("second create: %+v, %v", res, err)
	}
	if e.fake.Count("network-policy") != n || len(e.refs(t, e.web)) != 2 {
		t.Error("second create made a second mirror")
	}
	other := policySpec("m1")
	other.Analyzer.IP = "10.1.1.251"
	if _, err := e.p.Create(ctx, other); !errors.Is(err, ErrConflict) {
		t.Errorf("same name, other analyzer: err = %v, want ErrConflict", err)
	}

	ms, err := e.p.List(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Name != "m1" || ms[0].Kind != KindPolicy || ms[0].Target != vnWeb || ms[0].Mechanism != MechDynamic ||
		ms[0].Analyzer != "10.1.1.250 udp/8099" || !ms[0].OK() {
		t.Fatalf("List = %+v", ms)
	}
	if c := checks(ms[0]); !c["compiled"] || !c["allow-neutral"] || !c["analyzer"] || !c["unique-name"] {
		t.Errorf("checks = %+v", ms[0].Checks)
	}
	if notes, err := e.p.Delete(ctx, scope, "m1"); err != nil || len(notes) != 0 {
		t.Fatal(notes, err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
	if _, err := e.p.Delete(ctx, scope, "m1"); !errors.Is(err, ErrNoMirror) {
		t.Errorf("delete again: err = %v, want ErrNoMirror", err)
	}
}

func TestPolicyMirrorMatch(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	s := policySpec("vx")
	s.Match = Match{Protocol: "TCP", Direction: ">", SrcCIDR: "10.1.1.7/24", DstPorts: "80-90", OtherVN: vnDB}
	s.Analyzer = Analyzer{NHMode: "static", VTEP: "172.16.0.9", VNI: 5000}
	if _, err := e.p.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	got := jsonString(e.policyRule(t, "vx"))
	for _, w := range []string{`"direction":">"`, `"protocol":"tcp"`, `"ethertype":"IPv4"`,
		// The network stays next to the subnet, or the rule compiles to nothing.
		`"src_addresses":[{"subnet":{"ip_prefix":"10.1.1.0","ip_prefix_len":24},"virtual_network":"` + vnWeb + `"}]`,
		`"dst_ports":[{"end_port":90,"start_port":80}]`, `"dst_addresses":[{"virtual_network":"` + vnDB + `"}]`,
		`"juniper_header":false`, `"nh_mode":"static"`,
		`"static_nh_header":{"vni":5000,"vtep_dst_ip_address":"172.16.0.9"}`, `"analyzer_ip_address":"172.16.0.9"`} {
		if !strings.Contains(got, w) {
			t.Errorf("rule lacks %s:\n%s", w, got)
		}
	}
}

func TestPortMirrorKeepsOtherProperties(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	before := e.fake.Snapshot()
	s := Spec{Name: "p1", Kind: KindPort, Port: e.port0, TrafficDirection: "ingress",
		Analyzer: Analyzer{IP: analyzer, UDPPort: 9000, JuniperHeader: ptr(true)}}
	if _, err := e.p.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	o := e.fake.Object(e.port0)
	props := o["virtual_machine_interface_properties"].(map[string]any)
	for k, want := range map[string]float64{"local_preference": 100, "max_flows": 5000, "sub_interface_vlan_tag": 7} {
		if props[k] != want {
			t.Errorf("%s = %v after create, want %v", k, props[k], want)
		}
	}
	im := jsonString(props["interface_mirror"])
	if want := `{"mirror_to":{"analyzer_ip_address":"10.10.10.5","analyzer_name":"default-domain:admin:vrsniff-p1","juniper_header":true,"udp_port":9000},"traffic_direction":"ingress"}`; im != want {
		t.Errorf("interface_mirror = %s\nwant %s", im, want)
	}
	if !strings.Contains(jsonString(o["annotations"]), `{"key":"owner","value":"ops"}`) {
		t.Error("existing annotation lost")
	}
	if r, err := e.p.Create(ctx, s); err != nil || r.Created {
		t.Errorf("second create: %+v, %v", r, err)
	}
	ms, err := e.p.List(ctx, scope)
	if err != nil || len(ms) != 1 || ms[0].Kind != KindPort || ms[0].Mechanism != MechPort || !ms[0].OK() {
		t.Fatalf("List = %+v, %v", ms, err)
	}
	if _, err := e.p.Delete(ctx, scope, "p1"); err != nil {
		t.Fatal(err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}

// A port without annotations gets the marker, and loses it again on
// delete with an empty list: the real server answers "annotations": null
// with a 500 and leaves the port mirroring.
func TestPortMirrorByVMName(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	s := Spec{Name: "vm", Kind: KindPort, VM: "web-1", Interface: 1, Analyzer: Analyzer{IP: analyzer}}
	if _, err := e.p.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	props, _ := e.fake.Object(e.port1)["virtual_machine_interface_properties"].(map[string]any)
	if props["interface_mirror"] == nil {
		t.Fatal("interface 1 (the second port) not mirrored")
	}
	if _, err := e.p.Delete(ctx, scope, "vm"); err != nil {
		t.Fatal(err)
	}
	o := e.fake.Object(e.port1)
	if o["virtual_machine_interface_properties"] != nil {
		t.Errorf("properties after delete: %v", o["virtual_machine_interface_properties"])
	}
	if a, ok := o["annotations"]; ok && jsonString(a) != `{"key_value_pair":[]}` {
		t.Errorf("annotations after delete: %s", jsonString(a))
	}
	s.Interface = 2
	if _, err := e.p.Create(ctx, s); err == nil || !strings.Contains(err.Error(), "has 2 ports") {
		t.Errorf("interface 2: err = %v", err)
	}
}

func TestPortRefusals(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	if _, err := e.p.Create(ctx, Spec{Name: "a", Kind: KindPort, Port: e.port0, Analyzer: Analyzer{IP: "10.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Create(ctx, Spec{Name: "b", Kind: KindPort, Port: e.port0, Analyzer: Analyzer{IP: "10.0.0.2"}}); !errors.Is(err, ErrConflict) {
		t.Errorf("second mirror on the same port: err = %v, want ErrConflict", err)
	}
	before := e.fake.Snapshot()
	if _, err := e.p.Create(ctx, Spec{Name: "own", Kind: KindPort, Port: e.sniff, Analyzer: Analyzer{IP: analyzer}}); !errors.Is(err, ErrUnsafe) {
		t.Errorf("the analyzer's own port: err = %v, want ErrUnsafe", err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}

// analyzer_name is a cluster-wide key: a name another mirror uses with
// another destination is refused.
func TestAnalyzerNameTaken(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	other := rule(vnDB, "any", "any", "")
	other["action_list"] = map[string]any{"mirror_to": map[string]any{"analyzer_name": "default-domain:admin:vrsniff-x", "analyzer_ip_address": "10.2.2.9"}}
	e.attach(e.db, "hand-made", 0, other)
	before := e.fake.Snapshot()
	_, err := e.p.Create(context.Background(), policySpec("x"))
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "hand-made") {
		t.Errorf("err = %v, want ErrConflict naming the other user", err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}

func TestPerPort(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	own := e.fake.Seed("virtual-machine-interface", map[string]any{"fq_name": []string{"default-domain", "admin", "port-own"}, "parent_type": "project",
		"virtual_network_refs": []any{map[string]any{"to": fq(vnWeb)}}})
	e.iip("iip-own", own, "10.1.1.99")
	before := e.fake.Snapshot()
	s := Spec{Name: "pp", Kind: KindPerPort, VN: vnWeb, TrafficDirection: "egress", Analyzer: Analyzer{IP: "10.1.1.99"}}
	res, err := e.p.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "analyzer's own") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	for _, port := range []string{e.port0, e.port1} {
		props, _ := e.fake.Object(port)["virtual_machine_interface_properties"].(map[string]any)
		if got := jsonString(props["interface_mirror"]); !strings.Contains(got, `"traffic_direction":"egress"`) {
			t.Errorf("port %s: interface_mirror = %s", port, got)
		}
	}
	if props, _ := e.fake.Object(own)["virtual_machine_interface_properties"].(map[string]any); props["interface_mirror"] != nil {
		t.Error("the analyzer's own port is mirrored")
	}
	// A port created afterwards is reported as not covered.
	late := e.fake.Seed("virtual-machine-interface", map[string]any{"fq_name": []string{"default-domain", "admin", "port-late"}, "parent_type": "project",
		"virtual_network_refs": []any{map[string]any{"to": fq(vnWeb)}}})
	ms, err := e.p.List(ctx, scope)
	if err != nil || len(ms) != 1 {
		t.Fatalf("List = %+v, %v", ms, err)
	}
	// The analyzer's own port, skipped on purpose, is no gap.
	if c := checks(ms[0]); c["coverage"] || !strings.Contains(ms[0].State(), "1 of 4 ports") || !strings.Contains(ms[0].State(), late) {
		t.Errorf("coverage = %s", ms[0].State())
	}
	if _, err := e.p.Delete(ctx, scope, "pp"); err != nil {
		t.Fatal(err)
	}
	if err := e.p.API.Delete(ctx, "virtual-machine-interface", late); err != nil {
		t.Fatal(err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}

func TestSpecCheck(t *testing.T) {
	for _, s := range []Spec{
		{Name: "", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1"}},
		{Name: "x y", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1"}},
		{Name: "x", Kind: KindPolicy, VN: "vn", Analyzer: Analyzer{IP: "10.0.0.1"}},
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.300"}},
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1", NHMode: "static"}},
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1", NHMode: "static", VTEP: "10.0.0.2", VNI: 5, JuniperHeader: ptr(true)}},
		// The vRouter resolves static next hops in the fabric's IPv4 table.
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{NHMode: "static", VTEP: "2001:db8::9", VNI: 5}},
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{NHMode: "static", VTEP: "10.0.0.9", VNI: 1 << 24}},
		// Header-less with a dynamic next hop needs the MAC and network.
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1", JuniperHeader: ptr(false)}},
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1", JuniperHeader: ptr(false), MAC: "02:00:00:00:00:01"}},
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1", NICVLAN: 5000}},
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1"}, Match: Match{Protocol: "sctp"}},
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1"}, Match: Match{DstPorts: "90-80"}},
		// An IPv6 protocol with an IPv4 subnet: the real server answers 400.
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1"}, Match: Match{Protocol: "icmp6", SrcCIDR: "10.1.1.0/24"}},
		{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1"}, Match: Match{Protocol: "icmp", DstCIDR: "2001:db8::/64"}},
		{Name: "x", Kind: KindPort, Analyzer: Analyzer{IP: "10.0.0.1"}},
		{Name: "x", Kind: KindPort, Port: "u", TrafficDirection: "up", Analyzer: Analyzer{IP: "10.0.0.1"}},
		{Name: "x", Kind: KindPerPort, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1"}, Match: Match{Protocol: "tcp"}},
		// A new service instance needs the sniffer's port: it never
		// resolves without one.
		{Name: "x", Kind: KindServiceInstance, VN: vnWeb},
		{Name: "x", Kind: KindServiceInstance, VN: vnWeb, SnifferPort: "p", Analyzer: Analyzer{IP: "10.0.0.1"}},
	} {
		if err := s.Check(); err == nil {
			t.Errorf("Check(%+v) = nil, want an error", s)
		}
	}
	s := Spec{Name: "x", Kind: KindPolicy, VN: vnWeb, Analyzer: Analyzer{IP: "10.0.0.1"}, Match: Match{Protocol: "icmp6"}}
	if err := s.Check(); err != nil || s.rule().Ethertype != "IPv6" {
		t.Errorf("icmp6: %v, ethertype %q", err, s.rule().Ethertype)
	}
	s = Spec{Name: "x", Kind: KindPolicy, VN: vnWeb, AnalyzerVN: vnSniff,
		Analyzer: Analyzer{IP: "10.10.10.5", JuniperHeader: ptr(false), MAC: "02:00:00:00:00:01"}}
	if err := s.Check(); err != nil || s.mirrorTo().RoutingInstance != vnSniff+":vn-sniff" {
		t.Errorf("header-less: %v, routing_instance %q", err, s.mirrorTo().RoutingInstance)
	}
}

// A create whose answer is lost (the server created the object, then the
// gateway timed out) is retried; the retry's 409 must not fail the mirror.
func TestRetriedCreateAdoptsItsObject(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		e.fake.ServeHTTP(rec, r)
		if r.Method == "POST" && r.URL.Path == "/network-policys" && rec.Code == 200 {
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	defer proxy.Close()
	api, err := contrail.New(contrail.Config{Endpoint: proxy.URL, Retries: 2, Backoff: time.Millisecond, Auth: keystone(t, proxy.URL, password)})
	if err != nil {
		t.Fatal(err)
	}
	p := &Provisioner{API: api, Poll: time.Millisecond}
	if _, err := p.Create(context.Background(), policySpec("lost")); err != nil {
		t.Fatal(err)
	}
	if got := e.refs(t, e.web); len(got) != 1 {
		t.Errorf("VN policies = %v", got)
	}
}

// An analyzer in no subnet of the network or of one its policies connect
// gets no route from the network: create warns, list says so.
func TestUnroutableAnalyzerWarns(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	s := policySpec("far")
	s.Analyzer.IP = analyzer
	res, err := e.p.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "10.10.10.5 is in no subnet of "+vnWeb) {
		t.Errorf("warnings = %q", res.Warnings)
	}
	ms, err := e.p.List(ctx, scope)
	if err != nil || len(ms) != 1 || checks(ms[0])["analyzer"] || !checks(ms[0])["compiled"] {
		t.Fatalf("List = %+v, %v", ms, err)
	}
	// A policy connecting vn-web and vn-sniff makes it routable.
	e.attach(e.web, "web-sniff", 0, rule(vnWeb, vnSniff, "any", "pass"))
	if ms, err = e.p.List(ctx, scope); err != nil || !checks(ms[0])["analyzer"] {
		t.Errorf("List = %+v, %v", ms, err)
	}
}
