// Package heat writes a HOT (Heat Orchestration Template) that deploys a
// sniffer VM: an OS::Nova::Server with an ssh key and cloud-init user_data
// that installs vrsniff and starts "vrsniff capture" as a systemd service,
// its capture port and, in service-instance mode, the analyzer objects
// (v2 service template, service instance, port tuple).
//
// The template attaches nothing to a network it did not create. The Tungsten
// Fabric Heat plugin's OS::Contrail::AttachPolicy cannot set the reference's
// timer and puts the policy first (sequence 0.0), so what it attaches is a
// static policy whose pass rule overrides every deny of the network
// (docs/mirror.md, "Why the template does not attach the mirror itself"). For an
// existing network the stack outputs the "vrsniff mirror create" command
// that attaches a dynamic, mirror-only policy instead. Heat mirrors by itself
// only objects the stack owns:
//
//   - TargetPort: a workload port the stack creates on the network, with
//     interface_mirror in its properties (no policy involved);
//   - TargetNewNetwork: a network the stack creates, whose reference to the
//     mirror-only policy carries a timer (network_policy_refs_data_timer), which
//     makes the policy dynamic: evaluated before, and apart from, the static
//     ACL, it allows and denies nothing.
//
// The Contrail resources are the schema-generated OS::ContrailV2::* types of
// the plugin (tungstenfabric/tf-heat-plugin, generated/resources/*_heat.py),
// whose nested property names repeat their parent's name
// (network_policy_entries_policy_rule_direction, ...). The template uses only
// names that the plugin's generated resources of the 3.x schema already have,
// so that it loads on every release since; annotations, added later, are left
// out.
package heat

import (
	"bytes"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vrsniff/vrsniff/deploy"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/provision"
	"github.com/vrsniff/vrsniff/internal/secret"
)

// Targets: what is mirrored.
const (
	// TargetNetwork is an existing network: the stack deploys the sniffer
	// and outputs the "vrsniff mirror create" command that attaches it.
	TargetNetwork = "network"
	// TargetPort is a workload port the stack creates on an existing
	// network, mirrored by interface_mirror; boot a VM on it.
	TargetPort = "port"
	// TargetNewNetwork is a network the stack creates, mirrored by a
	// dynamic mirror-only policy.
	TargetNewNetwork = "new-network"
)

// Parameter patterns. Heat applies allowed_pattern with Python's re.match
// and requires the match to cover the whole value; these are written for
// both Python's re and Go's regexp. A name part excludes ':' (the separator),
// white space and "'", so that the values are safe inside the single quotes
// of the printed command.
const (
	namePart       = `[^:'\s]+`
	uuidPattern    = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`
	fqNamePattern  = namePart + `:` + namePart + `:` + namePart
	projectPattern = namePart + `:` + namePart
	// The fq_name comes first: re.match takes the first alternative that
	// matches a prefix, and a UUID has no colon.
	objectPattern = fqNamePattern + `|` + uuidPattern
	// The mirror rule of a new network matches IPv4 (ethertype).
	ipv4Pattern = `[0-9]{1,3}(\.[0-9]{1,3}){3}`
	// A SHA-256 as sha256sum prints it.
	sha256Pattern = `[0-9a-fA-F]{64}`
)

// matchesWhole reports whether s matches pattern the way Heat's
// allowed_pattern does.
func matchesWhole(pattern, s string) bool {
	loc := regexp.MustCompile(`^(?:` + pattern + `)`).FindStringIndex(s)
	return loc != nil && loc[1] == len(s)
}

// Options select what the template contains. Empty fields leave the
// corresponding template parameter without a default, so Heat asks for it.
type Options struct {
	// Mirror is the mirror the stack sets up, in the terms of "vrsniff
	// mirror create": its Kind says what the vRouters mirror to,
	// provision.KindPolicy (the default: the sniffer's capture port, by
	// IP address) or provision.KindServiceInstance (an analyzer service
	// instance the stack creates: v2 template, port tuple); Name (default
	// "sniffer") names the objects vrsniff-<name>; VN is the default of
	// target_network (a UUID or domain:project:name) and Project
	// ([domain, project]) that of project_fq_name (default: VN's). Where
	// the traffic goes is the stack's to fill in: the other fields must
	// be empty.
	Mirror provision.Spec
	// Target says what is mirrored: TargetNetwork (default), TargetPort or
	// TargetNewNetwork.
	Target        string
	Image, Flavor string // defaults for image and flavor
	VrsniffURL    string // default for vrsniff_url
	VrsniffSHA256 string // default for vrsniff_sha256
}

func (o *Options) check() error {
	s := &o.Mirror
	if s.Kind == "" {
		s.Kind = provision.KindPolicy
	}
	if o.Target == "" {
		o.Target = TargetNetwork
	}
	if s.Name == "" {
		s.Name = "sniffer"
	}
	project := strings.Join(s.Project, ":")
	switch {
	case s.Kind != provision.KindPolicy && s.Kind != provision.KindServiceInstance:
		return fmt.Errorf("heat template mode %q: want %s or %s", s.Kind, provision.KindPolicy, provision.KindServiceInstance)
	case o.Target != TargetNetwork && o.Target != TargetPort && o.Target != TargetNewNetwork:
		return fmt.Errorf("heat template target %q: want %s, %s or %s", o.Target, TargetNetwork, TargetPort, TargetNewNetwork)
	case s.VN != "" && o.Target == TargetNewNetwork:
		return fmt.Errorf("target network %q: the %s target creates its network", s.VN, TargetNewNetwork)
	case s.VN != "" && !matchesWhole(objectPattern, s.VN):
		return fmt.Errorf("target network %q: want a UUID or domain:project:name", s.VN)
	case s.Project != nil && (len(s.Project) != 2 || !matchesWhole(projectPattern, project)):
		return fmt.Errorf("project %q: want domain:project", project)
	case o.VrsniffSHA256 != "" && !matchesWhole(sha256Pattern, o.VrsniffSHA256):
		return fmt.Errorf("vrsniff SHA-256 %q: want 64 hexadecimal digits, as in SHA256SUMS", o.VrsniffSHA256)
	}
	if err := provision.CheckName(s.Name); err != nil {
		return err
	}
	rest := *s
	rest.Name, rest.Project, rest.Kind, rest.VN = "", nil, "", ""
	if !reflect.DeepEqual(rest, provision.Spec{}) {
		return fmt.Errorf("mirror %s: the stack sets the analyzer up; give only the kind, name, network and project", s.Name)
	}
	if p := strings.Split(s.VN, ":"); s.Project == nil && len(p) == 3 {
		s.Project = p[:2]
	}
	return nil
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

// Intrinsic functions of HOT 2016-10-14.
func getParam(n string) map[string]any { return map[string]any{"get_param": n} }
func getRes(n string) map[string]any   { return map[string]any{"get_resource": n} }
func getAttr(a ...any) map[string]any  { return map[string]any{"get_attr": a} }
func listJoin(sep string, list any) map[string]any {
	return map[string]any{"list_join": []any{sep, list}}
}
func strSplit(sep string, s any, i int) map[string]any {
	return map[string]any{"str_split": []any{sep, s, i}}
}
func strReplace(tmpl string, params map[string]any) map[string]any {
	return map[string]any{"str_replace": map[string]any{"template": tmpl, "params": params}}
}

func pattern(p, desc string) []any {
	return []any{map[string]any{"allowed_pattern": p, "description": desc}}
}

// opt leaves a parameter without a default when the value is empty.
func opt(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Placeholders in the cloud-config that str_replace fills in per stack.
const (
	phSSHKey  = "__SSH_KEY__"
	phToken   = "__TOKEN__"
	phURL     = "__VRSNIFF_URL__"
	phSHA256  = "__VRSNIFF_SHA256__"
	phIface   = "__CAPTURE_IF__"
	phUDPPort = "__UDP_PORT__"
)

// cloudConfig is the cloud-init snippet of deploy/ (binary, settings,
// hardened unit, token) with what Heat fills in per VM as placeholders: the
// ssh key, the token, the binary's URL and SHA-256, the capture interface and the
// mirror UDP port.
func cloudConfig() (string, error) {
	var ci map[string]any
	if err := yaml.Unmarshal([]byte(deploy.CloudInit), &ci); err != nil {
		return "", fmt.Errorf("deploy/cloud-init.yaml: %w", err)
	}
	files, ok := ci["write_files"].([]any)
	if !ok {
		return "", fmt.Errorf("deploy/cloud-init.yaml: no write_files")
	}
	ci["ssh_authorized_keys"] = []any{phSSHKey}
	// The install script keeps a token that is already there.
	ci["write_files"] = append([]any{map[string]any{
		"path": "/etc/vrsniff/token", "permissions": "0640", "content": phToken + "\n",
	}}, files...)
	out, err := yaml.Marshal(ci)
	if err != nil {
		return "", err
	}
	s := "#cloud-config\n" + string(out)
	for old, placeholder := range map[string]string{
		deploy.DefaultURL:                             phURL,
		deploy.DefaultSHA256:                          phSHA256,
		deploy.DefaultInterface:                       "i: " + phIface,
		fmt.Sprintf("port: [%d]", mirror.DefaultPort): "port: [" + phUDPPort + "]",
	} {
		if !strings.Contains(s, old) {
			return "", fmt.Errorf("deploy/cloud-init.yaml: %q not found", old)
		}
		s = strings.ReplaceAll(s, old, placeholder)
	}
	return s, nil
}

// httpPort is the port of the sniffer's HTTP API in deploy/vrsniff.yaml.
func httpPort() (string, error) {
	var s struct {
		HTTP string `yaml:"http"`
	}
	if err := yaml.Unmarshal([]byte(deploy.Settings), &s); err != nil {
		return "", fmt.Errorf("deploy/vrsniff.yaml: %w", err)
	}
	_, port, err := net.SplitHostPort(s.HTTP)
	if err != nil {
		return "", fmt.Errorf("deploy/vrsniff.yaml: http: %w", err)
	}
	return port, nil
}

type builder struct {
	o   Options
	si  bool   // mirrors to an analyzer service instance
	obj string // vrsniff-<name>
	t   template
}

// Template returns the HOT template for o as YAML.
func Template(o Options) ([]byte, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	s := &o.Mirror
	b := &builder{o: o, si: s.Kind == provision.KindServiceInstance, obj: provision.Prefix + s.Name, t: template{
		Version: "2016-10-14",
		Description: fmt.Sprintf("vrsniff: a sniffer VM running vrsniff capture, mirrored to by %s, for %s.",
			map[provision.Kind]string{provision.KindPolicy: "IP address", provision.KindServiceInstance: "an analyzer service instance"}[s.Kind],
			map[string]string{
				TargetNetwork:    "an existing network (attach with the mirror_create_command output)",
				TargetPort:       "a workload port the stack creates",
				TargetNewNetwork: "a network the stack creates",
			}[o.Target]),
		Parameters: map[string]param{},
		Resources:  map[string]resource{},
		Outputs:    map[string]output{},
	}}
	b.t.Parameters["project_fq_name"] = param{Type: "string", Description: "domain:project that owns the Contrail objects",
		Default: opt(strings.Join(s.Project, ":")), Constraints: pattern(projectPattern, "domain:project")}
	if o.Target != TargetNewNetwork {
		b.t.Parameters["target_network"] = param{Type: "string",
			Description: "network to mirror: its UUID or full fq_name domain:project:name (a bare name is refused)",
			Default:     opt(s.VN), Constraints: pattern(objectPattern, "a UUID or domain:project:name")}
	}
	if !b.si {
		b.t.Parameters["udp_port"] = param{Type: "number", Description: "UDP port of the mirrored datagrams",
			Default:     mirror.DefaultPort,
			Constraints: []any{map[string]any{"range": map[string]int{"min": 1, "max": 65535}}}}
	}

	if o.Target == TargetNewNetwork {
		b.newNetwork()
	}
	b.analyzer()
	switch o.Target {
	case TargetNetwork:
		b.commands()
	case TargetPort:
		b.workloadPort()
	}
	if err := b.sniffer(); err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(b.t); err != nil {
		return nil, fmt.Errorf("encode heat template: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode heat template: %w", err)
	}
	return buf.Bytes(), nil
}

// unique is a name that no other stack uses, for objects whose fq_name is
// global (instance IPs) or domain-wide (service templates). The plugin
// would otherwise rename an object whose name is taken, silently.
func unique(name string) any {
	return listJoin("-", []any{name, getParam("OS::stack_id")})
}

// analyzerName is mirror_to's analyzer_name: the key of the vRouters' mirror
// table, cluster-wide, so domain:project:vrsniff-<name> (the service
// instance's fq_name in service-instance mode).
func (b *builder) analyzerName() any {
	if b.si {
		return listJoin(":", getAttr("service_instance", "fq_name"))
	}
	return listJoin(":", []any{getParam("project_fq_name"), b.obj})
}

// analyzerIP is the capture port's address (policy mode).
func (b *builder) analyzerIP() any {
	if b.o.Target == TargetNewNetwork {
		return getParam("capture_address")
	}
	return getAttr("capture_port", "fixed_ips", 0, "ip_address")
}

// mirrorTo returns the mirror_to map with its keys prefixed by pfx.
func (b *builder) mirrorTo(pfx string) map[string]any {
	m := map[string]any{pfx + "analyzer_name": b.analyzerName()}
	if !b.si {
		m[pfx+"analyzer_ip_address"] = b.analyzerIP()
		m[pfx+"udp_port"] = getParam("udp_port")
	}
	return m
}

// analyzer adds the sniffer's capture port and, in service-instance mode,
// the analyzer objects around it.
func (b *builder) analyzer() {
	p, r := b.t.Parameters, b.t.Resources
	if !b.si {
		if b.o.Target == TargetNewNetwork {
			// The analyzer must be routable in the mirrored network, and a
			// new network is connected to none: the capture port sits in it.
			// Policy is disabled on the port, so the mirrored datagrams
			// arriving there make no flow that the network's mirror rule
			// would mirror again. The address is a parameter because the
			// policy needs it before the network (and so the port) exists.
			p["capture_address"] = param{Type: "string", Description: "the capture port's address in target_cidr (the vRouters mirror to it)",
				Constraints: append(pattern(ipv4Pattern, "an IPv4 address"), map[string]any{"custom_constraint": "ip_addr"})}
			r["capture_port"] = resource{Type: "OS::ContrailV2::VirtualMachineInterface", Properties: map[string]any{
				"name":                 b.obj + "-capture",
				"project":              getParam("project_fq_name"),
				"virtual_network_refs": []any{getRes("mirrored_network")},
				"virtual_machine_interface_disable_policy": true,
			}}
			r["capture_ip"] = resource{Type: "OS::ContrailV2::InstanceIp", Properties: map[string]any{
				"name":                           unique(b.obj + "-capture"),
				"instance_ip_address":            getParam("capture_address"),
				"virtual_machine_interface_refs": []any{getRes("capture_port")},
				"virtual_network_refs":           []any{getRes("mirrored_network")},
			}}
		} else {
			p["analyzer_network"] = param{Type: "string",
				Description: "network of the sniffer's capture interface (name or UUID); it must be routable from the mirrored network"}
			r["capture_port"] = resource{Type: "OS::Neutron::Port", Properties: map[string]any{
				"name":                  b.obj + "-capture",
				"network":               getParam("analyzer_network"),
				"port_security_enabled": false,
			}}
		}
		b.t.Outputs["analyzer_ip"] = output{Description: "address the vRouters mirror to (the capture port)", Value: b.analyzerIP()}
		return
	}

	p["analyzer_network"] = param{Type: "string",
		Description: "network of the analyzer's left interface, the sniffer's capture port: domain:project:name",
		Constraints: pattern(fqNamePattern, "domain:project:name")}
	stp := "service_template_properties_"
	r["service_template"] = resource{Type: "OS::ContrailV2::ServiceTemplate", Properties: map[string]any{
		"name":   unique(b.obj),
		"domain": strSplit(":", getParam("project_fq_name"), 0),
		"service_template_properties": map[string]any{
			stp + "version":                     2,
			stp + "service_mode":                "transparent",
			stp + "service_type":                "analyzer",
			stp + "service_virtualization_type": "virtual-machine",
			stp + "interface_type": []any{
				map[string]any{stp + "interface_type_service_interface_type": "left"},
			},
		},
	}}
	sip := "service_instance_properties_"
	r["service_instance"] = resource{Type: "OS::ContrailV2::ServiceInstance", Properties: map[string]any{
		"name":                  b.obj,
		"project":               getParam("project_fq_name"),
		"service_template_refs": []any{getRes("service_template")},
		"service_instance_properties": map[string]any{
			sip + "interface_list": []any{
				map[string]any{sip + "interface_list_virtual_network": getParam("analyzer_network")},
			},
		},
	}}
	r["port_tuple"] = resource{Type: "OS::ContrailV2::PortTuple", Properties: map[string]any{
		"name":             b.obj + "-tuple",
		"service_instance": getRes("service_instance"),
	}}
	r["capture_port"] = resource{Type: "OS::ContrailV2::VirtualMachineInterface", Properties: map[string]any{
		"name":                 b.obj + "-left",
		"project":              getParam("project_fq_name"),
		"virtual_network_refs": []any{getParam("analyzer_network")},
		"port_tuple_refs":      []any{getRes("port_tuple")},
		"virtual_machine_interface_properties": map[string]any{
			"virtual_machine_interface_properties_service_interface_type": "left",
		},
	}}
	r["capture_ip"] = resource{Type: "OS::ContrailV2::InstanceIp", Properties: map[string]any{
		"name":                           unique(b.obj + "-left"),
		"virtual_machine_interface_refs": []any{getRes("capture_port")},
		"virtual_network_refs":           []any{getParam("analyzer_network")},
	}}
	b.t.Outputs["analyzer_service_instance"] = output{
		Description: "fq_name of the analyzer service instance; the schema transformer fills in its address",
		Value:       b.analyzerName()}
}

// commands outputs the commands that attach the mirror to the existing
// network, and detach it before the stack is deleted.
func (b *builder) commands() {
	create := "vrsniff mirror create --name " + b.o.Mirror.Name + " --vn '__TARGET__' "
	params := map[string]any{"__TARGET__": getParam("target_network"), "__PROJECT__": getParam("project_fq_name")}
	if !b.si {
		create += "--analyzer-ip __IP__ --udp-port __PORT__"
		params["__IP__"] = b.analyzerIP()
		params["__PORT__"] = getParam("udp_port")
	} else {
		create += "--analyzer-si '__ANALYZER__'"
		params["__ANALYZER__"] = b.analyzerName()
	}
	create += " --project '__PROJECT__'"
	b.t.Outputs["mirror_create_command"] = output{
		Description: "run it once the sniffer is up: it attaches a dynamic, mirror-only policy to target_network",
		Value:       strReplace(create, params)}
	b.t.Outputs["mirror_delete_command"] = output{
		Description: "run it before deleting the stack",
		Value: strReplace("vrsniff mirror delete --project '__PROJECT__' "+b.o.Mirror.Name,
			map[string]any{"__PROJECT__": getParam("project_fq_name")})}
}

// workloadPort adds a port on target_network whose traffic is mirrored by
// interface_mirror. Contrail lets a port without security groups pass
// everything, so it gets one, the project's default by default.
func (b *builder) workloadPort() {
	p := b.t.Parameters
	p["traffic_direction"] = param{Type: "string", Default: "both",
		Description: "what the workload port mirrors: ingress (what the VM sends), egress (what it receives) or both",
		Constraints: []any{map[string]any{"allowed_values": []string{"ingress", "egress", "both"}}}}
	var sgDefault any
	if p := b.o.Mirror.Project; p != nil {
		sgDefault = strings.Join(p, ":") + ":default"
	}
	p["workload_security_group"] = param{Type: "string", Default: sgDefault,
		Description: "security group of the workload port: UUID or domain:project:name",
		Constraints: pattern(objectPattern, "a UUID or domain:project:name")}
	im := "virtual_machine_interface_properties_interface_mirror_"
	b.t.Resources["workload_port"] = resource{Type: "OS::ContrailV2::VirtualMachineInterface", Properties: map[string]any{
		"name":                 b.obj + "-workload",
		"project":              getParam("project_fq_name"),
		"virtual_network_refs": []any{getParam("target_network")},
		"security_group_refs":  []any{getParam("workload_security_group")},
		"virtual_machine_interface_properties": map[string]any{
			"virtual_machine_interface_properties_interface_mirror": map[string]any{
				im + "traffic_direction": getParam("traffic_direction"),
				im + "mirror_to":         b.mirrorTo(im + "mirror_to_"),
			},
		},
	}}
	b.t.Resources["workload_ip"] = resource{Type: "OS::ContrailV2::InstanceIp", Properties: map[string]any{
		"name":                           unique(b.obj + "-workload"),
		"virtual_machine_interface_refs": []any{getRes("workload_port")},
		"virtual_network_refs":           []any{getParam("target_network")},
	}}
	b.t.Outputs["workload_port"] = output{Description: "UUID of the mirrored port: boot the workload on it (openstack server create --nic port-id=...)",
		Value: getRes("workload_port")}
	b.t.Outputs["workload_address"] = output{Description: "address of the mirrored port", Value: getAttr("workload_ip", "instance_ip_address")}
}

// newNetwork adds the mirrored network and its mirror-only policy. The
// reference carries a timer, which makes the policy dynamic; its rule
// names the network "local", since the policy exists before the network
// does. Both as the schema transformer reads them (tf-controller,
// schema_transformer/resources/virtual_network.py: a reference whose timer
// is not None goes to the "dynamic" ACL; "local" stands for the network
// the policy is attached to).
func (b *builder) newNetwork() {
	p := b.t.Parameters
	p["target_network_name"] = param{Type: "string", Description: "name of the network the stack creates and mirrors",
		Default: b.obj + "-net"}
	p["target_cidr"] = param{Type: "string", Description: "its IPv4 subnet, e.g. 192.168.50.0/24",
		Constraints: append(pattern(ipv4Pattern+`/[0-9]{1,2}`, "an IPv4 prefix"), map[string]any{"custom_constraint": "net_cidr"})}
	p["network_ipam"] = param{Type: "string", Description: "IPAM of the subnet: UUID or domain:project:name",
		Default:     "default-domain:default-project:default-network-ipam",
		Constraints: pattern(objectPattern, "a UUID or domain:project:name")}

	rp := "network_policy_entries_policy_rule_"
	b.t.Resources["mirror_policy"] = resource{Type: "OS::ContrailV2::NetworkPolicy", Properties: map[string]any{
		"name":    b.obj,
		"project": getParam("project_fq_name"),
		"network_policy_entries": map[string]any{
			"network_policy_entries_policy_rule": []any{map[string]any{
				rp + "direction":     "<>",
				rp + "protocol":      "any",
				rp + "ethertype":     "IPv4",
				rp + "src_addresses": []any{map[string]any{rp + "src_addresses_virtual_network": "local"}},
				rp + "src_ports":     []any{map[string]any{rp + "src_ports_start_port": -1, rp + "src_ports_end_port": -1}},
				rp + "dst_addresses": []any{map[string]any{rp + "dst_addresses_virtual_network": "any"}},
				rp + "dst_ports":     []any{map[string]any{rp + "dst_ports_start_port": -1, rp + "dst_ports_end_port": -1}},
				// No simple_action: a mirror-only rule.
				rp + "action_list": map[string]any{
					rp + "action_list_mirror_to": b.mirrorTo(rp + "action_list_mirror_to_"),
				},
			}},
		},
	}}
	ipam := "network_ipam_refs_data_ipam_subnets_"
	b.t.Resources["mirrored_network"] = resource{Type: "OS::ContrailV2::VirtualNetwork", Properties: map[string]any{
		"name":              getParam("target_network_name"),
		"project":           getParam("project_fq_name"),
		"network_ipam_refs": []any{getParam("network_ipam")},
		"network_ipam_refs_data": []any{map[string]any{
			"network_ipam_refs_data_ipam_subnets": []any{map[string]any{
				ipam + "subnet": map[string]any{
					ipam + "subnet_ip_prefix":     strSplit("/", getParam("target_cidr"), 0),
					ipam + "subnet_ip_prefix_len": strSplit("/", getParam("target_cidr"), 1),
				},
			}},
		}},
		"network_policy_refs": []any{getRes("mirror_policy")},
		"network_policy_refs_data": []any{map[string]any{
			"network_policy_refs_data_sequence": map[string]any{
				"network_policy_refs_data_sequence_major": 0,
				"network_policy_refs_data_sequence_minor": 0,
			},
			// Any timer, even an empty one, makes the reference dynamic; the
			// plugin sets it whenever the map is present.
			"network_policy_refs_data_timer": map[string]any{},
		}},
	}}
	b.t.Outputs["target_network"] = output{Description: "UUID of the mirrored network: boot workloads on it",
		Value: getRes("mirrored_network")}
	b.t.Outputs["target_network_fq_name"] = output{Description: "fq_name of the mirrored network",
		Value: listJoin(":", getAttr("mirrored_network", "fq_name"))}
}

// sniffer adds the VM, its management port and the outputs that reach it.
func (b *builder) sniffer() error {
	o, p := b.o, b.t.Parameters
	p["image"] = param{Type: "string", Description: "Glance image of the sniffer VM (a cloud-init enabled Linux)", Default: opt(o.Image)}
	p["flavor"] = param{Type: "string", Description: "Nova flavor of the sniffer VM", Default: opt(o.Flavor)}
	p["key_name"] = param{Type: "string", Description: "Nova keypair for ssh access to the sniffer VM"}
	p["ssh_public_key"] = param{Type: "string", Description: "extra ssh public key that cloud-init authorizes"}
	p["mgmt_network"] = param{Type: "string", Description: "network of the sniffer's management interface (ssh, HTTP, binary download): name or UUID"}
	p["capture_interface"] = param{Type: "string", Description: "the sniffer's capture interface inside the VM (its second one)", Default: "eth1"}
	p["vrsniff_url"] = param{Type: "string", Description: "URL of the vrsniff binary (linux/amd64)", Default: opt(o.VrsniffURL)}
	p["vrsniff_sha256"] = param{Type: "string", Description: "SHA-256 of the binary at vrsniff_url (its line in the release's SHA256SUMS); the VM refuses a binary that differs",
		Default: opt(o.VrsniffSHA256), Constraints: pattern(sha256Pattern, "64 hexadecimal digits")}
	p["vrsniff_token"] = param{Type: "string", Description: "bearer token for the sniffer's HTTP interface", Hidden: true,
		// vrsniff capture refuses a shorter one (a service that would not start).
		Constraints: []any{map[string]any{"length": map[string]int{"min": secret.MinTokenLen},
			"description": fmt.Sprintf("at least %d characters", secret.MinTokenLen)}}}

	cc, err := cloudConfig()
	if err != nil {
		return err
	}
	var udpPort any = mirror.DefaultPort // the port the vRouters use for a service instance
	if !b.si {
		udpPort = getParam("udp_port")
	}
	b.t.Resources["mgmt_port"] = resource{Type: "OS::Neutron::Port", Properties: map[string]any{
		"name":    b.obj + "-mgmt",
		"network": getParam("mgmt_network"),
	}}
	server := resource{Type: "OS::Nova::Server", Properties: map[string]any{
		"name":     b.obj,
		"image":    getParam("image"),
		"flavor":   getParam("flavor"),
		"key_name": getParam("key_name"),
		// The capture port second: capture_interface names it.
		"networks":         []any{map[string]any{"port": getRes("mgmt_port")}, map[string]any{"port": getRes("capture_port")}},
		"user_data_format": "RAW",
		"user_data": strReplace(cc, map[string]any{
			phSSHKey:  getParam("ssh_public_key"),
			phToken:   getParam("vrsniff_token"),
			phURL:     getParam("vrsniff_url"),
			phSHA256:  getParam("vrsniff_sha256"),
			phIface:   getParam("capture_interface"),
			phUDPPort: udpPort,
		}),
	}}
	if _, ok := b.t.Resources["capture_ip"]; ok {
		// A Contrail port gets its address from the instance IP: boot
		// after it exists, or DHCP has nothing to give.
		server.DependsOn = []string{"capture_ip"}
	}
	b.t.Resources["sniffer"] = server

	port, err := httpPort()
	if err != nil {
		return err
	}
	b.t.Outputs["sniffer_address"] = output{Description: "addresses of the sniffer VM, per network",
		Value: getAttr("sniffer", "addresses")}
	b.t.Outputs["sniffer_url"] = output{Description: "the sniffer's HTTP API (bearer token: vrsniff_token)",
		Value: strReplace("http://__HOST__:"+port+"/",
			map[string]any{"__HOST__": getAttr("mgmt_port", "fixed_ips", 0, "ip_address")})}
	return nil
}
