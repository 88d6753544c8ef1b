package fakeapi

import (
	"encoding/json"
	"strconv"
)

// Rule is one entry of a compiled ACL (AclRuleType): what the schema
// transformer writes into a VN's access-control-list children and the
// vRouter agent matches flows against. Empty strings stand for the JSON
// nulls of the real objects.
type Rule struct {
	// RuleUUID is the policy rule's rule_uuid, or ImplicitAllow /
	// ImplicitDeny for the rules the compiler adds.
	RuleUUID string
	// Direction is ">" or "<>" as in the policy rule; "" (null) for the
	// implicit pass and deny-all rules.
	Direction string
	Match     Match
	Action    Action
}

// The fixed rule_uuid values of the schema transformer's implicit rules.
const (
	ImplicitAllow = "00000000-0000-0000-0000-100000000001"
	ImplicitDeny  = "00000000-0000-0000-0000-100000000002"
)

// Match is a rule's match_condition.
type Match struct {
	// Protocol is "any" or an IP protocol number ("6"): the compiler turns
	// names into numbers.
	Protocol         string
	Src, Dst         Address
	SrcPort, DstPort Ports
	// Ethertype is "IPv4", "IPv6" or "" (null: both). The schema
	// transformer never sets it.
	Ethertype string
}

// Address is an AddressType: a VN ("any" included), subnets, or both.
type Address struct {
	VirtualNetwork string // fq_name string, "any", or ""
	Subnet         *Subnet
	SubnetList     []Subnet
	SecurityGroup  string
	NetworkPolicy  string
}

// Subnet is a SubnetType.
type Subnet struct {
	Prefix string
	Len    int
}

// Ports is a PortType range; -1..-1 is any port. The implicit rules use
// 0..65535.
type Ports struct {
	Start, End int
}

// Action is a rule's action_list as the compiler writes it.
type Action struct {
	// SimpleAction is "pass", "deny", or "" for a mirror-only rule.
	SimpleAction          string
	Mirror                *Mirror
	ApplyService          []string
	GatewayName           string
	AssignRoutingInstance string
	QosAction             string
	Log, Alert            bool
	HostBasedService      bool
	ServiceProperties     any
}

// Mirror is a MirrorActionType. The compiler fills JuniperHeader (true)
// and NICAssisted (false) when the policy left them out, and AnalyzerIP
// from the service instance's shared IP when AnalyzerName names one.
type Mirror struct {
	AnalyzerName    string
	Encapsulation   string
	AnalyzerIP      string
	AnalyzerMAC     string
	RoutingInstance string
	UDPPort         int // 0: not set (null)
	JuniperHeader   bool
	NHMode          string
	StaticNH        *StaticNH
	NICAssisted     bool
	NICAssistedVLAN *int
}

// StaticNH is a StaticMirrorNhType.
type StaticNH struct {
	VTEPDstIP  string
	VTEPDstMAC string
	VNI        int // 0: not set
}

func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (a Address) api() omap {
	var sub any
	if a.Subnet != nil {
		sub = a.Subnet.api()
	}
	l := []any{}
	for _, s := range a.SubnetList {
		l = append(l, s.api())
	}
	return omap{{"subnet", sub}, {"virtual_network", null(a.VirtualNetwork)}, {"security_group", null(a.SecurityGroup)},
		{"network_policy", null(a.NetworkPolicy)}, {"subnet_list", l}}
}

func (s Subnet) api() omap { return omap{{"ip_prefix", s.Prefix}, {"ip_prefix_len", s.Len}} }

func (p Ports) api() omap { return omap{{"start_port", p.Start}, {"end_port", p.End}} }

func (m *Mirror) api() any {
	if m == nil {
		return nil
	}
	var nh any
	if m.StaticNH != nil {
		var vni any
		if m.StaticNH.VNI != 0 {
			vni = m.StaticNH.VNI
		}
		nh = omap{{"vtep_dst_ip_address", null(m.StaticNH.VTEPDstIP)}, {"vtep_dst_mac_address", null(m.StaticNH.VTEPDstMAC)}, {"vni", vni}}
	}
	var port, vlan any
	if m.UDPPort != 0 {
		port = m.UDPPort
	}
	if m.NICAssistedVLAN != nil {
		vlan = *m.NICAssistedVLAN
	}
	return omap{{"analyzer_name", null(m.AnalyzerName)}, {"encapsulation", null(m.Encapsulation)},
		{"analyzer_ip_address", null(m.AnalyzerIP)}, {"analyzer_mac_address", null(m.AnalyzerMAC)},
		{"routing_instance", null(m.RoutingInstance)}, {"udp_port", port}, {"juniper_header", m.JuniperHeader},
		{"nh_mode", null(m.NHMode)}, {"static_nh_header", nh}, {"nic_assisted_mirroring", m.NICAssisted},
		{"nic_assisted_mirroring_vlan", vlan}}
}

func (a Action) api() omap {
	svc := []any{}
	for _, s := range a.ApplyService {
		svc = append(svc, s)
	}
	return omap{{"simple_action", null(a.SimpleAction)}, {"gateway_name", null(a.GatewayName)}, {"apply_service", svc},
		{"service_properties", a.ServiceProperties}, {"mirror_to", a.Mirror.api()},
		{"assign_routing_instance", null(a.AssignRoutingInstance)}, {"log", a.Log}, {"alert", a.Alert},
		{"qos_action", null(a.QosAction)}, {"host_based_service", a.HostBasedService}}
}

// api renders the rule as the real ACL object holds it.
func (r Rule) api() omap {
	m := r.Match
	return omap{
		{"match_condition", omap{{"protocol", m.Protocol}, {"src_address", m.Src.api()}, {"src_port", m.SrcPort.api()},
			{"dst_address", m.Dst.api()}, {"dst_port", m.DstPort.api()}, {"ethertype", null(m.Ethertype)}}},
		{"action_list", r.Action.api()},
		{"rule_uuid", r.RuleUUID},
		{"direction", null(r.Direction)},
	}
}

// MarshalJSON writes the rule in the real ACL object's shape.
func (r Rule) MarshalJSON() ([]byte, error) { return pyJSON(r.api()), nil }

func getStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func getInt(m map[string]any, k string) (int, bool) {
	n, ok := pyInt(m[k])
	if _, isBool := m[k].(bool); isBool || m[k] == nil {
		ok = false
	}
	return int(n), ok
}

func getMap(m map[string]any, k string) map[string]any {
	v, _ := m[k].(map[string]any)
	return v
}

func parseSubnet(v any) *Subnet {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	n, _ := getInt(m, "ip_prefix_len")
	return &Subnet{Prefix: getStr(m, "ip_prefix"), Len: n}
}

func parseAddress(m map[string]any) Address {
	a := Address{VirtualNetwork: getStr(m, "virtual_network"), SecurityGroup: getStr(m, "security_group"),
		NetworkPolicy: getStr(m, "network_policy"), Subnet: parseSubnet(m["subnet"])}
	l, _ := m["subnet_list"].([]any)
	for _, e := range l {
		if s := parseSubnet(e); s != nil {
			a.SubnetList = append(a.SubnetList, *s)
		}
	}
	return a
}

func parsePorts(m map[string]any) Ports {
	p := Ports{Start: -1, End: -1}
	if n, ok := getInt(m, "start_port"); ok {
		p.Start = n
	}
	if n, ok := getInt(m, "end_port"); ok {
		p.End = n
	}
	return p
}

// parseMirror reads a mirror_to as a vnc_api MirrorActionType holds it:
// juniper_header true and nic_assisted_mirroring false unless set.
func parseMirror(m map[string]any) *Mirror {
	if m == nil {
		return nil
	}
	mi := &Mirror{AnalyzerName: getStr(m, "analyzer_name"), Encapsulation: getStr(m, "encapsulation"),
		AnalyzerIP: getStr(m, "analyzer_ip_address"), AnalyzerMAC: getStr(m, "analyzer_mac_address"),
		RoutingInstance: getStr(m, "routing_instance"), NHMode: getStr(m, "nh_mode"), JuniperHeader: true}
	mi.UDPPort, _ = getInt(m, "udp_port")
	if b, ok := m["juniper_header"].(bool); ok {
		mi.JuniperHeader = b
	}
	if b, ok := m["nic_assisted_mirroring"].(bool); ok {
		mi.NICAssisted = b
	}
	if n, ok := getInt(m, "nic_assisted_mirroring_vlan"); ok {
		mi.NICAssistedVLAN = &n
	}
	if nh := getMap(m, "static_nh_header"); nh != nil {
		mi.StaticNH = &StaticNH{VTEPDstIP: getStr(nh, "vtep_dst_ip_address"), VTEPDstMAC: getStr(nh, "vtep_dst_mac_address")}
		mi.StaticNH.VNI, _ = getInt(nh, "vni")
	}
	return mi
}

func parseAction(m map[string]any) Action {
	a := Action{SimpleAction: getStr(m, "simple_action"), GatewayName: getStr(m, "gateway_name"),
		AssignRoutingInstance: getStr(m, "assign_routing_instance"), QosAction: getStr(m, "qos_action"),
		Mirror: parseMirror(getMap(m, "mirror_to")), ServiceProperties: m["service_properties"]}
	a.Log, _ = m["log"].(bool)
	a.Alert, _ = m["alert"].(bool)
	a.HostBasedService, _ = m["host_based_service"].(bool)
	l, _ := m["apply_service"].([]any)
	for _, e := range l {
		if s, ok := e.(string); ok {
			a.ApplyService = append(a.ApplyService, s)
		}
	}
	return a
}

// parseRule reads an ACL entry (acl_rule element) back.
func parseRule(m map[string]any) Rule {
	mc := getMap(m, "match_condition")
	return Rule{
		RuleUUID:  getStr(m, "rule_uuid"),
		Direction: getStr(m, "direction"),
		Match: Match{Protocol: getStr(mc, "protocol"), Src: parseAddress(getMap(mc, "src_address")),
			Dst: parseAddress(getMap(mc, "dst_address")), SrcPort: parsePorts(getMap(mc, "src_port")),
			DstPort: parsePorts(getMap(mc, "dst_port")), Ethertype: getStr(mc, "ethertype")},
		Action: parseAction(getMap(m, "action_list")),
	}
}

// entriesAPI renders an ACL's access_control_list_entries as stored.
func entriesAPI(dynamic bool, rules []Rule) map[string]any {
	l := []any{}
	for _, r := range rules {
		l = append(l, r.api())
	}
	var v map[string]any
	_ = json.Unmarshal(pyJSON(omap{{"dynamic", dynamic}, {"acl_rule", l}}), &v)
	return numbers(v).(map[string]any)
}

// numbers turns the float64s of encoding/json into json.Number, the form
// the server keeps numbers in.
func numbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	case float64:
		return json.Number(strconv.FormatFloat(v, 'f', -1, 64))
	}
	return v
}
