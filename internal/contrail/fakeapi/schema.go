package fakeapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// The schema is transcribed from tf-api-client's schema/vnc_cfg.xsd for
// the types mirroring touches, and validated the way the real server's
// _validate_props_in_request / _validate_complex_type do it
// (api_server.py): an unknown field inside a property is an error, a
// falsy value (null, false, 0, "", [], {}) is not looked at, an integer
// may come as a string or a float and is converted, ranges and
// enumerations are checked, booleans must be booleans, and the XSD's
// "required" is not enforced. Unknown top-level fields are ignored.

// kind is the XSD type of a field.
type kind int

const (
	kStr  kind = iota // xsd:string, maybe an enumeration
	kInt              // xsd:integer, maybe a range
	kBool             // xsd:boolean
	kSIT              // ServiceInterfaceType: management|left|right|other*
	kObj              // a complex type
	kAny              // not validated (types vrsniff never sends)
)

// shape is a field's type.
type shape struct {
	k      kind
	name   string // complex type name, for error messages
	fields map[string]*field
	enum   []string
	lo, hi int64 // kInt range when lo < hi
	subnet bool  // SubnetType: the prefix is checked and normalised
}

// field is a member of a complex type.
type field struct {
	sh      *shape
	array   bool // maxOccurs="unbounded": a JSON list
	since31 bool // added in 3.1: a 3.0 server does not know it
}

func str(enum ...string) *shape    { return &shape{k: kStr, enum: enum} }
func integer() *shape              { return &shape{k: kInt} }
func intRange(lo, hi int64) *shape { return &shape{k: kInt, lo: lo, hi: hi} }
func boolean() *shape              { return &shape{k: kBool} }
func anyv() *shape                 { return &shape{k: kAny} }
func one(sh *shape) *field         { return &field{sh: sh} }
func many(sh *shape) *field        { return &field{sh: sh, array: true} }
func v31(f *field) *field          { c := *f; c.since31 = true; return &c }
func complexType(name string, f map[string]*field) *shape {
	return &shape{k: kObj, name: name, fields: f}
}

var (
	subnetType = &shape{k: kObj, name: "SubnetType", subnet: true, fields: map[string]*field{
		"ip_prefix": one(str()), "ip_prefix_len": one(integer())}}

	staticNh = complexType("StaticMirrorNhType", map[string]*field{
		"vtep_dst_ip_address":  one(str()),
		"vtep_dst_mac_address": one(str()),
		"vni":                  one(intRange(1, 16777215)),
	})

	mirrorAction = complexType("MirrorActionType", map[string]*field{
		"analyzer_name":               one(str()),
		"encapsulation":               one(str()),
		"analyzer_ip_address":         one(str()),
		"analyzer_mac_address":        v31(one(str())),
		"routing_instance":            one(str()),
		"udp_port":                    one(integer()),
		"juniper_header":              v31(one(boolean())),
		"nh_mode":                     v31(one(str("dynamic", "static"))),
		"static_nh_header":            v31(one(staticNh)),
		"nic_assisted_mirroring":      v31(one(boolean())),
		"nic_assisted_mirroring_vlan": v31(one(intRange(0, 4094))),
	})

	actionList = complexType("ActionListType", map[string]*field{
		"simple_action":           one(str("deny", "pass")),
		"gateway_name":            one(str()),
		"apply_service":           many(str()),
		"service_properties":      one(anyv()),
		"mirror_to":               one(mirrorAction),
		"assign_routing_instance": one(str()),
		"log":                     one(boolean()),
		"alert":                   one(boolean()),
		"qos_action":              one(str()),
		"host_based_service":      one(boolean()),
	})

	addressType = complexType("AddressType", map[string]*field{
		"subnet":          one(subnetType),
		"virtual_network": one(str()),
		"security_group":  one(str()),
		"network_policy":  one(str()),
		"subnet_list":     many(subnetType),
	})

	portType = complexType("PortType", map[string]*field{
		"start_port": one(intRange(-1, 65535)), "end_port": one(intRange(-1, 65535))})

	sequenceType = complexType("SequenceType", map[string]*field{"major": one(integer()), "minor": one(integer())})

	policyRule = complexType("PolicyRuleType", map[string]*field{
		"rule_sequence": one(sequenceType),
		"rule_uuid":     one(str()),
		"direction":     one(str(">", "<>")),
		"protocol":      one(str()),
		"src_addresses": many(addressType),
		"src_ports":     many(portType),
		"application":   many(str()),
		"dst_addresses": many(addressType),
		"dst_ports":     many(portType),
		"action_list":   one(actionList),
		"ethertype":     one(str("IPv4", "IPv6")),
		"created":       one(str()),
		"last_modified": one(str()),
		"description":   one(str()),
	})

	policyEntries = complexType("PolicyEntriesType", map[string]*field{"policy_rule": many(policyRule)})

	keyValuePairs = complexType("KeyValuePairs", map[string]*field{
		"key_value_pair": many(keyValuePair)})
	keyValuePair = complexType("KeyValuePair", map[string]*field{"key": one(str()), "value": one(str())})

	idPerms = complexType("IdPermsType", map[string]*field{
		"permissions": one(complexType("PermType", map[string]*field{
			"owner": one(str()), "owner_access": one(intRange(0, 7)), "group": one(str()),
			"group_access": one(intRange(0, 7)), "other_access": one(intRange(0, 7))})),
		"uuid": one(complexType("UuidType", map[string]*field{
			"uuid_mslong": one(integer()), "uuid_lslong": one(integer())})),
		"enable":        one(boolean()),
		"created":       one(str()),
		"last_modified": one(str()),
		"description":   one(str()),
		"user_visible":  one(boolean()),
		"creator":       one(str()),
	})

	perms2 = complexType("PermType2", map[string]*field{
		"owner": one(str()), "owner_access": one(intRange(0, 7)), "global_access": one(intRange(0, 7)),
		"share": many(complexType("ShareType", map[string]*field{"tenant": one(str()), "tenant_access": one(intRange(0, 7))})),
	})

	vmiProperties = complexType("VirtualMachineInterfacePropertiesType", map[string]*field{
		"service_interface_type": one(&shape{k: kSIT}),
		"interface_mirror": one(complexType("InterfaceMirrorType", map[string]*field{
			"traffic_direction": one(str("ingress", "egress", "both")),
			"mirror_to":         one(mirrorAction),
		})),
		"local_preference":       one(integer()),
		"sub_interface_vlan_tag": one(integer()),
		"max_flows":              one(integer()),
	})

	serviceTemplateProperties = complexType("ServiceTemplateType", map[string]*field{
		"version":         one(integer()),
		"service_mode":    one(str("transparent", "in-network", "in-network-nat")),
		"service_type":    one(str("firewall", "analyzer", "source-nat", "loadbalancer")),
		"image_name":      one(str()),
		"service_scaling": one(boolean()),
		"interface_type": many(complexType("ServiceTemplateInterfaceType", map[string]*field{
			"service_interface_type": one(&shape{k: kSIT}), "shared_ip": one(boolean()), "static_route_enable": one(boolean())})),
		"flavor":                      one(str()),
		"ordered_interfaces":          one(boolean()),
		"service_virtualization_type": one(str("virtual-machine", "network-namespace", "vrouter-instance", "physical-device")),
		"availability_zone_enable":    one(boolean()),
		"vrouter_instance_type":       one(str()),
		"instance_data":               one(str()),
	})

	serviceInstanceProperties = complexType("ServiceInstanceType", map[string]*field{
		"auto_policy":                one(boolean()),
		"availability_zone":          one(str()),
		"management_virtual_network": one(str()),
		"left_virtual_network":       one(str()),
		"left_ip_address":            one(str()),
		"right_virtual_network":      one(str()),
		"right_ip_address":           one(str()),
		"interface_list": many(complexType("ServiceInstanceInterfaceType", map[string]*field{
			"virtual_network": one(str()), "ip_address": one(str()), "static_routes": one(anyv()),
			"allowed_address_pairs": one(anyv())})),
		"scale_out": one(complexType("ServiceScaleOutType", map[string]*field{
			"max_instances": one(integer()), "auto_scale": one(boolean())})),
		"ha_mode":                     one(str("active-active", "active-standby")),
		"virtual_router_id":           one(str()),
		"service_virtualization_type": one(str("virtual-machine", "network-namespace", "vrouter-instance", "physical-device")),
	})

	vnProperties = complexType("VirtualNetworkType", map[string]*field{
		"allow_transit":            one(boolean()),
		"network_id":               one(integer()),
		"vxlan_network_identifier": one(intRange(1, 16777215)),
		"forwarding_mode":          one(str()),
		"rpf":                      one(str()),
		"mirror_destination":       one(boolean()),
		"max_flows":                one(integer()),
		"mtu":                      one(integer()),
	})

	vnSubnets = complexType("VnSubnetsType", map[string]*field{
		"ipam_subnets": many(complexType("IpamSubnetType", map[string]*field{
			"subnet": one(subnetType), "default_gateway": one(str()), "dns_server_address": one(str()),
			"subnet_uuid": one(str()), "enable_dhcp": one(boolean()), "dns_nameservers": many(str()),
			"allocation_pools": one(anyv()), "addr_from_start": one(boolean()), "dhcp_option_list": one(anyv()),
			"host_routes": one(anyv()), "subnet_name": one(str()), "alloc_unit": one(integer()),
			"created": one(str()), "last_modified": one(str()), "subscriber_tag": one(str()),
			"vlan_tag": one(integer()), "dhcp_relay_server": many(str())})),
		"host_routes": one(anyv()),
	})

	timerType = complexType("TimerType", map[string]*field{
		"start_time": one(str()), "on_interval": one(str()), "off_interval": one(str()), "end_time": one(str())})

	vnPolicyAttr = complexType("VirtualNetworkPolicyType", map[string]*field{
		"sequence": one(sequenceType), "timer": one(timerType)})

	aclEntries = complexType("AclEntriesType", map[string]*field{
		"dynamic": one(boolean()),
		"acl_rule": many(complexType("AclRuleType", map[string]*field{
			"match_condition": one(complexType("MatchConditionType", map[string]*field{
				"protocol": one(str()), "src_address": one(addressType), "src_port": one(portType),
				"dst_address": one(addressType), "dst_port": one(portType), "ethertype": one(str("IPv4", "IPv6"))})),
			"action_list": one(actionList),
			"rule_uuid":   one(str()),
			"direction":   one(str(">", "<>")),
		})),
	})
)

// typeSchema describes one object type.
type typeSchema struct {
	parents  []string          // allowed parent types; "config-root" for top level
	props    map[string]*shape // properties beyond the common ones
	mapProps []string          // properties that are maps (KeyValuePairs keyed by key)
	refs     map[string]*shape // referred-to type → attr type (nil: the ref has no attr)
	// children in the order the real server checks them on delete;
	// derived children (made by the control plane) go with their parent.
	children []string
	derived  []string
}

var commonProps = map[string]*shape{
	"display_name": str(),
	"annotations":  keyValuePairs,
	"id_perms":     idPerms,
	"perms2":       perms2,
}

var schemas = map[string]*typeSchema{
	"domain": {parents: []string{"config-root"}, children: []string{"project", "service-template"}},
	"project": {parents: []string{"domain"},
		children: []string{"virtual-network", "service-instance", "network-policy", "virtual-machine-interface", "network-ipam"}},
	"virtual-network": {parents: []string{"project"},
		props: map[string]*shape{
			"virtual_network_properties": vnProperties, "virtual_network_network_id": integer(),
			"router_external": boolean(), "is_shared": boolean(), "is_provider_network": boolean(),
			"fabric_snat": boolean(), "route_target_list": anyv(),
			"mirror_destination": boolean(), "provider_properties": anyv(),
		},
		refs:    map[string]*shape{"network-policy": vnPolicyAttr, "network-ipam": vnSubnets, "virtual-network": nil},
		derived: []string{"access-control-list"},
	},
	"network-ipam": {parents: []string{"project"},
		props: map[string]*shape{"network_ipam_mgmt": anyv(), "ipam_subnets": anyv(), "ipam_subnet_method": str()}},
	"network-policy": {parents: []string{"project"},
		props: map[string]*shape{"network_policy_entries": policyEntries},
	},
	"virtual-machine": {parents: []string{"config-root"}},
	"virtual-machine-interface": {parents: []string{"project"},
		props: map[string]*shape{
			"virtual_machine_interface_properties":    vmiProperties,
			"virtual_machine_interface_mac_addresses": complexType("MacAddressesType", map[string]*field{"mac_address": many(str())}),
			"virtual_machine_interface_device_owner":  str(),
			"virtual_machine_interface_bindings":      keyValuePairs,
			"port_security_enabled":                   boolean(),
		},
		mapProps: []string{"virtual_machine_interface_bindings"},
		refs:     map[string]*shape{"virtual-network": nil, "virtual-machine": nil, "port-tuple": nil},
	},
	"instance-ip": {parents: []string{"config-root"},
		props: map[string]*shape{
			"instance_ip_address": str(), "instance_ip_family": str("v4", "v6"),
			"instance_ip_mode": str("active-active", "active-standby"), "instance_ip_secondary": boolean(),
			"service_instance_ip": boolean(), "subnet_uuid": str(),
		},
		refs: map[string]*shape{"virtual-network": nil, "virtual-machine-interface": nil, "network-ipam": nil},
	},
	"service-template": {parents: []string{"domain"},
		props: map[string]*shape{"service_template_properties": serviceTemplateProperties},
	},
	"service-instance": {parents: []string{"project"},
		props:    map[string]*shape{"service_instance_properties": serviceInstanceProperties},
		refs:     map[string]*shape{"service-template": nil},
		children: []string{"port-tuple"},
	},
	"port-tuple": {parents: []string{"service-instance"}},
	"access-control-list": {parents: []string{"virtual-network"},
		props: map[string]*shape{"access_control_list_entries": aclEntries, "access_control_list_hash": integer()},
	},
}

// typeName maps a type as a client may spell it (network-policy or
// network_policy) to the schema's, or "".
func typeName(t string) string {
	t = strings.ReplaceAll(t, "_", "-")
	if schemas[t] == nil {
		return ""
	}
	return t
}

func snake(t string) string { return strings.ReplaceAll(t, "-", "_") }

// className is how Python prints a generated class in error messages.
func className(name string) string {
	return "<class 'vnc_api.gen.resource_xsd." + name + "'>"
}

func (ts *typeSchema) prop(k string) *shape {
	if sh, ok := commonProps[k]; ok {
		return sh
	}
	return ts.props[k]
}

func (ts *typeSchema) isMap(k string) bool {
	return k == "annotations" || contains(ts.mapProps, k)
}

// propNames returns the type's properties in a fixed order.
func (ts *typeSchema) propNames() []string {
	var l []string
	for k := range commonProps {
		l = append(l, k)
	}
	for k := range ts.props {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}

// pyError is an error message as the real server words it (Python's
// messages start with capitals and quote values).
type pyError string

func (e pyError) Error() string { return string(e) }

func pyErrorf(format string, a ...any) error { return pyError(fmt.Sprintf(format, a...)) }

// truthy is Python's truth value of a decoded JSON value.
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case json.Number:
		f, err := v.Float64()
		return err != nil || f != 0
	case float64:
		return v != 0
	case int:
		return v != 0
	case int64:
		return v != 0
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// pyTypeName is Python's type name of a decoded JSON value.
func pyTypeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case json.Number:
		if isIntText(string(v)) {
			return "int"
		}
		return "float"
	case float64:
		return "float"
	case int, int64:
		return "int"
	case []any:
		return "list"
	}
	return "dict"
}

// validateProps checks the properties of a create or update body as the
// real server does, converting integers in place. op names the operation
// in the message ("create", "http_put"); raw is the body as sent, for the
// Python repr the message quotes.
func validateProps(ts *typeSchema, body map[string]any, raw omap, op string, v30 bool) error {
	for _, k := range ts.propNames() {
		sh := ts.prop(k)
		val := body[k]
		if !truthy(val) {
			continue
		}
		rv, _ := raw.get(k)
		if sh.k != kObj {
			c, err := validateSimple(k, sh, val)
			if err != nil {
				return errf(400, "Bad property in %s: Error validating property %s", op, err.Error())
			}
			body[k] = c
			continue
		}
		if _, ok := val.(map[string]any); !ok {
			return errf(400, "Bad property in %s: Error in property %s type %s value of %s ", op, k, className(sh.name), pyStr(rv))
		}
		if err := validateComplex(sh, val, v30); err != nil {
			return errf(400, "Bad property in %s: Error validating property %s value %s %s", op, k, pyRepr(rv), err.Error())
		}
	}
	return nil
}

// validateComplex is _validate_complex_type: body is a decoded JSON
// object (or null); integers are converted in place.
func validateComplex(sh *shape, body any, v30 bool) error {
	if body == nil || sh.k == kAny {
		return nil
	}
	m, ok := body.(map[string]any)
	if !ok {
		return pyErrorf("'%s' object has no attribute 'items'", pyTypeName(body))
	}
	for _, k := range sortedKeys(m) {
		f, ok := sh.fields[k]
		if !ok || (v30 && f.since31) {
			return pyErrorf("class %s does not have field %s", className(sh.name), k)
		}
		val := m[k]
		if !truthy(val) {
			continue
		}
		values := []any{val}
		if f.array {
			l, ok := val.([]any)
			if !ok {
				return pyErrorf("Field %s must be a list. Received value: %s", k, pyStr(val))
			}
			values = l
		}
		for i, item := range values {
			switch f.sh.k {
			case kObj:
				if f.sh.subnet {
					if err := validateSubnet(item); err != nil {
						return err
					}
				}
				if err := validateComplex(f.sh, item, v30); err != nil {
					return err
				}
			case kAny:
			default:
				c, err := validateSimple(k, f.sh, item)
				if err != nil {
					return err
				}
				values[i] = c
			}
		}
		if !f.array {
			m[k] = values[0]
		}
	}
	return nil
}

// validateSubnet is _validate_subnet_type: the prefix must parse, and is
// stored as the network address.
func validateSubnet(item any) error {
	m, ok := item.(map[string]any)
	if !ok {
		return pyErrorf("Subnet type is invalid")
	}
	p, ok1 := m["ip_prefix"]
	l, ok2 := m["ip_prefix_len"]
	if !ok1 {
		return pyErrorf("'ip_prefix'")
	}
	if !ok2 {
		return pyErrorf("'ip_prefix_len'")
	}
	cidr := pyStr(p) + "/" + pyStr(l)
	pfx, err := netip.ParsePrefix(cidr)
	if err != nil {
		return pyErrorf("Subnet type '%s' is invalid", cidr)
	}
	m["ip_prefix"] = pfx.Masked().Addr().String()
	m["ip_prefix_len"] = json.Number(strconv.Itoa(pfx.Bits()))
	return nil
}

// validateSimple is _validate_simple_type: it returns the value as stored.
func validateSimple(name string, sh *shape, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch sh.k {
	case kInt:
		n, ok := pyInt(v)
		if !ok {
			return nil, pyErrorf("%s: integer value expected instead of %s", name, pyStr(v))
		}
		if sh.lo < sh.hi && (n < sh.lo || n > sh.hi) {
			return nil, pyErrorf("%s: value must be between %d and %d", name, sh.lo, sh.hi)
		}
		if b, ok := v.(bool); ok {
			return b, nil // Python's bool is an int: kept as it came
		}
		return json.Number(strconv.FormatInt(n, 10)), nil
	case kBool:
		if _, ok := v.(bool); !ok {
			return nil, pyErrorf("%s: true/false expected instead of %s", name, pyStr(v))
		}
	case kSIT:
		s, ok := v.(string)
		if !ok {
			return nil, pyErrorf("expected string or bytes-like object")
		}
		if !contains([]string{"management", "left", "right"}, s) && !strings.HasPrefix(s, "other") {
			return nil, pyErrorf("Invalid service interface type %s. Valid values are: management|left|right|other[0-9]*", s)
		}
	case kStr:
		s, ok := v.(string)
		if !ok {
			return nil, pyErrorf("%s: string value expected instead of %s", name, pyStr(v))
		}
		if len(sh.enum) > 0 && !contains(sh.enum, s) {
			return nil, pyErrorf("%s: value must be one of %s", name, pyRepr(toAnyList(sh.enum)))
		}
	}
	return v, nil
}

// pyInt is Python's int() of a decoded JSON value: a float is truncated, a
// string is parsed.
func pyInt(v any) (int64, bool) {
	switch v := v.(type) {
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	case json.Number:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return n, true
		}
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1<<62 {
			return 0, false
		}
		return int64(f), true
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) || math.Abs(v) > 1<<62 {
			return 0, false
		}
		return int64(v), true
	case int:
		return int64(v), true
	case int64:
		return v, true
	case string:
		s := strings.TrimSpace(v)
		s = strings.TrimPrefix(s, "+")
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	return 0, false
}

func toAnyList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
