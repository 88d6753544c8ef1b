package fakeapi

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
)

// kind is the JSON type a schema field takes.
type kind int

const (
	kStr   kind = iota
	kInt        // a JSON number without fraction
	kBool       // a JSON boolean (the API rejects "true")
	kIP         // a string holding an IPv4 or IPv6 address
	kProto      // any | tcp | udp | icmp | icmp6 | 0..255
	kObj
	kList
	kAny // opaque: accepted as sent
)

// shape is a field's schema, transcribed from vnc_cfg.xsd for the types
// that mirroring touches.
type shape struct {
	k        kind
	fields   map[string]*shape
	required []string
	elem     *shape
	enum     []string
	since31  bool // field added in 3.1: a 3.0 server rejects it
}

func str(enum ...string) *shape { return &shape{k: kStr, enum: enum} }
func integer() *shape           { return &shape{k: kInt} }
func boolean() *shape           { return &shape{k: kBool} }
func ip() *shape                { return &shape{k: kIP} }
func anyv() *shape              { return &shape{k: kAny} }
func list(e *shape) *shape      { return &shape{k: kList, elem: e} }
func obj(f map[string]*shape, req ...string) *shape {
	return &shape{k: kObj, fields: f, required: req}
}
func v31(s *shape) *shape { c := *s; c.since31 = true; return &c }

var (
	subnetType = obj(map[string]*shape{"ip_prefix": ip(), "ip_prefix_len": integer()}, "ip_prefix", "ip_prefix_len")

	staticNh = obj(map[string]*shape{
		"vtep_dst_ip_address":  ip(),
		"vtep_dst_mac_address": str(),
		"vni":                  integer(),
	})

	mirrorAction = obj(map[string]*shape{
		"analyzer_name":               str(),
		"encapsulation":               str(),
		"analyzer_ip_address":         ip(),
		"analyzer_mac_address":        v31(str()),
		"routing_instance":            str(),
		"udp_port":                    integer(),
		"juniper_header":              v31(boolean()),
		"nh_mode":                     v31(str("dynamic", "static")),
		"static_nh_header":            v31(staticNh),
		"nic_assisted_mirroring":      v31(boolean()),
		"nic_assisted_mirroring_vlan": v31(integer()),
	})

	actionList = obj(map[string]*shape{
		"simple_action":           str("pass", "deny"),
		"gateway_name":            str(),
		"apply_service":           list(str()),
		"mirror_to":               mirrorAction,
		"assign_routing_instance": str(),
		"log":                     boolean(),
		"alert":                   boolean(),
		"qos_action":              str(),
		"host_based_service":      boolean(),
	}, "simple_action")

	addressType = obj(map[string]*shape{
		"virtual_network": str(),
		"subnet":          subnetType,
		"network_policy":  str(),
		"security_group":  str(),
		"subnet_list":     list(subnetType),
	})

	portType = obj(map[string]*shape{"start_port": integer(), "end_port": integer()}, "start_port", "end_port")

	sequenceType = obj(map[string]*shape{"major": integer(), "minor": integer()}, "major", "minor")

	policyRule = obj(map[string]*shape{
		"rule_sequence": sequenceType,
		"rule_uuid":     str(),
		"direction":     str(">", "<>"),
		"protocol":      {k: kProto},
		"src_addresses": list(addressType),
		"src_ports":     list(portType),
		"application":   list(str()),
		"dst_addresses": list(addressType),
		"dst_ports":     list(portType),
		"action_list":   actionList,
		"ethertype":     str("IPv4", "IPv6"),
		"created":       str(),
		"last_modified": str(),
	}, "direction", "protocol", "src_addresses", "dst_addresses", "src_ports", "dst_ports", "action_list")

	keyValuePairs = obj(map[string]*shape{
		"key_value_pair": list(obj(map[string]*shape{"key": str(), "value": str()}, "key")),
	})

	idPerms = obj(map[string]*shape{
		"permissions":   anyv(),
		"uuid":          anyv(),
		"enable":        boolean(),
		"created":       str(),
		"last_modified": str(),
		"description":   str(),
		"user_visible":  boolean(),
		"creator":       str(),
	})

	vmiProperties = obj(map[string]*shape{
		"service_interface_type": str(),
		"interface_mirror": obj(map[string]*shape{
			"traffic_direction": str("ingress", "egress", "both"),
			"mirror_to":         mirrorAction,
		}, "traffic_direction", "mirror_to"),
		"local_preference":       integer(),
		"sub_interface_vlan_tag": integer(),
		"max_flows":              integer(),
	})

	serviceTemplateProperties = obj(map[string]*shape{
		"version":                     integer(),
		"service_mode":                str("transparent", "in-network", "in-network-nat"),
		"service_type":                str("firewall", "analyzer", "source-nat", "loadbalancer"),
		"image_name":                  str(),
		"service_scaling":             boolean(),
		"interface_type":              list(obj(map[string]*shape{"service_interface_type": str(), "shared_ip": boolean(), "static_route_enable": boolean()})),
		"flavor":                      str(),
		"ordered_interfaces":          boolean(),
		"service_virtualization_type": str("virtual-machine", "network-namespace", "vrouter-instance", "physical-device"),
		"availability_zone_enable":    boolean(),
		"vrouter_instance_type":       str(),
		"instance_data":               str(),
	})

	serviceInstanceProperties = obj(map[string]*shape{
		"auto_policy":                 boolean(),
		"availability_zone":           str(),
		"management_virtual_network":  str(),
		"left_virtual_network":        str(),
		"left_ip_address":             str(),
		"right_virtual_network":       str(),
		"right_ip_address":            str(),
		"interface_list":              list(obj(map[string]*shape{"virtual_network": str(), "ip_address": str(), "static_routes": anyv(), "allowed_address_pairs": anyv()})),
		"scale_out":                   obj(map[string]*shape{"max_instances": integer(), "auto_scale": boolean()}),
		"ha_mode":                     str("active-active", "active-standby"),
		"virtual_router_id":           str(),
		"service_virtualization_type": str(),
	})

	vnPolicyAttr = obj(map[string]*shape{"sequence": sequenceType, "timer": anyv()}, "sequence")
)

// typeSchema describes one object type.
type typeSchema struct {
	parents []string          // allowed parent types; "config-root" for top level
	props   map[string]*shape // properties beyond the common ones
	refs    map[string]*shape // referred-to type → attr shape (nil: no attr)
}

var commonProps = map[string]*shape{
	"display_name": str(),
	"annotations":  keyValuePairs,
	"id_perms":     idPerms,
	"perms2":       anyv(),
}

var schemas = map[string]*typeSchema{
	"domain":  {parents: []string{"config-root"}},
	"project": {parents: []string{"domain"}},
	"virtual-network": {parents: []string{"project"},
		props: map[string]*shape{"virtual_network_properties": anyv(), "router_external": boolean(), "is_shared": boolean()},
		refs:  map[string]*shape{"network-policy": vnPolicyAttr, "network-ipam": anyv()},
	},
	"network-ipam": {parents: []string{"project"}},
	"network-policy": {parents: []string{"project"},
		props: map[string]*shape{"network_policy_entries": obj(map[string]*shape{"policy_rule": list(policyRule)})},
	},
	"virtual-machine": {parents: []string{"config-root"}},
	"virtual-machine-interface": {parents: []string{"project"},
		props: map[string]*shape{
			"virtual_machine_interface_properties":    vmiProperties,
			"virtual_machine_interface_mac_addresses": obj(map[string]*shape{"mac_address": list(str())}),
			"virtual_machine_interface_device_owner":  str(),
			"port_security_enabled":                   boolean(),
		},
		refs: map[string]*shape{"virtual-network": nil, "virtual-machine": nil, "port-tuple": nil},
	},
	"service-template": {parents: []string{"domain"},
		props: map[string]*shape{"service_template_properties": serviceTemplateProperties},
	},
	"service-instance": {parents: []string{"project"},
		props: map[string]*shape{"service_instance_properties": serviceInstanceProperties},
		refs:  map[string]*shape{"service-template": nil},
	},
	"port-tuple": {parents: []string{"service-instance"}},
}

// validate checks v against s; v30 hides the fields a 3.0 server lacks.
func validate(v any, s *shape, path string, v30 bool) error {
	if v == nil {
		return nil
	}
	switch s.k {
	case kAny:
		return nil
	case kStr:
		x, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %s", path, jsonType(v))
		}
		if len(s.enum) > 0 && !contains(s.enum, x) {
			return fmt.Errorf("%s: %q is not one of %v", path, x, s.enum)
		}
	case kIP:
		x, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %s", path, jsonType(v))
		}
		if _, err := netip.ParseAddr(x); err != nil {
			return fmt.Errorf("%s: %q is not an IP address", path, x)
		}
	case kProto:
		x, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %s", path, jsonType(v))
		}
		if !contains([]string{"any", "tcp", "udp", "icmp", "icmp6"}, x) {
			if n, err := strconv.Atoi(x); err != nil || n < 0 || n > 255 {
				return fmt.Errorf("%s: bad protocol %q", path, x)
			}
		}
	case kInt:
		x, ok := v.(float64)
		if !ok || x != math.Trunc(x) {
			return fmt.Errorf("%s: want an integer, got %s", path, jsonType(v))
		}
	case kBool:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want a boolean, got %s", path, jsonType(v))
		}
	case kList:
		x, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want a list, got %s", path, jsonType(v))
		}
		for i, e := range x {
			if err := validate(e, s.elem, fmt.Sprintf("%s[%d]", path, i), v30); err != nil {
				return err
			}
		}
	case kObj:
		x, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %s", path, jsonType(v))
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := s.fields[k]
			if !ok || (v30 && f.since31) {
				return fmt.Errorf("%s: unknown field %q", path, k)
			}
			if err := validate(x[k], f, path+"."+k, v30); err != nil {
				return err
			}
		}
		for _, r := range s.required {
			if x[r] == nil {
				return fmt.Errorf("%s: field %q is required", path, r)
			}
		}
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "null"
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
