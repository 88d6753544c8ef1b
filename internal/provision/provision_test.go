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
	vnTarget = "default-domain:admin:vn-target"
	vnSniff  = "default-domain:admin:vn-sniff"
)

var project = []string{"default-domain", "admin"}

type env struct {
	fake   *fakeapi.Server
	p      *Provisioner
	logs   *bytes.Buffer
	port0  string // web-1's first port: has properties and annotations
	port1  string // web-1's second port: has neither
	sniff  string // the sniffer's port on vn-sniff
	polA   string
	polB   string
	vnUUID string
}

func keystone(t *testing.T, c contrail.Credentials) *contrail.Keystone {
	t.Helper()
	k, err := contrail.NewKeystone(c, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEnv(t *testing.T, opts fakeapi.Options) *env {
	t.Helper()
	opts.Keystone, opts.Username, opts.Password, opts.Project = true, "admin", password, "admin"
	f := fakeapi.New(opts)
	f.Seed("project", map[string]any{"fq_name": []string{"default-domain", "admin"}, "parent_type": "domain"}) // not in a fresh installation
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	e := &env{fake: f, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	api, err := contrail.New(contrail.Config{
		Endpoint: srv.URL,
		Auth: keystone(t, contrail.Credentials{AuthURL: srv.URL + "/v3", Username: "admin",
			Password: password, ProjectName: "admin", UserDomainName: "Default", ProjectDomainName: "Default"}),
		Retries: 2, Backoff: time.Millisecond, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.p = &Provisioner{API: api, Log: log}

	rule := func(vn string) map[string]any {
		return map[string]any{"policy_rule": []any{map[string]any{
			"direction": "<>", "protocol": "any",
			"src_addresses": []any{map[string]any{"virtual_network": vn}}, "src_ports": []any{map[string]any{"start_port": -1, "end_port": -1}},
			"dst_addresses": []any{map[string]any{"virtual_network": "any"}}, "dst_ports": []any{map[string]any{"start_port": -1, "end_port": -1}},
			"action_list": map[string]any{"simple_action": "pass"}}}}
	}
	e.polA = f.Seed("network-policy", map[string]any{"fq_name": []string{"default-domain", "admin", "pol-a"}, "parent_type": "project",
		"network_policy_entries": rule(vnTarget)})
	e.polB = f.Seed("network-policy", map[string]any{"fq_name": []string{"default-domain", "admin", "pol-b"}, "parent_type": "project",
		"network_policy_entries": rule(vnTarget)})
	seq := func(major int) map[string]any {
		return map[string]any{"sequence": map[string]any{"major": major, "minor": 0}}
	}
	e.vnUUID = f.Seed("virtual-network", map[string]any{"fq_name": strings.Split(vnTarget, ":"), "parent_type": "project",
		"network_policy_refs": []any{
			map[string]any{"to": []string{"default-domain", "admin", "pol-a"}, "attr": seq(0)},
			map[string]any{"to": []string{"default-domain", "admin", "pol-b"}, "attr": seq(1)},
		}})
	f.Seed("virtual-network", map[string]any{"fq_name": strings.Split(vnSniff, ":"), "parent_type": "project"})
	vm := f.Seed("virtual-machine", map[string]any{"fq_name": []string{"3f0e4f5a-1111-4111-8111-000000000001"}, "display_name": "web-1"})
	e.port0 = f.Seed("virtual-machine-interface", map[string]any{"fq_name": []string{"default-domain", "admin", "port-web-1-a"}, "parent_type": "project",
		"virtual_machine_interface_properties": map[string]any{"local_preference": 100, "max_flows": 5000, "sub_interface_vlan_tag": 7},
		"annotations":                          map[string]any{"key_value_pair": []any{map[string]any{"key": "owner", "value": "ops"}}},
		"virtual_network_refs":                 []any{map[string]any{"to": strings.Split(vnTarget, ":")}},
		"virtual_machine_refs":                 []any{map[string]any{"uuid": vm}}})
	e.port1 = f.Seed("virtual-machine-interface", map[string]any{"fq_name": []string{"default-domain", "admin", "port-web-1-b"}, "parent_type": "project",
		"virtual_network_refs": []any{map[string]any{"to": strings.Split(vnTarget, ":")}},
		"virtual_machine_refs": []any{map[string]any{"uuid": vm}}})
	e.sniff = f.Seed("virtual-machine-interface", map[string]any{"fq_name": []string{"default-domain", "admin", "port-sniffer"}, "parent_type": "project",
		"virtual_machine_interface_properties": map[string]any{"max_flows": 100},
		"virtual_network_refs":                 []any{map[string]any{"to": strings.Split(vnSniff, ":")}}})
	return e
}

func snapshotEqual(t *testing.T, before, after map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		b, _ := json.MarshalIndent(before, "", " ")
		a, _ := json.MarshalIndent(after, "", " ")
		t.Fatalf("server state differs from before\nbefore: %s\nafter:  %s", b, a)
	}
}

func policySpec(name string) Spec {
	return Spec{Name: name, Kind: KindPolicy, VN: vnTarget, Analyzer: Analyzer{IP: "10.10.10.5"}}
}

// mirrorTo returns the mirror_to of the policy created for name.
func (e *env) policyMirrorTo(t *testing.T, name string) map[string]any {
	t.Helper()
	id := e.fake.Lookup("network-policy", "default-domain", "admin", Prefix+name)
	if id == "" {
		t.Fatalf("policy for %s not created", name)
	}
	o := e.fake.Object(id)
	rules := o["network_policy_entries"].(map[string]any)["policy_rule"].([]any)
	if len(rules) != 1 {
		t.Fatalf("want one rule, got %d", len(rules))
	}
	al := rules[0].(map[string]any)["action_list"].(map[string]any)
	if al["simple_action"] != "pass" {
		t.Errorf("simple_action = %v, want pass", al["simple_action"])
	}
	return al["mirror_to"].(map[string]any)
}

func (e *env) vnPolicyOrder(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, r := range e.fake.Object(e.vnUUID)["network_policy_refs"].([]any) {
		m := r.(map[string]any)
		to := m["to"].([]any)
		seq := m["attr"].(map[string]any)["sequence"].(map[string]any)
		names = append(names, to[2].(string)+"@"+jsonString(seq["major"]))
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

func TestPolicyMirrorLifecycle(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	before := e.fake.Snapshot()

	res, err := e.p.Create(ctx, policySpec("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created {
		t.Error("first create: Created = false")
	}
	mt := e.policyMirrorTo(t, "m1")
	want := map[string]any{"analyzer_name": "vrsniff-m1", "analyzer_ip_address": "10.10.10.5", "udp_port": float64(8099)}
	if !reflect.DeepEqual(mt, want) {
		t.Errorf("mirror_to = %v, want %v (unset fields omitted)", mt, want)
	}
	if got, want := e.vnPolicyOrder(t), []string{"pol-a@0", "pol-b@1", "vrsniff-m1@2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("VN policies = %v, want %v", got, want)
	}

	n := e.fake.Count("network-policy")
	res, err = e.p.Create(ctx, policySpec("m1"))
	if err != nil {
		t.Fatalf("second create: %v", err)
	}
	if res.Created {
		t.Error("second create: Created = true")
	}
	if e.fake.Count("network-policy") != n || len(e.vnPolicyOrder(t)) != 3 {
		t.Error("second create made a second mirror")
	}

	other := policySpec("m1")
	other.Analyzer.IP = "10.10.10.6"
	if _, err := e.p.Create(ctx, other); !errors.Is(err, ErrConflict) {
		t.Errorf("same name, other analyzer: err = %v, want ErrConflict", err)
	}

	ms, err := e.p.List(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Name != "m1" || ms[0].Kind != KindPolicy || ms[0].Target != vnTarget ||
		ms[0].Analyzer != "10.10.10.5 udp/8099" || ms[0].State != "active" {
		t.Errorf("List = %+v", ms)
	}

	if err := e.p.Delete(ctx, project, "m1"); err != nil {
		t.Fatal(err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
	if err := e.p.Delete(ctx, project, "m1"); !errors.Is(err, ErrNoMirror) {
		t.Errorf("delete again: err = %v, want ErrNoMirror", err)
	}
}

func TestPolicyMirrorMatchAndVXLAN(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	s := policySpec("vx")
	s.Match = Match{Protocol: "TCP", Direction: ">", SrcCIDR: "192.168.1.7/24", DstPorts: "80-90", OtherVN: vnSniff}
	s.Analyzer = Analyzer{NHMode: "static", VTEP: "172.16.0.9", VNI: 5000}
	if _, err := e.p.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	id := e.fake.Lookup("network-policy", "default-domain", "admin", "vrsniff-vx")
	r := e.fake.Object(id)["network_policy_entries"].(map[string]any)["policy_rule"].([]any)[0].(map[string]any)
	got := jsonString(r)
	for _, w := range []string{`"direction":">"`, `"protocol":"tcp"`, `"ethertype":"IPv4"`,
		`"subnet":{"ip_prefix":"192.168.1.0","ip_prefix_len":24}`, `"dst_ports":[{"end_port":90,"start_port":80}]`,
		`"virtual_network":"` + vnSniff + `"`, `"juniper_header":false`, `"nh_mode":"static"`,
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
		Analyzer: Analyzer{IP: "10.10.10.5", UDPPort: 9000, JuniperHeader: ptr(true)}}
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
	if want := `{"mirror_to":{"analyzer_ip_address":"10.10.10.5","analyzer_name":"vrsniff-p1","juniper_header":true,"udp_port":9000},"traffic_direction":"ingress"}`; im != want {
		t.Errorf("interface_mirror = %s\nwant %s", im, want)
	}
	if !strings.Contains(jsonString(o["annotations"]), `{"key":"owner","value":"ops"}`) {
		t.Error("existing annotation lost")
	}
	if r, err := e.p.Create(ctx, s); err != nil || r.Created {
		t.Errorf("second create: %+v, %v", r, err)
	}
	ms, err := e.p.List(ctx, project)
	if err != nil || len(ms) != 1 || ms[0].Kind != KindPort || ms[0].State != "active" {
		t.Fatalf("List = %+v, %v", ms, err)
	}
	if err := e.p.Delete(ctx, project, "p1"); err != nil {
		t.Fatal(err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}

func TestPortMirrorByVMName(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	before := e.fake.Snapshot()
	s := Spec{Name: "vm", Kind: KindPort, VM: "web-1", Interface: 1, Analyzer: Analyzer{IP: "10.10.10.5"}}
	if _, err := e.p.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	props, _ := e.fake.Object(e.port1)["virtual_machine_interface_properties"].(map[string]any)
	if props["interface_mirror"] == nil {
		t.Fatal("interface 1 (the second port) not mirrored")
	}
	if err := e.p.Delete(ctx, project, "vm"); err != nil {
		t.Fatal(err)
	}
	// The port had no properties and no annotations: both are gone again.
	snapshotEqual(t, before, e.fake.Snapshot())

	s.Interface = 2
	if _, err := e.p.Create(ctx, s); err == nil || !strings.Contains(err.Error(), "has 2 ports") {
		t.Errorf("interface 2: err = %v", err)
	}
}

func TestPortAlreadyMirroredIsRefused(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	if _, err := e.p.Create(ctx, Spec{Name: "a", Kind: KindPort, Port: e.port0, Analyzer: Analyzer{IP: "10.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Create(ctx, Spec{Name: "b", Kind: KindPort, Port: e.port0, Analyzer: Analyzer{IP: "10.0.0.2"}}); !errors.Is(err, ErrConflict) {
		t.Errorf("second mirror on the same port: err = %v, want ErrConflict", err)
	}
}

func siSpec(name string) Spec {
	return Spec{Name: name, Kind: KindServiceInstance, VN: vnTarget, AnalyzerVN: vnSniff}
}

func TestServiceInstanceLifecycle(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	before := e.fake.Snapshot()
	s := siSpec("si1")
	s.SnifferPort = e.sniff
	if _, err := e.p.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := jsonString(e.policyMirrorTo(t, "si1")); got != `{"analyzer_name":"default-domain:admin:vrsniff-si1"}` {
		t.Errorf("mirror_to = %s", got)
	}
	st := e.fake.Object(e.fake.Lookup("service-template", "default-domain", "vrsniff-si1"))
	if got := jsonString(st["service_template_properties"]); got != `{"interface_type":[{"service_interface_type":"left"}],"service_mode":"transparent","service_type":"analyzer","service_virtualization_type":"virtual-machine","version":2}` {
		t.Errorf("service template = %s", got)
	}
	port := e.fake.Object(e.sniff)
	if got := jsonString(port["virtual_machine_interface_properties"]); got != `{"max_flows":100,"service_interface_type":"left"}` {
		t.Errorf("sniffer port properties = %s", got)
	}
	if port["port_tuple_refs"] == nil {
		t.Error("sniffer port not linked to the port tuple")
	}
	ms, err := e.p.List(ctx, project)
	if err != nil || len(ms) != 1 || ms[0].State != "active" || ms[0].Kind != KindServiceInstance {
		t.Fatalf("List = %+v, %v", ms, err)
	}
	if r, err := e.p.Create(ctx, s); err != nil || r.Created {
		t.Errorf("second create: %+v, %v", r, err)
	}
	if err := e.p.Delete(ctx, project, "si1"); err != nil {
		t.Fatal(err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}

func TestFailureRollsBack(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		sniffer      bool // link the sniffer port (its ref-update comes first)
		undone       int
	}{
		{"POST", "/port-tuples", true, 2},
		{"POST", "/network-policys", true, 5},
		{"POST", "/ref-update", true, 4},
		{"POST", "/ref-update", false, 4},
		{"PUT", "/virtual-machine-interface/", true, 3},
	} {
		t.Run(tc.path, func(t *testing.T) {
			e := newEnv(t, fakeapi.Options{})
			before := e.fake.Snapshot()
			e.fake.FailWhen(func(method, path string) int {
				if method == tc.method && strings.HasPrefix(path, tc.path) {
					return http.StatusServiceUnavailable
				}
				return 0
			})
			s := siSpec("rb")
			if tc.sniffer {
				s.SnifferPort = e.sniff
			}
			_, err := e.p.Create(context.Background(), s)
			var re *RollbackError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RollbackError", err)
			}
			if len(re.Left) != 0 || len(re.RolledBack) != tc.undone {
				t.Errorf("rolled back %q, left %q; want %d undone", re.RolledBack, re.Left, tc.undone)
			}
			if !strings.Contains(err.Error(), "503") {
				t.Errorf("error does not say what failed: %v", err)
			}
			e.fake.FailWhen(nil)
			snapshotEqual(t, before, e.fake.Snapshot())
		})
	}
}

func TestOldServerRejectsNewFieldsAndRollsBack(t *testing.T) {
	e := newEnv(t, fakeapi.Options{Version: "3.0"})
	ctx := context.Background()
	before := e.fake.Snapshot()
	// The defaults send only fields a 3.0 server knows.
	if _, err := e.p.Create(ctx, policySpec("old")); err != nil {
		t.Fatalf("3.0 server: %v", err)
	}
	if err := e.p.Delete(ctx, project, "old"); err != nil {
		t.Fatal(err)
	}
	s := policySpec("new")
	s.Analyzer.JuniperHeader = ptr(false)
	_, err := e.p.Create(ctx, s)
	if !errors.Is(err, contrail.ErrBadRequest) || !strings.Contains(err.Error(), "juniper_header") {
		t.Errorf("juniper_header on 3.0: err = %v", err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}

func TestTokenExpiryReauthenticates(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	if _, err := e.p.Create(ctx, policySpec("t")); err != nil {
		t.Fatal(err)
	}
	e.fake.ExpireTokens()
	if _, err := e.p.List(ctx, project); err != nil {
		t.Fatalf("list after expiry: %v", err)
	}
	if err := e.p.Delete(ctx, project, "t"); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d, want 2 (one reuse run, one re-auth)", n)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	if _, err := e.p.Create(ctx, policySpec("s")); err != nil {
		t.Fatal(err)
	}
	e.fake.ExpireTokens()
	if err := e.p.Delete(ctx, project, "s"); err != nil {
		t.Fatal(err)
	}
	tokens := e.fake.Tokens()
	if len(tokens) == 0 || e.logs.Len() == 0 {
		t.Fatal("nothing to check")
	}
	for _, secret := range append(tokens, password) {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("log output contains a secret %q", secret)
		}
	}
	// A wrong password: the error names the failure, never the password.
	bad := keystone(t, contrail.Credentials{AuthURL: e.p.API.Endpoint() + "/v3", Username: "admin", Password: "wrong-" + password, ProjectName: "admin"})
	_, err := bad.Token(ctx, false)
	if !errors.Is(err, contrail.ErrUnauthorized) || strings.Contains(err.Error(), password) {
		t.Errorf("bad password: err = %v", err)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	before := e.fake.Snapshot()
	var out bytes.Buffer
	api, err := contrail.New(contrail.Config{Endpoint: e.p.API.Endpoint(), DryRun: &out, Retries: -1,
		Auth: keystone(t, contrail.Credentials{AuthURL: e.p.API.Endpoint() + "/v3", Username: "admin",
			Password: password, ProjectName: "admin"})})
	if err != nil {
		t.Fatal(err)
	}
	p := &Provisioner{API: api}
	s := siSpec("dry")
	if _, err := p.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
	got := out.String()
	for _, w := range []string{"POST " + e.p.API.Endpoint() + "/service-templates", "POST " + e.p.API.Endpoint() + "/service-instances",
		"POST " + e.p.API.Endpoint() + "/port-tuples", "POST " + e.p.API.Endpoint() + "/network-policys",
		"POST " + e.p.API.Endpoint() + "/ref-update", `"analyzer_name": "default-domain:admin:vrsniff-dry"`, `"major": 2`} {
		if !strings.Contains(got, w) {
			t.Errorf("dry-run output lacks %q:\n%s", w, got)
		}
	}
}

func TestSpecCheck(t *testing.T) {
	for _, s := range []Spec{
		{Name: "", Kind: KindPolicy, VN: vnTarget, Analyzer: Analyzer{IP: "10.0.0.1"}},
		{Name: "x y", Kind: KindPolicy, VN: vnTarget, Analyzer: Analyzer{IP: "10.0.0.1"}},
		{Name: "x", Kind: KindPolicy, VN: "vn", Analyzer: Analyzer{IP: "10.0.0.1"}},
		{Name: "x", Kind: KindPolicy, VN: vnTarget, Analyzer: Analyzer{IP: "10.0.0.300"}},
		{Name: "x", Kind: KindPolicy, VN: vnTarget, Analyzer: Analyzer{IP: "10.0.0.1", NHMode: "static"}},
		{Name: "x", Kind: KindPolicy, VN: vnTarget, Analyzer: Analyzer{IP: "10.0.0.1", NHMode: "static", VTEP: "10.0.0.2", VNI: 5, JuniperHeader: ptr(true)}},
		{Name: "x", Kind: KindPolicy, VN: vnTarget, Analyzer: Analyzer{IP: "10.0.0.1"}, Match: Match{Protocol: "sctp"}},
		{Name: "x", Kind: KindPolicy, VN: vnTarget, Analyzer: Analyzer{IP: "10.0.0.1"}, Match: Match{DstPorts: "90-80"}},
		{Name: "x", Kind: KindPort, Analyzer: Analyzer{IP: "10.0.0.1"}},
		{Name: "x", Kind: KindPort, Port: "u", TrafficDirection: "up", Analyzer: Analyzer{IP: "10.0.0.1"}},
	} {
		if err := s.Check(); err == nil {
			t.Errorf("Check(%+v) = nil, want an error", s)
		}
	}
}

func TestTokenExpiresMidCreate(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	s := siSpec("mid")
	s.SnifferPort = e.sniff
	e.fake.ExpireTokensAfter(4) // after the lookups, before the writes are done
	if _, err := e.p.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
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
	api, err := contrail.New(contrail.Config{Endpoint: proxy.URL, Retries: 2, Backoff: time.Millisecond,
		Auth: keystone(t, contrail.Credentials{AuthURL: proxy.URL, Username: "admin", Password: password, ProjectName: "admin"})})
	if err != nil {
		t.Fatal(err)
	}
	p := &Provisioner{API: api}
	if _, err := p.Create(context.Background(), policySpec("lost")); err != nil {
		t.Fatal(err)
	}
	if got := e.vnPolicyOrder(t); len(got) != 3 {
		t.Errorf("VN policies = %v", got)
	}
}
