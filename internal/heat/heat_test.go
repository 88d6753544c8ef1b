package heat

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vrsniff/vrsniff/deploy"
)

// props lists, per resource type, the property names the resource defines
// (for OS::ContrailV2 types at every nesting level), as the Tungsten Fabric
// Heat plugin's generated resources (vnc_api/gen/heat/resources/*_heat.py)
// and Heat's own resources declare them. Only the subset near what the
// template uses is listed; a name outside it fails the test.
var props = map[string][]string{
	"OS::Neutron::Port": {"name", "network", "port_security_enabled", "fixed_ips", "security_groups", "mac_address"},
	"OS::Nova::Server": {"name", "image", "flavor", "key_name", "networks", "user_data_format", "user_data", "config_drive", "metadata",
		"network", "port", "fixed_ip"}, // the last three: keys of a networks entry
	"OS::Contrail::AttachPolicy": {"network", "policy"},
	"OS::ContrailV2::NetworkPolicy": {"name", "fq_name", "display_name", "project", "annotations",
		"annotations_key_value_pair", "annotations_key_value_pair_key", "annotations_key_value_pair_value",
		"network_policy_entries", "network_policy_entries_policy_rule",
		"network_policy_entries_policy_rule_direction", "network_policy_entries_policy_rule_protocol",
		"network_policy_entries_policy_rule_ethertype",
		"network_policy_entries_policy_rule_src_addresses", "network_policy_entries_policy_rule_src_addresses_virtual_network",
		"network_policy_entries_policy_rule_src_addresses_subnet",
		"network_policy_entries_policy_rule_src_ports", "network_policy_entries_policy_rule_src_ports_start_port",
		"network_policy_entries_policy_rule_src_ports_end_port",
		"network_policy_entries_policy_rule_dst_addresses", "network_policy_entries_policy_rule_dst_addresses_virtual_network",
		"network_policy_entries_policy_rule_dst_ports", "network_policy_entries_policy_rule_dst_ports_start_port",
		"network_policy_entries_policy_rule_dst_ports_end_port",
		"network_policy_entries_policy_rule_action_list", "network_policy_entries_policy_rule_action_list_simple_action",
		"network_policy_entries_policy_rule_action_list_mirror_to",
		"network_policy_entries_policy_rule_action_list_mirror_to_analyzer_name",
		"network_policy_entries_policy_rule_action_list_mirror_to_analyzer_ip_address",
		"network_policy_entries_policy_rule_action_list_mirror_to_udp_port",
		"network_policy_entries_policy_rule_action_list_mirror_to_juniper_header",
		"network_policy_entries_policy_rule_action_list_mirror_to_nh_mode"},
	"OS::ContrailV2::ServiceTemplate": {"name", "domain", "annotations", "annotations_key_value_pair",
		"annotations_key_value_pair_key", "annotations_key_value_pair_value",
		"service_template_properties", "service_template_properties_version", "service_template_properties_service_mode",
		"service_template_properties_service_type", "service_template_properties_service_virtualization_type",
		"service_template_properties_interface_type", "service_template_properties_interface_type_service_interface_type"},
	"OS::ContrailV2::ServiceInstance": {"name", "project", "service_template_refs", "annotations", "annotations_key_value_pair",
		"annotations_key_value_pair_key", "annotations_key_value_pair_value",
		"service_instance_properties", "service_instance_properties_interface_list",
		"service_instance_properties_interface_list_virtual_network", "service_instance_properties_interface_list_ip_address"},
	"OS::ContrailV2::PortTuple": {"name", "service_instance", "annotations"},
	"OS::ContrailV2::VirtualMachineInterface": {"name", "project", "virtual_network_refs", "port_tuple_refs",
		"virtual_machine_interface_properties", "virtual_machine_interface_properties_service_interface_type",
		"virtual_machine_interface_properties_interface_mirror"},
	"OS::ContrailV2::InstanceIp": {"name", "virtual_network_refs", "virtual_machine_interface_refs", "instance_ip_address"},
}

var functions = map[string]bool{"get_param": true, "get_resource": true, "get_attr": true, "list_join": true,
	"str_replace": true, "str_split": true}

type hot struct {
	Version    string `yaml:"heat_template_version"`
	Parameters map[string]struct {
		Type string `yaml:"type"`
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

// check walks a property value: nested ContrailV2 keys must be known and
// carry their parent's name as prefix; every intrinsic function must be
// one Heat has and point at a declared parameter or resource.
func check(t *testing.T, h *hot, allowed map[string]bool, contrail bool, parent, where string, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for f, arg := range x {
				if !strings.Contains(f, "_") || functions[f] {
					if !functions[f] && !allowed[f] {
						t.Errorf("%s: unknown function or key %q", where, f)
					}
					if functions[f] {
						checkFunc(t, h, where, f, arg)
						return
					}
				}
			}
		}
		for k, e := range x {
			if contrail && parent != "" && strings.Contains(parent, "_") && !strings.HasPrefix(k, parent+"_") && !functions[k] {
				t.Errorf("%s: nested key %q does not extend %q", where, k, parent)
			}
			if contrail && !allowed[k] {
				t.Errorf("%s: property %q is not in the resource schema", where, k)
			}
			check(t, h, allowed, contrail, k, where+"."+k, e)
		}
	case []any:
		for _, e := range x {
			check(t, h, allowed, contrail, parent, where+"[]", e)
		}
	}
}

func checkFunc(t *testing.T, h *hot, where, f string, arg any) {
	t.Helper()
	switch f {
	case "get_param":
		if _, ok := h.Parameters[arg.(string)]; !ok {
			t.Errorf("%s: get_param of undeclared %q", where, arg)
		}
	case "get_resource":
		if _, ok := h.Resources[arg.(string)]; !ok {
			t.Errorf("%s: get_resource of undeclared %q", where, arg)
		}
	case "get_attr":
		if _, ok := h.Resources[arg.([]any)[0].(string)]; !ok {
			t.Errorf("%s: get_attr of undeclared %v", where, arg)
		}
	case "str_replace":
		m := arg.(map[string]any)
		for k, p := range m["params"].(map[string]any) {
			if !strings.Contains(m["template"].(string), k) {
				t.Errorf("%s: str_replace parameter %s unused", where, k)
			}
			checkFunc(t, h, where, "get_param", p.(map[string]any)["get_param"])
		}
	default:
		for _, e := range arg.([]any) {
			if m, ok := e.(map[string]any); ok {
				for g, a := range m {
					checkFunc(t, h, where, g, a)
				}
			}
		}
	}
}

func TestTemplate(t *testing.T) {
	for _, mode := range []string{ModePolicy, ModeServiceInstance} {
		t.Run(mode, func(t *testing.T) {
			out, err := Template(Options{Mode: mode, Name: "web", TargetVN: "default-domain:demo:vn-web"})
			if err != nil {
				t.Fatal(err)
			}
			var h hot
			if err := yaml.Unmarshal(out, &h); err != nil {
				t.Fatalf("not YAML: %v\n%s", err, out)
			}
			if h.Version != "2016-10-14" {
				t.Errorf("heat_template_version = %q", h.Version)
			}
			if h.Parameters["project_fq_name"].Type != "string" {
				t.Error("project parameter missing")
			}
			seen := map[string]bool{}
			for name, r := range h.Resources {
				known, ok := props[r.Type]
				if !ok {
					t.Errorf("resource %s: unknown type %s", name, r.Type)
					continue
				}
				seen[r.Type] = true
				allowed := map[string]bool{}
				for _, p := range known {
					allowed[p] = true
				}
				for k, v := range r.Properties {
					if !allowed[k] {
						t.Errorf("resource %s (%s): unknown property %q", name, r.Type, k)
					}
					check(t, &h, allowed, strings.HasPrefix(r.Type, "OS::ContrailV2::"), k, name+"."+k, v)
				}
				for _, d := range r.DependsOn {
					if _, ok := h.Resources[d]; !ok {
						t.Errorf("resource %s depends on undeclared %s", name, d)
					}
				}
			}
			for _, want := range []string{"OS::Nova::Server", "OS::ContrailV2::NetworkPolicy", "OS::Contrail::AttachPolicy"} {
				if !seen[want] {
					t.Errorf("no %s", want)
				}
			}
			for _, o := range h.Outputs {
				check(t, &h, nil, false, "", "outputs", o.Value)
			}

			// The sniffer boots with the key, cloud-init and the daemon.
			srv := h.Resources["sniffer"].Properties
			if srv["key_name"].(map[string]any)["get_param"] != "key_name" {
				t.Error("sniffer has no key_name")
			}
			tmpl := srv["user_data"].(map[string]any)["str_replace"].(map[string]any)["template"].(string)
			var ci map[string]any
			if err := yaml.Unmarshal([]byte(tmpl), &ci); err != nil || !strings.HasPrefix(tmpl, "#cloud-config\n") {
				t.Fatalf("user_data is not cloud-config YAML: %v", err)
			}
			for _, k := range []string{"ssh_authorized_keys", "write_files", "runcmd"} {
				if ci[k] == nil {
					t.Errorf("cloud-config lacks %s", k)
				}
			}
			// It is deploy's snippet: the hardened unit and the settings,
			// with the capture interface, URL and token filled in by Heat.
			for _, want := range []string{deploy.Unit, "i: __CAPTURE_IF__", "__VRSNIFF_URL__", "__TOKEN__", "systemctl enable --now vrsniff.service"} {
				if !strings.Contains(tmpl, strings.TrimSpace(strings.Split(want, "\n")[0])) {
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
			// mirror_to always names its analyzer.
			if !strings.Contains(string(out), "network_policy_entries_policy_rule_action_list_mirror_to_analyzer_name") {
				t.Error("mirror_to without analyzer_name")
			}
		})
	}
}

func TestTemplateRejects(t *testing.T) {
	for _, o := range []Options{{Mode: "vlan"}, {Name: "a b"}, {Name: "x:y"}} {
		if _, err := Template(o); err == nil {
			t.Errorf("Template(%+v) accepted", o)
		}
	}
}
