// Package heat writes a HOT (Heat Orchestration Template) that sets up the
// same mirroring as "vrsniff mirror create", together with the sniffer VM
// itself: an OS::Nova::Server with an ssh key and cloud-init user_data that
// installs vrsniff and starts "vrsniff capture" as a systemd service.
//
// The Contrail resources are the schema-generated OS::ContrailV2::* types
// of the Tungsten Fabric Heat plugin, whose nested property names repeat
// their parent's name (network_policy_entries_policy_rule_direction, ...).
// The policy is attached to the existing target network with the plugin's
// OS::Contrail::AttachPolicy, which appends to the network's policies
// instead of replacing them.
package heat

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vrsniff/vrsniff/deploy"
	"github.com/vrsniff/vrsniff/internal/secret"
)

// Modes of the generated template.
const (
	ModePolicy          = "policy"           // policy rule mirroring to the sniffer's IP
	ModeServiceInstance = "service-instance" // analyzer service instance (v2 template, port tuple)
)

// Options select what the template contains. Empty fields leave the
// corresponding template parameter without a default.
type Options struct {
	Mode          string // ModePolicy (default) or ModeServiceInstance
	Name          string // mirror name; objects are named vrsniff-<name>
	TargetVN      string // default for target_network_fq_name
	Image, Flavor string // defaults for image and flavor
	VrsniffURL    string // default for vrsniff_url
}

type param struct {
	Type        string `yaml:"type"`
	Description string `yaml:"description"`
	Default     any    `yaml:"default,omitempty"`
	Hidden      bool   `yaml:"hidden,omitempty"`
	Constraints []any  `yaml:"constraints,omitempty"`
}

type resource struct {
	Type       string         `yaml:"type"`
	DependsOn  []string       `yaml:"depends_on,omitempty"`
	Properties map[string]any `yaml:"properties"`
}

type output struct {
	Description string `yaml:"description"`
	Value       any    `yaml:"value"`
}

type template struct {
	Version     string              `yaml:"heat_template_version"`
	Description string              `yaml:"description"`
	Parameters  map[string]param    `yaml:"parameters"`
	Resources   map[string]resource `yaml:"resources"`
	Outputs     map[string]output   `yaml:"outputs"`
}

// cloudConfig is the cloud-init snippet of deploy/ (binary, settings,
// hardened unit, token) with what Heat fills in per VM: the ssh key, the
// token, the binary's URL and the capture interface, as the placeholders
// that str_replace replaces.
func cloudConfig() (string, error) {
	var ci map[string]any
	if err := yaml.Unmarshal([]byte(deploy.CloudInit), &ci); err != nil {
		return "", fmt.Errorf("deploy/cloud-init.yaml: %w", err)
	}
	files, ok := ci["write_files"].([]any)
	if !ok {
		return "", fmt.Errorf("deploy/cloud-init.yaml: no write_files")
	}
	ci["ssh_authorized_keys"] = []any{"__SSH_KEY__"}
	// The install script keeps a token that is already there.
	ci["write_files"] = append([]any{map[string]any{
		"path": "/etc/vrsniff/token", "permissions": "0640", "content": "__TOKEN__\n",
	}}, files...)
	out, err := yaml.Marshal(ci)
	if err != nil {
		return "", err
	}
	s := "#cloud-config\n" + string(out)
	for old, placeholder := range map[string]string{deploy.DefaultURL: "__VRSNIFF_URL__", deploy.DefaultInterface: "i: __CAPTURE_IF__"} {
		if !strings.Contains(s, old) {
			return "", fmt.Errorf("deploy/cloud-init.yaml: %q not found", old)
		}
		s = strings.ReplaceAll(s, old, placeholder)
	}
	return s, nil
}

// opt leaves a parameter without a default (so Heat asks for it) when the
// value is empty.
func opt(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func getParam(n string) map[string]any { return map[string]any{"get_param": n} }
func getRes(n string) map[string]any   { return map[string]any{"get_resource": n} }
func getAttr(a ...any) map[string]any  { return map[string]any{"get_attr": a} }
func joinColon(v any) map[string]any   { return map[string]any{"list_join": []any{":", v}} }

func (o *Options) project() string {
	if p := strings.Split(o.TargetVN, ":"); len(p) == 3 {
		return p[0] + ":" + p[1]
	}
	return "default-domain:admin"
}

// Template returns the HOT template for o as YAML.
func Template(o Options) ([]byte, error) {
	if o.Mode == "" {
		o.Mode = ModePolicy
	}
	if o.Mode != ModePolicy && o.Mode != ModeServiceInstance {
		return nil, fmt.Errorf("heat template mode %q: want %s or %s", o.Mode, ModePolicy, ModeServiceInstance)
	}
	if o.Name == "" {
		o.Name = "sniffer"
	}
	if strings.ContainsAny(o.Name, ": \t\n'\"") {
		return nil, fmt.Errorf("mirror name %q: no spaces, quotes or colons", o.Name)
	}
	obj := "vrsniff-" + o.Name
	t := template{
		Version: "2016-10-14",
		Description: fmt.Sprintf("vrsniff: mirror the traffic of a Contrail virtual network to a sniffer VM (%s mode) "+
			"and run vrsniff capture on it.", o.Mode),
		Parameters: map[string]param{
			"image":                  {Type: "string", Description: "Glance image of the sniffer VM (a cloud-init enabled Linux)", Default: opt(o.Image)},
			"flavor":                 {Type: "string", Description: "Nova flavor of the sniffer VM", Default: opt(o.Flavor)},
			"key_name":               {Type: "string", Description: "Nova keypair for ssh access to the sniffer VM"},
			"ssh_public_key":         {Type: "string", Description: "extra ssh public key that cloud-init authorizes"},
			"mgmt_network":           {Type: "string", Description: "network of the sniffer's management interface (ssh, HTTP, binary download)"},
			"analyzer_network":       {Type: "string", Description: "network of the sniffer's capture interface; mirrored traffic arrives here"},
			"target_network":         {Type: "string", Description: "name or UUID of the virtual network to mirror"},
			"target_network_fq_name": {Type: "string", Description: "fq_name of the network to mirror, colon-separated", Default: opt(o.TargetVN)},
			"udp_port":               {Type: "number", Description: "UDP port of the mirrored datagrams", Default: 8099},
			"capture_interface":      {Type: "string", Description: "the sniffer's capture interface inside the VM", Default: "eth1"},
			"vrsniff_url":            {Type: "string", Description: "URL of the vrsniff binary (linux/amd64)", Default: opt(o.VrsniffURL)},
			"vrsniff_token": {Type: "string", Description: "bearer token for the sniffer's HTTP interface", Hidden: true,
				// vrsniff capture refuses a shorter one (a service that would not start).
				Constraints: []any{map[string]any{"length": map[string]int{"min": secret.MinTokenLen}, "description": fmt.Sprintf("at least %d characters", secret.MinTokenLen)}}},
			"project_fq_name": {Type: "string", Description: "domain:project that owns the Contrail objects", Default: o.project()},
		},
		Resources: map[string]resource{},
		Outputs:   map[string]output{},
	}
	annotations := func(kind string) map[string]any {
		kv := func(k string, v any) map[string]any {
			return map[string]any{"annotations_key_value_pair_key": k, "annotations_key_value_pair_value": v}
		}
		return map[string]any{"annotations_key_value_pair": []any{
			kv("vrsniff.mirror", o.Name), kv("vrsniff.kind", kind), kv("vrsniff.target", getParam("target_network_fq_name")),
		}}
	}

	var mirrorTo map[string]any
	var networks []any
	if o.Mode == ModePolicy {
		t.Resources["capture_port"] = resource{Type: "OS::Neutron::Port", Properties: map[string]any{
			"name":                  obj + "-capture",
			"network":               getParam("analyzer_network"),
			"port_security_enabled": false,
		}}
		networks = []any{map[string]any{"network": getParam("mgmt_network")}, map[string]any{"port": getRes("capture_port")}}
		pfx := "network_policy_entries_policy_rule_action_list_mirror_to_"
		mirrorTo = map[string]any{
			pfx + "analyzer_name":       obj,
			pfx + "analyzer_ip_address": getAttr("capture_port", "fixed_ips", 0, "ip_address"),
			pfx + "udp_port":            getParam("udp_port"),
		}
		t.Outputs["analyzer_ip"] = output{Description: "address the vRouters mirror to", Value: getAttr("capture_port", "fixed_ips", 0, "ip_address")}
	} else {
		delete(t.Parameters, "mgmt_network")
		delete(t.Parameters, "analyzer_network")
		t.Parameters["mgmt_network_fq_name"] = param{Type: "string", Description: "fq_name of mgmt_network, colon-separated"}
		t.Parameters["analyzer_network_fq_name"] = param{Type: "string", Description: "fq_name of analyzer_network, colon-separated"}
		stp := "service_template_properties_"
		t.Resources["service_template"] = resource{Type: "OS::ContrailV2::ServiceTemplate", Properties: map[string]any{
			"name": obj,
			"service_template_properties": map[string]any{
				stp + "version":                     2,
				stp + "service_mode":                "transparent",
				stp + "service_type":                "analyzer",
				stp + "service_virtualization_type": "virtual-machine",
				stp + "interface_type": []any{
					map[string]any{stp + "interface_type_service_interface_type": "management"},
					map[string]any{stp + "interface_type_service_interface_type": "left"},
				},
			},
			"annotations": annotations(ModeServiceInstance),
			"domain":      map[string]any{"str_split": []any{":", getParam("project_fq_name"), 0}},
		}}
		sip := "service_instance_properties_"
		t.Resources["service_instance"] = resource{Type: "OS::ContrailV2::ServiceInstance", Properties: map[string]any{
			"name":                  obj,
			"service_template_refs": []any{getRes("service_template")},
			"service_instance_properties": map[string]any{
				sip + "interface_list": []any{
					map[string]any{sip + "interface_list_virtual_network": getParam("mgmt_network_fq_name")},
					map[string]any{sip + "interface_list_virtual_network": getParam("analyzer_network_fq_name")},
				},
			},
			"annotations": annotations(ModeServiceInstance),
			"project":     getParam("project_fq_name"),
		}}
		t.Resources["port_tuple"] = resource{Type: "OS::ContrailV2::PortTuple", Properties: map[string]any{
			"name":             obj + "-tuple",
			"service_instance": getRes("service_instance"),
		}}
		for _, p := range []struct{ res, ifType, vn, vnFQ string }{
			{"mgmt_port", "management", "mgmt_network", "mgmt_network_fq_name"},
			{"left_port", "left", "analyzer_network", "analyzer_network_fq_name"},
		} {
			t.Resources[p.res] = resource{Type: "OS::ContrailV2::VirtualMachineInterface", Properties: map[string]any{
				"name":                 obj + "-" + p.ifType,
				"project":              getParam("project_fq_name"),
				"virtual_network_refs": []any{getParam(p.vnFQ)},
				"port_tuple_refs":      []any{getRes("port_tuple")},
				"virtual_machine_interface_properties": map[string]any{
					"virtual_machine_interface_properties_service_interface_type": p.ifType,
				},
			}}
			t.Resources[p.res+"_ip"] = resource{Type: "OS::ContrailV2::InstanceIp", Properties: map[string]any{
				"virtual_network_refs":           []any{getParam(p.vnFQ)},
				"virtual_machine_interface_refs": []any{getRes(p.res)},
			}}
			networks = append(networks, map[string]any{"port": getRes(p.res)})
		}
		mirrorTo = map[string]any{
			// The schema transformer fills in the instance's address.
			"network_policy_entries_policy_rule_action_list_mirror_to_analyzer_name": joinColon(getAttr("service_instance", "fq_name")),
		}
	}

	cc, err := cloudConfig()
	if err != nil {
		return nil, err
	}
	user := map[string]any{"str_replace": map[string]any{
		"template": cc,
		"params": map[string]any{
			"__SSH_KEY__":     getParam("ssh_public_key"),
			"__TOKEN__":       getParam("vrsniff_token"),
			"__VRSNIFF_URL__": getParam("vrsniff_url"),
			"__CAPTURE_IF__":  getParam("capture_interface"),
		},
	}}
	server := resource{Type: "OS::Nova::Server", Properties: map[string]any{
		"name":             obj,
		"image":            getParam("image"),
		"flavor":           getParam("flavor"),
		"key_name":         getParam("key_name"),
		"networks":         networks,
		"user_data_format": "RAW",
		"user_data":        user,
	}}
	if o.Mode == ModeServiceInstance {
		server.DependsOn = []string{"mgmt_port_ip", "left_port_ip"}
	}
	t.Resources["sniffer"] = server

	rp := "network_policy_entries_policy_rule_"
	anyPort := []any{map[string]any{rp + "src_ports_start_port": -1, rp + "src_ports_end_port": -1}}
	anyDstPort := []any{map[string]any{rp + "dst_ports_start_port": -1, rp + "dst_ports_end_port": -1}}
	t.Resources["mirror_policy"] = resource{Type: "OS::ContrailV2::NetworkPolicy", Properties: map[string]any{
		"name": obj,
		"network_policy_entries": map[string]any{
			"network_policy_entries_policy_rule": []any{map[string]any{
				rp + "direction":     "<>",
				rp + "protocol":      "any",
				rp + "src_addresses": []any{map[string]any{rp + "src_addresses_virtual_network": getParam("target_network_fq_name")}},
				rp + "src_ports":     anyPort,
				rp + "dst_addresses": []any{map[string]any{rp + "dst_addresses_virtual_network": "any"}},
				rp + "dst_ports":     anyDstPort,
				rp + "action_list": map[string]any{
					rp + "action_list_simple_action": "pass",
					rp + "action_list_mirror_to":     mirrorTo,
				},
			}},
		},
		"annotations": annotations(o.Mode),
		"project":     getParam("project_fq_name"),
	}}
	t.Resources["attach_policy"] = resource{Type: "OS::Contrail::AttachPolicy", Properties: map[string]any{
		"network": getParam("target_network"),
		"policy":  joinColon(getAttr("mirror_policy", "fq_name")),
	}}
	t.Outputs["sniffer_address"] = output{Description: "management address of the sniffer VM (HTTP on port 8080)",
		Value: getAttr("sniffer", "addresses")}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(t); err != nil {
		return nil, fmt.Errorf("encode heat template: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode heat template: %w", err)
	}
	return buf.Bytes(), nil
}
