package heat

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vrsniff/vrsniff/deploy"
	"github.com/vrsniff/vrsniff/internal/provision"
)

// pluginProps lists, per OS::ContrailV2 type, property names at every
// nesting level as the Tungsten Fabric Heat plugin's schema-generated
// resource declares them (the PROPERTIES tuple of
// tungstenfabric/tf-heat-plugin generated/resources/<file>, 3.x schema; the
// generator, tf-api-client generateds/ifmap_frontend.py, names a nested
// property after its parent). The names near what the template uses, read
// from that source; a name outside the table fails the test.
var pluginProps = map[string]struct {
	file  string
	names []string
}{
	"OS::ContrailV2::NetworkPolicy": {"generated/resources/network_policy_heat.py", []string{
		"name", "fq_name", "display_name", "project",
		"network_policy_entries", "network_policy_entries_policy_rule",
		"network_policy_entries_policy_rule_rule_uuid",
		"network_policy_entries_policy_rule_direction", "network_policy_entries_policy_rule_protocol",
		"network_policy_entries_policy_rule_ethertype",
		"network_policy_entries_policy_rule_src_addresses",
		"network_policy_entries_policy_rule_src_addresses_virtual_network",
		"network_policy_entries_policy_rule_src_addresses_subnet",
		"network_policy_entries_policy_rule_src_ports",
		"network_policy_entries_policy_rule_src_ports_start_port", "network_policy_entries_policy_rule_src_ports_end_port",
		"network_policy_entries_policy_rule_dst_addresses",
		"network_policy_entries_policy_rule_dst_addresses_virtual_network",
		"network_policy_entries_policy_rule_dst_addresses_subnet",
		"network_policy_entries_policy_rule_dst_ports",
		"network_policy_entries_policy_rule_dst_ports_start_port", "network_policy_entries_policy_rule_dst_ports_end_port",
		"network_policy_entries_policy_rule_action_list",
		"network_policy_entries_policy_rule_action_list_simple_action",
		"network_policy_entries_policy_rule_action_list_mirror_to",
		"network_policy_entries_policy_rule_action_list_mirror_to_analyzer_name",
		"network_policy_entries_policy_rule_action_list_mirror_to_analyzer_ip_address",
		"network_policy_entries_policy_rule_action_list_mirror_to_routing_instance",
		"network_policy_entries_policy_rule_action_list_mirror_to_udp_port",
	}},
	"OS::ContrailV2::VirtualNetwork": {"generated/resources/virtual_network_heat.py", []string{
		"name", "fq_name", "display_name", "project",
		"network_ipam_refs", "network_ipam_refs_data", "network_ipam_refs_data_ipam_subnets",
		"network_ipam_refs_data_ipam_subnets_subnet",
		"network_ipam_refs_data_ipam_subnets_subnet_ip_prefix", "network_ipam_refs_data_ipam_subnets_subnet_ip_prefix_len",
		"network_policy_refs", "network_policy_refs_data",
		"network_policy_refs_data_sequence",
		"network_policy_refs_data_sequence_major", "network_policy_refs_data_sequence_minor",
		"network_policy_refs_data_timer",
		"network_policy_refs_data_timer_start_time", "network_policy_refs_data_timer_on_interval",
		"network_policy_refs_data_timer_off_interval", "network_policy_refs_data_timer_end_time",
	}},
	"OS::ContrailV2::VirtualMachineInterface": {"generated/resources/virtual_machine_interface_heat.py", []string{
		"name", "fq_name", "display_name", "project",
		"virtual_network_refs", "port_tuple_refs", "security_group_refs", "virtual_machine_refs",
		"virtual_machine_interface_disable_policy",
		"virtual_machine_interface_properties",
		"virtual_machine_interface_properties_service_interface_type",
		"virtual_machine_interface_properties_interface_mirror",
		"virtual_machine_interface_properties_interface_mirror_traffic_direction",
		"virtual_machine_interface_properties_interface_mirror_mirror_to",
		"virtual_machine_interface_properties_interface_mirror_mirror_to_analyzer_name",
		"virtual_machine_interface_properties_interface_mirror_mirror_to_analyzer_ip_address",
		"virtual_machine_interface_properties_interface_mirror_mirror_to_routing_instance",
		"virtual_machine_interface_properties_interface_mirror_mirror_to_udp_port",
		"virtual_machine_interface_properties_local_preference",
	}},
	"OS::ContrailV2::ServiceTemplate": {"generated/resources/service_template_heat.py", []string{
		"name", "fq_name", "display_name", "domain",
		"service_template_properties", "service_template_properties_version",
		"service_template_properties_service_mode", "service_template_properties_service_type",
		"service_template_properties_service_virtualization_type", "service_template_properties_ordered_interfaces",
		"service_template_properties_interface_type", "service_template_properties_interface_type_service_interface_type",
	}},
	"OS::ContrailV2::ServiceInstance": {"generated/resources/service_instance_heat.py", []string{
		"name", "fq_name", "display_name", "project", "service_template_refs",
		"service_instance_properties", "service_instance_properties_interface_list",
		"service_instance_properties_interface_list_virtual_network",
		"service_instance_properties_interface_list_ip_address",
	}},
	"OS::ContrailV2::PortTuple": {"generated/resources/port_tuple_heat.py", []string{
		"name", "fq_name", "display_name", "service_instance",
	}},
	"OS::ContrailV2::InstanceIp": {"generated/resources/instance_ip_heat.py", []string{
		"name", "fq_name", "display_name", "instance_ip_address",
		"virtual_machine_interface_refs", "virtual_network_refs",
	}},
}

// pluginAllowed: the AllowedValues constraints of those properties.
var pluginAllowed = map[string][]string{
	"network_policy_entries_policy_rule_direction":                            {">", "<>"},
	"network_policy_entries_policy_rule_ethertype":                            {"IPv4", "IPv6"},
	"service_template_properties_service_mode":                                {"transparent", "in-network", "in-network-nat"},
	"service_template_properties_service_type":                                {"firewall", "analyzer", "source-nat", "loadbalancer"},
	"service_template_properties_service_virtualization_type":                 {"virtual-machine", "network-namespace", "vrouter-instance", "physical-device"},
	"virtual_machine_interface_properties_interface_mirror_traffic_direction": {"ingress", "egress", "both"},
}

// heatProps: Heat's own resources (openstack/heat,
// engine/resources/openstack/neutron/port.py and nova/server.py), with the
// keys of a networks entry for the server.
var heatProps = map[string][]string{
	"OS::Neutron::Port": {"name", "network", "port_security_enabled", "fixed_ips", "security_groups"},
	"OS::Nova::Server": {"name", "image", "flavor", "key_name", "networks", "user_data_format", "user_data",
		"network", "port", "fixed_ip"},
}

// attributes that get_attr may name: the attributes_schema of the same
// files, and Heat's port and server.
var attributes = map[string][]string{
	"OS::ContrailV2::NetworkPolicy":           {"name", "fq_name"},
	"OS::ContrailV2::VirtualNetwork":          {"name", "fq_name"},
	"OS::ContrailV2::VirtualMachineInterface": {"name", "fq_name", "virtual_network_refs"},
	"OS::ContrailV2::ServiceTemplate":         {"name", "fq_name"},
	"OS::ContrailV2::ServiceInstance":         {"name", "fq_name"},
	"OS::ContrailV2::PortTuple":               {"name", "fq_name"},
	"OS::ContrailV2::InstanceIp":              {"name", "fq_name", "instance_ip_address"},
	"OS::Neutron::Port":                       {"fixed_ips", "mac_address"},
	"OS::Nova::Server":                        {"addresses", "networks", "first_address"},
}

// functions of HOT 2016-10-14 that the template may use.
var functions = map[string]bool{"get_param": true, "get_resource": true, "get_attr": true,
	"list_join": true, "str_replace": true, "str_split": true}

type hot struct {
	Version    string `yaml:"heat_template_version"`
	Parameters map[string]struct {
		Type        string           `yaml:"type"`
		Default     any              `yaml:"default"`
		Constraints []map[string]any `yaml:"constraints"`
	} `yaml:"parameters"`
	Resources map[string]struct {
		Type       string         `yaml:"type"`
		DependsOn  []string       `yaml:"depends_on"`
		Properties map[string]any `yaml:"properties"`
	} `yaml:"resources"`
	Outputs map[string]struct {
		Value any `yaml:"value"`
	} `yaml:"outputs"`
}

var variants = []Options{
	{Mirror: provision.Spec{Kind: provision.KindPolicy}, Target: TargetNetwork},
	{Mirror: provision.Spec{Kind: provision.KindPolicy}, Target: TargetPort},
	{Mirror: provision.Spec{Kind: provision.KindPolicy}, Target: TargetNewNetwork},
	{Mirror: provision.Spec{Kind: provision.KindServiceInstance}, Target: TargetNetwork},
	{Mirror: provision.Spec{Kind: provision.KindServiceInstance}, Target: TargetPort},
	{Mirror: provision.Spec{Kind: provision.KindServiceInstance}, Target: TargetNewNetwork},
}

func generate(t *testing.T, o Options) (*hot, string) {
	t.Helper()
	o.Mirror.Name = "web"
	if o.Target == TargetNewNetwork {
		o.Mirror.Project = []string{"default-domain", "demo"}
	} else {
		o.Mirror.VN = "default-domain:demo:vn-web"
	}
	out, err := Template(o)
	if err != nil {
		t.Fatal(err)
	}
	var h hot
	if err := yaml.Unmarshal(out, &h); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	return &h, string(out)
}

func isFunc(v any) (string, any, bool) {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, a := range m {
			if functions[k] || strings.HasPrefix(k, "get_") || strings.HasPrefix(k, "str_") || strings.HasPrefix(k, "list_") {
				return k, a, true
			}
		}
	}
	return "", nil, false
}

// checkProps walks a property value: nested ContrailV2 keys must be in the
// plugin's table and extend their parent's name; literal values of
// constrained keys must be allowed; every function must exist and point at
// a declared parameter, resource or attribute.
func checkProps(t *testing.T, h *hot, allowed map[string]bool, contrail bool, parent, where string, v any) {
	t.Helper()
	if f, arg, ok := isFunc(v); ok {
		checkFunc(t, h, where, f, arg)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if contrail && strings.Contains(parent, "_") && !strings.HasPrefix(k, parent+"_") {
				t.Errorf("%s: nested key %q does not extend %q", where, k, parent)
			}
			if !allowed[k] {
				t.Errorf("%s: property %q is not in the resource's schema", where, k)
			}
			checkProps(t, h, allowed, contrail, k, where+"."+k, e)
		}
	case []any:
		for _, e := range x {
			checkProps(t, h, allowed, contrail, parent, where+"[]", e)
		}
	case string:
		if vals, ok := pluginAllowed[parent]; ok && !slices.Contains(vals, x) {
			t.Errorf("%s: %q not among %v", where, x, vals)
		}
	}
}

func checkFunc(t *testing.T, h *hot, where, f string, arg any) {
	t.Helper()
	if !functions[f] {
		t.Errorf("%s: function %s is not used by this template", where, f)
		return
	}
	switch f {
	case "get_param":
		n := arg.(string)
		if _, ok := h.Parameters[n]; !ok && !strings.HasPrefix(n, "OS::") {
			t.Errorf("%s: get_param of undeclared %q", where, n)
		}
	case "get_resource":
		if _, ok := h.Resources[arg.(string)]; !ok {
			t.Errorf("%s: get_resource of undeclared %q", where, arg)
		}
	case "get_attr":
		a := arg.([]any)
		r, ok := h.Resources[a[0].(string)]
		if !ok {
			t.Errorf("%s: get_attr of undeclared %v", where, a[0])
		} else if !slices.Contains(attributes[r.Type], a[1].(string)) {
			t.Errorf("%s: %s has no attribute %v", where, r.Type, a[1])
		}
	case "str_replace":
		m := arg.(map[string]any)
		tmpl, _ := m["template"].(string)
		for k, p := range m["params"].(map[string]any) {
			if !strings.Contains(tmpl, k) {
				t.Errorf("%s: str_replace parameter %s unused", where, k)
			}
			checkAny(t, h, where, p)
		}
	default:
		checkAny(t, h, where, arg)
	}
}

func checkAny(t *testing.T, h *hot, where string, v any) {
	t.Helper()
	if f, arg, ok := isFunc(v); ok {
		checkFunc(t, h, where, f, arg)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			checkAny(t, h, where, e)
		}
	case []any:
		for _, e := range x {
			checkAny(t, h, where, e)
		}
	}
}

// deps returns the resources that v refers to.
func deps(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		if r, ok := x["get_resource"].(string); ok && len(x) == 1 {
			into[r] = true
			return
		}
		if a, ok := x["get_attr"].([]any); ok && len(x) == 1 {
			into[a[0].(string)] = true
			return
		}
		for _, e := range x {
			deps(e, into)
		}
	case []any:
		for _, e := range x {
			deps(e, into)
		}
	}
}

// env evaluates the template's functions the way Heat does, with sample
// parameter values and attributes.
type env struct {
	h      *hot
	params map[string]any
	attrs  map[string]any // "resource.attr[.key...]"
}

func (e *env) eval(t *testing.T, v any) any {
	t.Helper()
	f, arg, ok := isFunc(v)
	if !ok {
		switch x := v.(type) {
		case []any:
			out := make([]any, len(x))
			for i, y := range x {
				out[i] = e.eval(t, y)
			}
			return out
		case map[string]any:
			out := map[string]any{}
			for k, y := range x {
				out[k] = e.eval(t, y)
			}
			return out
		}
		return v
	}
	switch f {
	case "get_param":
		if p, ok := e.params[arg.(string)]; ok {
			return p
		}
		if p, ok := e.h.Parameters[arg.(string)]; ok && p.Default != nil {
			return p.Default
		}
		t.Fatalf("no value for parameter %s", arg)
	case "get_resource":
		return "uuid-of-" + arg.(string)
	case "get_attr":
		var key []string
		for _, a := range arg.([]any) {
			key = append(key, fmt.Sprint(a))
		}
		if a, ok := e.attrs[strings.Join(key, ".")]; ok {
			return a
		}
		t.Fatalf("no value for attribute %v", key)
	case "list_join":
		a := arg.([]any)
		var parts []string
		for _, l := range a[1:] {
			for _, x := range e.eval(t, l).([]any) {
				parts = append(parts, fmt.Sprint(x))
			}
		}
		return strings.Join(parts, a[0].(string))
	case "str_split":
		a := arg.([]any)
		return strings.Split(e.eval(t, a[1]).(string), a[0].(string))[a[2].(int)]
	case "str_replace":
		m := arg.(map[string]any)
		s := m["template"].(string)
		params := m["params"].(map[string]any)
		// Heat replaces the longer keys first.
		keys := make([]string, 0, len(params))
		for k := range params {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
		for _, k := range keys {
			s = strings.ReplaceAll(s, k, fmt.Sprint(e.eval(t, params[k])))
		}
		return s
	}
	t.Fatalf("cannot evaluate %s", f)
	return nil
}

func sampleEnv(h *hot) *env {
	return &env{h: h,
		params: map[string]any{"OS::stack_id": "5f0c9a8e-0000-4000-8000-000000000001", "udp_port": 9000,
			"analyzer_network": "default-domain:demo:vn-sniff", "target_cidr": "192.168.50.0/24",
			"capture_address": "192.168.50.250"},
		attrs: map[string]any{
			"capture_port.fixed_ips.0.ip_address": "10.10.10.5",
			"mgmt_port.fixed_ips.0.ip_address":    "10.0.0.7",
			"service_instance.fq_name":            []any{"default-domain", "demo", "vrsniff-web"},
			"mirrored_network.fq_name":            []any{"default-domain", "demo", "vrsniff-web-net"},
			"capture_ip.instance_ip_address":      "10.10.10.6",
			"workload_ip.instance_ip_address":     "10.1.1.9",
			"sniffer.addresses":                   map[string]any{},
		}}
}

// heatAllows applies an allowed_pattern the way Heat does: Python's
// re.match (leftmost-first, anchored at the start, as Go's regexp), and
// the match must cover the whole value.
func heatAllows(pattern, v string) bool {
	loc := regexp.MustCompile(`^(?:` + pattern + `)`).FindStringIndex(v)
	return loc != nil && loc[1] == len(v)
}

func TestTemplate(t *testing.T) {
	for _, o := range variants {
		t.Run(string(o.Mirror.Kind)+"/"+o.Target, func(t *testing.T) {
			h, out := generate(t, o)
			if h.Version != "2016-10-14" {
				t.Errorf("heat_template_version = %q", h.Version)
			}
			// Nothing attaches a static policy, nothing passes traffic.
			for _, bad := range []string{"AttachPolicy", "simple_action", "OS::Contrail::"} {
				if strings.Contains(out, bad) {
					t.Errorf("template contains %q", bad)
				}
			}
			graph := map[string]map[string]bool{}
			for name, r := range h.Resources {
				var allowed map[string]bool
				if p, ok := pluginProps[r.Type]; ok {
					allowed = map[string]bool{}
					for _, n := range p.names {
						allowed[n] = true
					}
				} else if p, ok := heatProps[r.Type]; ok {
					allowed = map[string]bool{}
					for _, n := range p {
						allowed[n] = true
					}
				} else {
					t.Errorf("resource %s: type %s is not one the template may use", name, r.Type)
					continue
				}
				contrail := strings.HasPrefix(r.Type, "OS::ContrailV2::")
				for k, v := range r.Properties {
					if !allowed[k] {
						t.Errorf("resource %s (%s): unknown property %q", name, r.Type, k)
					}
					checkProps(t, h, allowed, contrail, k, name+"."+k, v)
				}
				graph[name] = map[string]bool{}
				deps(r.Properties, graph[name])
				for _, d := range r.DependsOn {
					if _, ok := h.Resources[d]; !ok {
						t.Errorf("resource %s depends on undeclared %s", name, d)
					}
					graph[name][d] = true
				}
			}
			if cycle := findCycle(graph); cycle != nil {
				t.Errorf("dependency cycle: %v", cycle)
			}
			for name, out := range h.Outputs {
				checkAny(t, h, "outputs."+name, out.Value)
			}

			// Every analyzer_name is cluster-wide unique:
			// domain:project:vrsniff-NAME, never the bare name.
			e := sampleEnv(h)
			names := 0
			for name, r := range h.Resources {
				walkKeys(r.Properties, func(k string, v any) {
					if strings.HasSuffix(k, "_analyzer_name") {
						names++
						if got := e.eval(t, v); got != "default-domain:demo:vrsniff-web" {
							t.Errorf("%s: %s = %v", name, k, got)
						}
					}
				})
			}
			if want := map[string]int{TargetNetwork: 0, TargetPort: 1, TargetNewNetwork: 1}[o.Target]; names != want {
				t.Errorf("%d analyzer names, want %d", names, want)
			}
			if got := e.eval(t, h.Outputs["sniffer_url"].Value); got != "http://10.0.0.7:8080/" {
				t.Errorf("sniffer_url = %v", got)
			}
			if h.Outputs["sniffer_address"].Value == nil {
				t.Error("no sniffer_address output")
			}
		})
	}
}

// TestSniffer: the VM boots with the key, cloud-init and the daemon, on the
// management port and the capture port.
func TestSniffer(t *testing.T) {
	for _, o := range variants {
		t.Run(string(o.Mirror.Kind)+"/"+o.Target, func(t *testing.T) {
			h, _ := generate(t, o)
			srv := h.Resources["sniffer"]
			if srv.Type != "OS::Nova::Server" {
				t.Fatalf("sniffer is %s", srv.Type)
			}
			if srv.Properties["key_name"].(map[string]any)["get_param"] != "key_name" {
				t.Error("sniffer has no key_name")
			}
			nets := srv.Properties["networks"].([]any)
			if len(nets) != 2 || nets[0].(map[string]any)["port"].(map[string]any)["get_resource"] != "mgmt_port" ||
				nets[1].(map[string]any)["port"].(map[string]any)["get_resource"] != "capture_port" {
				t.Errorf("sniffer networks = %v", nets)
			}
			if _, contrailPort := h.Resources["capture_ip"]; contrailPort && !slices.Contains(srv.DependsOn, "capture_ip") {
				t.Error("the sniffer boots before its capture port has an address")
			}
			sr := srv.Properties["user_data"].(map[string]any)["str_replace"].(map[string]any)
			tmpl := sr["template"].(string)
			var ci map[string]any
			if err := yaml.Unmarshal([]byte(tmpl), &ci); err != nil || !strings.HasPrefix(tmpl, "#cloud-config\n") {
				t.Fatalf("user_data is not cloud-config YAML: %v", err)
			}
			for _, k := range []string{"ssh_authorized_keys", "write_files", "runcmd"} {
				if ci[k] == nil {
					t.Errorf("cloud-config lacks %s", k)
				}
			}
			if got := sr["params"].(map[string]any)["__VRSNIFF_SHA256__"]; fmt.Sprint(got) != fmt.Sprint(getParam("vrsniff_sha256")) {
				t.Errorf("__VRSNIFF_SHA256__ is %v, want the vrsniff_sha256 parameter", got)
			}
			// It is deploy's snippet: the hardened unit and the settings,
			// with the capture interface, URL, SHA-256, UDP port and token filled
			// in by Heat.
			for _, want := range []string{"i: __CAPTURE_IF__", "__VRSNIFF_URL__", `VRSNIFF_SHA256="${VRSNIFF_SHA256:-__VRSNIFF_SHA256__}"`, "__TOKEN__", "port: [__UDP_PORT__]",
				"systemctl enable --now vrsniff.service"} {
				if !strings.Contains(tmpl, want) {
					t.Errorf("cloud-config lacks %q", want)
				}
			}
			var files []string
			for _, f := range ci["write_files"].([]any) {
				m := f.(map[string]any)
				files = append(files, m["path"].(string))
				if m["path"] == "/etc/systemd/system/vrsniff.service" && m["content"] != deploy.Unit {
					t.Error("the unit differs from deploy/vrsniff.service")
				}
			}
			if strings.Join(files, " ") != "/etc/vrsniff/token /usr/local/sbin/vrsniff-install /etc/vrsniff/vrsniff.yaml /etc/systemd/system/vrsniff.service" {
				t.Errorf("cloud-config writes %v", files)
			}
			// The sniffer listens where the vRouters send.
			e := sampleEnv(h)
			want := "9000"
			if o.Mirror.Kind == provision.KindServiceInstance {
				want = "8099" // what the vRouter uses when mirror_to has no port
			}
			if got := fmt.Sprint(e.eval(t, sr["params"].(map[string]any)["__UDP_PORT__"])); got != want {
				t.Errorf("capture UDP port = %s, want %s", got, want)
			}
		})
	}
}

// TestMirrorCreateCommand: for an existing network the stack prints the
// command that attaches the mirror, and it parses with mirror create's
// flags.
func TestMirrorCreateCommand(t *testing.T) {
	for _, tc := range []struct {
		mode provision.Kind
		want map[string]string
	}{
		{provision.KindPolicy, map[string]string{"name": "web", "vn": "default-domain:demo:vn-web",
			"analyzer-ip": "10.10.10.5", "udp-port": "9000", "project": "default-domain:demo"}},
		{provision.KindServiceInstance, map[string]string{"name": "web", "vn": "default-domain:demo:vn-web",
			"analyzer-si": "default-domain:demo:vrsniff-web", "project": "default-domain:demo"}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			h, _ := generate(t, Options{Mirror: provision.Spec{Kind: tc.mode}, Target: TargetNetwork})
			e := sampleEnv(h)
			for _, target := range []string{"default-domain:demo:vn-web", "6c1f3a52-0d6e-4e0f-9d59-8f8e0f2a9b11"} {
				e.params["target_network"] = target
				tc.want["vn"] = target
				cmd := e.eval(t, h.Outputs["mirror_create_command"].Value).(string)
				args, err := shellWords(cmd)
				if err != nil {
					t.Fatalf("%s: %v", cmd, err)
				}
				if len(args) < 3 || strings.Join(args[:3], " ") != "vrsniff mirror create" {
					t.Fatalf("command %q", cmd)
				}
				fs := flag.NewFlagSet("create", flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				got := map[string]*string{}
				for k := range tc.want {
					got[k] = fs.String(k, "", "")
				}
				if err := fs.Parse(args[3:]); err != nil || fs.NArg() != 0 {
					t.Fatalf("%q: %v %v", cmd, err, fs.Args())
				}
				for k, v := range tc.want {
					if *got[k] != v {
						t.Errorf("%q: --%s = %q, want %q", cmd, k, *got[k], v)
					}
				}
			}
			del := e.eval(t, h.Outputs["mirror_delete_command"].Value).(string)
			if args, err := shellWords(del); err != nil || strings.Join(args, " ") != "vrsniff mirror delete --project default-domain:demo web" {
				t.Errorf("delete command %q (%v)", del, err)
			}
		})
	}
	for _, o := range variants[1:3] {
		h, _ := generate(t, o)
		if _, ok := h.Outputs["mirror_create_command"]; ok {
			t.Errorf("%s: a create command for what the stack mirrors itself", o.Target)
		}
	}
}

// shellWords splits a command line with single-quoted words, refusing
// anything a shell would read otherwise.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	in, inQuote := false, false
	for _, r := range s {
		switch {
		case inQuote && r == '\'':
			inQuote = false
		case inQuote:
			w.WriteRune(r)
		case r == '\'':
			inQuote, in = true, true
		case r == ' ':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case strings.ContainsRune("\"\\$`;&|<>()*?[]#~!{}\t\n", r):
			return nil, fmt.Errorf("unquoted %q", r)
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

// TestTargetNetworkPattern evaluates the template's constraint on
// target_network: a UUID or a full fq_name, never a bare name.
func TestTargetNetworkPattern(t *testing.T) {
	h, _ := generate(t, Options{})
	var pat string
	for _, c := range h.Parameters["target_network"].Constraints {
		if p, ok := c["allowed_pattern"].(string); ok {
			pat = p
		}
	}
	if pat == "" {
		t.Fatal("target_network has no allowed_pattern")
	}
	for v, want := range map[string]bool{
		"6c1f3a52-0d6e-4e0f-9d59-8f8e0f2a9b11":         true,
		"6C1F3A52-0D6E-4E0F-9D59-8F8E0F2A9B11":         true,
		"default-domain:demo:vn-web":                   true,
		"default-domain:admin:vn_1.2":                  true,
		"6c1f3a52-0d6e-4e0f-9d59-8f8e0f2a9b11:demo:vn": true,
		"vn-web":                                 false,
		"demo:vn-web":                            false,
		"default-domain:demo:vn-web:x":           false,
		"default-domain::vn-web":                 false,
		"default-domain:demo:":                   false,
		"default-domain:demo:vn web":             false,
		"default-domain:demo:vn'web":             false,
		"6c1f3a52-0d6e-4e0f-9d59-8f8e0f2a9b1":    false,
		"6c1f3a52-0d6e-4e0f-9d59-8f8e0f2a9b11x":  false,
		"6c1f3a52-0d6e-4e0f-9d59-8f8e0f2a9b11\n": false,
		"":                                       false,
		"default-domain:demo:vn-web\n":           false,
		"default-domain:demo:vn-web default-domain:demo:vn-web": false,
	} {
		if got := heatAllows(pat, v); got != want {
			t.Errorf("target_network %q: allowed %v, want %v", v, got, want)
		}
	}
	// The project, and the analyzer network of a service instance, are
	// fq_names only.
	for _, tc := range []struct {
		o       Options
		param   string
		ok, bad string
	}{
		{Options{}, "project_fq_name", "default-domain:demo", "demo"},
		{Options{Mirror: provision.Spec{Kind: provision.KindServiceInstance}}, "analyzer_network", "default-domain:demo:vn-sniff", "6c1f3a52-0d6e-4e0f-9d59-8f8e0f2a9b11"},
	} {
		h, _ := generate(t, tc.o)
		pat := h.Parameters[tc.param].Constraints[0]["allowed_pattern"].(string)
		if !heatAllows(pat, tc.ok) || heatAllows(pat, tc.bad) {
			t.Errorf("%s: pattern %q", tc.param, pat)
		}
	}
}

// TestSHA256Parameter: vrsniff_sha256 takes a SHA-256 as sha256sum
// prints it and nothing else (the VM would refuse to install), and its
// default is --vrsniff-sha256's.
func TestSHA256Parameter(t *testing.T) {
	sum := "3c9f939962d5ad41bd1e8564a6fd546bbc6d8c50c76be11ac637a25b5ff25e24"
	h, _ := generate(t, Options{VrsniffSHA256: sum})
	p := h.Parameters["vrsniff_sha256"]
	if p.Default != sum {
		t.Errorf("default %v, want %s", p.Default, sum)
	}
	pat := p.Constraints[0]["allowed_pattern"].(string)
	for v, want := range map[string]bool{
		sum:                     true,
		strings.ToUpper(sum):    true,
		sum[:63]:                false,
		sum + "0":               false,
		sum + "\n":              false,
		sum + "  vrsniff":       false,
		"":                      false,
		strings.Repeat("g", 64): false,
	} {
		if got := heatAllows(pat, v); got != want {
			t.Errorf("vrsniff_sha256 %q: allowed %v, want %v", v, got, want)
		}
	}
	if _, err := Template(Options{Mirror: provision.Spec{VN: "default-domain:demo:vn-web"}, VrsniffSHA256: sum[:63]}); err == nil {
		t.Error("Template accepted a short SHA-256")
	}
	if h, _ := generate(t, Options{}); h.Parameters["vrsniff_sha256"].Default != nil {
		t.Errorf("without --vrsniff-sha256 the parameter has default %v: Heat must ask for it", h.Parameters["vrsniff_sha256"].Default)
	}
}

// TestServiceInstanceChain: v2 analyzer template, instance, port tuple and
// the sniffer's capture port marked left and linked to the tuple.
func TestServiceInstanceChain(t *testing.T) {
	for _, target := range []string{TargetNetwork, TargetPort, TargetNewNetwork} {
		h, _ := generate(t, Options{Mirror: provision.Spec{Kind: provision.KindServiceInstance}, Target: target})
		r := h.Resources
		stp := r["service_template"].Properties["service_template_properties"].(map[string]any)
		pfx := "service_template_properties_"
		if r["service_template"].Type != "OS::ContrailV2::ServiceTemplate" || stp[pfx+"version"] != 2 ||
			stp[pfx+"service_type"] != "analyzer" || stp[pfx+"service_mode"] != "transparent" ||
			stp[pfx+"service_virtualization_type"] != "virtual-machine" {
			t.Errorf("service template %v", stp)
		}
		ifs := stp[pfx+"interface_type"].([]any)
		if len(ifs) != 1 || ifs[0].(map[string]any)[pfx+"interface_type_service_interface_type"] != "left" {
			t.Errorf("service template interfaces %v", ifs)
		}
		si := r["service_instance"]
		if si.Type != "OS::ContrailV2::ServiceInstance" || !refersTo(si.Properties["service_template_refs"], "service_template") {
			t.Errorf("service instance %v", si)
		}
		il := si.Properties["service_instance_properties"].(map[string]any)["service_instance_properties_interface_list"].([]any)
		if len(il) != 1 || il[0].(map[string]any)["service_instance_properties_interface_list_virtual_network"].(map[string]any)["get_param"] != "analyzer_network" {
			t.Errorf("service instance interfaces %v", il)
		}
		pt := r["port_tuple"]
		if pt.Type != "OS::ContrailV2::PortTuple" || !refersTo(pt.Properties["service_instance"], "service_instance") {
			t.Errorf("port tuple %v", pt)
		}
		left := r["capture_port"]
		props, _ := left.Properties["virtual_machine_interface_properties"].(map[string]any)
		if left.Type != "OS::ContrailV2::VirtualMachineInterface" || !refersTo(left.Properties["port_tuple_refs"], "port_tuple") ||
			props["virtual_machine_interface_properties_service_interface_type"] != "left" {
			t.Errorf("capture port %v", left)
		}
		if ip := r["capture_ip"]; ip.Type != "OS::ContrailV2::InstanceIp" || !refersTo(ip.Properties["virtual_machine_interface_refs"], "capture_port") {
			t.Errorf("capture port address %v", ip)
		}
		e := sampleEnv(h)
		if got := e.eval(t, h.Outputs["analyzer_service_instance"].Value); got != "default-domain:demo:vrsniff-web" {
			t.Errorf("analyzer_service_instance = %v", got)
		}
	}
}

// TestWorkloadPort: the port the stack owns mirrors by interface_mirror,
// and keeps a security group.
func TestWorkloadPort(t *testing.T) {
	for _, mode := range []provision.Kind{provision.KindPolicy, provision.KindServiceInstance} {
		h, _ := generate(t, Options{Mirror: provision.Spec{Kind: mode}, Target: TargetPort})
		e := sampleEnv(h)
		p := e.eval(t, h.Resources["workload_port"].Properties).(map[string]any)
		im := p["virtual_machine_interface_properties"].(map[string]any)["virtual_machine_interface_properties_interface_mirror"].(map[string]any)
		pfx := "virtual_machine_interface_properties_interface_mirror_"
		got := im[pfx+"mirror_to"].(map[string]any)
		want := map[string]any{pfx + "mirror_to_analyzer_name": "default-domain:demo:vrsniff-web"}
		if mode == provision.KindPolicy {
			want[pfx+"mirror_to_analyzer_ip_address"] = "10.10.10.5"
			want[pfx+"mirror_to_udp_port"] = 9000
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || im[pfx+"traffic_direction"] != "both" {
			t.Errorf("%s: interface_mirror %v", mode, im)
		}
		if fmt.Sprint(p["virtual_network_refs"]) != "[default-domain:demo:vn-web]" ||
			fmt.Sprint(p["security_group_refs"]) != "[default-domain:demo:default]" {
			t.Errorf("%s: workload port %v", mode, p)
		}
		if got := e.eval(t, h.Outputs["workload_port"].Value); got != "uuid-of-workload_port" {
			t.Errorf("workload_port output %v", got)
		}
	}
}

// TestNewNetwork: the network the stack creates refers to a mirror-only
// policy with a timer, which makes it dynamic.
func TestNewNetwork(t *testing.T) {
	for _, mode := range []provision.Kind{provision.KindPolicy, provision.KindServiceInstance} {
		h, _ := generate(t, Options{Mirror: provision.Spec{Kind: mode}, Target: TargetNewNetwork})
		e := sampleEnv(h)
		vn := e.eval(t, h.Resources["mirrored_network"].Properties).(map[string]any)
		if fmt.Sprint(vn["network_policy_refs"]) != "[uuid-of-mirror_policy]" {
			t.Errorf("%s: policy refs %v", mode, vn["network_policy_refs"])
		}
		data := vn["network_policy_refs_data"].([]any)
		if len(data) != 1 {
			t.Fatalf("%s: ref data %v", mode, data)
		}
		d := data[0].(map[string]any)
		if timer, ok := d["network_policy_refs_data_timer"].(map[string]any); !ok || timer == nil {
			t.Errorf("%s: the policy ref has no timer: %v", mode, d)
		}
		if _, ok := d["network_policy_refs_data_sequence"].(map[string]any); !ok {
			t.Errorf("%s: the policy ref has no sequence (the schema transformer ignores it): %v", mode, d)
		}
		subnet := vn["network_ipam_refs_data"].([]any)[0].(map[string]any)["network_ipam_refs_data_ipam_subnets"].([]any)[0].(map[string]any)["network_ipam_refs_data_ipam_subnets_subnet"]
		if fmt.Sprint(subnet) != "map[network_ipam_refs_data_ipam_subnets_subnet_ip_prefix:192.168.50.0 network_ipam_refs_data_ipam_subnets_subnet_ip_prefix_len:24]" {
			t.Errorf("%s: subnet %v", mode, subnet)
		}

		rp := "network_policy_entries_policy_rule_"
		pol := e.eval(t, h.Resources["mirror_policy"].Properties).(map[string]any)
		rules := pol["network_policy_entries"].(map[string]any)["network_policy_entries_policy_rule"].([]any)
		rule := rules[0].(map[string]any)
		al := rule[rp+"action_list"].(map[string]any)
		if len(rules) != 1 || len(al) != 1 || al[rp+"action_list_mirror_to"] == nil {
			t.Errorf("%s: not one mirror-only rule: %v", mode, rules)
		}
		if fmt.Sprint(rule[rp+"src_addresses"]) != "[map["+rp+"src_addresses_virtual_network:local]]" {
			t.Errorf("%s: rule source %v", mode, rule[rp+"src_addresses"])
		}
		mt := al[rp+"action_list_mirror_to"].(map[string]any)
		if mode == provision.KindPolicy && (mt[rp+"action_list_mirror_to_analyzer_ip_address"] != "192.168.50.250" ||
			h.Resources["capture_port"].Properties["virtual_machine_interface_disable_policy"] != true) {
			t.Errorf("%s: mirror_to %v, capture port %v", mode, mt, h.Resources["capture_port"].Properties)
		}
		if got := e.eval(t, h.Outputs["target_network_fq_name"].Value); got != "default-domain:demo:vrsniff-web-net" {
			t.Errorf("target_network_fq_name = %v", got)
		}
	}
}

func TestTemplateRejects(t *testing.T) {
	for _, o := range []Options{
		{Mirror: provision.Spec{Kind: "vlan"}},
		{Target: "vm"},
		{Mirror: provision.Spec{Name: "a b"}},
		{Mirror: provision.Spec{Name: "x:y"}},
		{Mirror: provision.Spec{Name: "-x"}},
		{Mirror: provision.Spec{Name: "it's"}},
		{Mirror: provision.Spec{VN: "vn-web"}},
		{Mirror: provision.Spec{VN: "demo:vn-web"}},
		{Mirror: provision.Spec{VN: "default-domain:demo:vn web"}},
		{Target: TargetNewNetwork, Mirror: provision.Spec{VN: "default-domain:demo:vn-web"}},
		{Mirror: provision.Spec{Project: []string{"demo"}}},
		{Mirror: provision.Spec{Project: []string{"default-domain", "de mo"}}},
		// The stack decides where traffic goes, and mirrors by policy.
		{Mirror: provision.Spec{Kind: provision.KindPort}},
		{Mirror: provision.Spec{Analyzer: provision.Analyzer{IP: "10.0.0.5"}}},
		{Mirror: provision.Spec{Match: provision.Match{Protocol: "tcp"}}},
	} {
		if _, err := Template(o); err == nil {
			t.Errorf("Template(%+v) accepted", o)
		}
	}
	for _, o := range []Options{
		{Mirror: provision.Spec{VN: "6c1f3a52-0d6e-4e0f-9d59-8f8e0f2a9b11"}},
		{Mirror: provision.Spec{VN: "default-domain:demo:vn-web"}},
		{Target: TargetNewNetwork, Mirror: provision.Spec{Project: []string{"default-domain", "demo"}}},
	} {
		if _, err := Template(o); err != nil {
			t.Errorf("Template(%+v): %v", o, err)
		}
	}
}

func refersTo(v any, res string) bool {
	if l, ok := v.([]any); ok && len(l) == 1 {
		v = l[0]
	}
	m, ok := v.(map[string]any)
	return ok && m["get_resource"] == res
}

// walkKeys calls f for every key of every map under v, functions included.
func walkKeys(v any, f func(string, any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			f(k, e)
			walkKeys(e, f)
		}
	case []any:
		for _, e := range x {
			walkKeys(e, f)
		}
	}
}

func findCycle(g map[string]map[string]bool) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(n string) []string
	visit = func(n string) []string {
		color[n] = grey
		stack = append(stack, n)
		for d := range g[n] {
			switch color[d] {
			case grey:
				return append(slices.Clone(stack), d)
			case white:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return nil
	}
	for n := range g {
		if color[n] == white {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}
