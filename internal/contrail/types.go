package contrail

import "encoding/json"

// The types below follow the xsd types of the config schema (vnc_cfg.xsd)
// that mirroring touches. Optional fields are pointers or omitempty so that
// an unset field is not sent at all: servers older than 3.1 reject fields
// they do not know (juniper_header, nh_mode, ...).

// Ref is a reference from one object to another.
type Ref struct {
	To   []string        `json:"to"`
	UUID string          `json:"uuid,omitempty"`
	Href string          `json:"href,omitempty"`
	Attr json.RawMessage `json:"attr,omitempty"`
}

// KeyValuePair is one annotation.
type KeyValuePair struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// KeyValuePairs is the annotations field.
type KeyValuePairs struct {
	KeyValuePair []KeyValuePair `json:"key_value_pair"`
}

// Get returns the value for key.
func (kv *KeyValuePairs) Get(key string) (string, bool) {
	if kv == nil {
		return "", false
	}
	for _, p := range kv.KeyValuePair {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// StaticMirrorNhType is the VXLAN destination of a static next-hop mirror.
type StaticMirrorNhType struct {
	VtepDstIPAddress  string `json:"vtep_dst_ip_address,omitempty"`
	VtepDstMACAddress string `json:"vtep_dst_mac_address,omitempty"`
	VNI               int    `json:"vni,omitempty"`
}

// MirrorActionType says where mirrored traffic goes.
type MirrorActionType struct {
	AnalyzerName             string              `json:"analyzer_name,omitempty"`
	Encapsulation            string              `json:"encapsulation,omitempty"`
	AnalyzerIPAddress        string              `json:"analyzer_ip_address,omitempty"`
	AnalyzerMACAddress       string              `json:"analyzer_mac_address,omitempty"`
	RoutingInstance          string              `json:"routing_instance,omitempty"`
	UDPPort                  int                 `json:"udp_port,omitempty"`
	JuniperHeader            *bool               `json:"juniper_header,omitempty"`
	NhMode                   string              `json:"nh_mode,omitempty"`
	StaticNhHeader           *StaticMirrorNhType `json:"static_nh_header,omitempty"`
	NicAssistedMirroring     *bool               `json:"nic_assisted_mirroring,omitempty"`
	NicAssistedMirroringVlan int                 `json:"nic_assisted_mirroring_vlan,omitempty"`
}

// ActionListType is a policy rule's action.
type ActionListType struct {
	// SimpleAction is pass or deny; empty in a mirror-only rule, which
	// changes nothing about what is allowed.
	SimpleAction string            `json:"simple_action,omitempty"`
	MirrorTo     *MirrorActionType `json:"mirror_to,omitempty"`
	ApplyService []string          `json:"apply_service,omitempty"`
	Log          *bool             `json:"log,omitempty"`
}

// SubnetType is an IP prefix.
type SubnetType struct {
	IPPrefix    string `json:"ip_prefix"`
	IPPrefixLen int    `json:"ip_prefix_len"`
}

// AddressType is one side of a policy rule: exactly one field is set.
type AddressType struct {
	VirtualNetwork string      `json:"virtual_network,omitempty"`
	Subnet         *SubnetType `json:"subnet,omitempty"`
	NetworkPolicy  string      `json:"network_policy,omitempty"`
	SecurityGroup  string      `json:"security_group,omitempty"`
}

// PortType is a port range; -1/-1 means any.
type PortType struct {
	StartPort int `json:"start_port"`
	EndPort   int `json:"end_port"`
}

// AnyPort matches every port.
var AnyPort = PortType{StartPort: -1, EndPort: -1}

// PolicyRuleType is one rule of a network policy.
type PolicyRuleType struct {
	RuleUUID     string         `json:"rule_uuid,omitempty"`
	Direction    string         `json:"direction"`
	Protocol     string         `json:"protocol"`
	Ethertype    string         `json:"ethertype,omitempty"`
	SrcAddresses []AddressType  `json:"src_addresses"`
	SrcPorts     []PortType     `json:"src_ports"`
	DstAddresses []AddressType  `json:"dst_addresses"`
	DstPorts     []PortType     `json:"dst_ports"`
	ActionList   ActionListType `json:"action_list"`
}

// PolicyEntriesType holds a policy's rules.
type PolicyEntriesType struct {
	PolicyRule []PolicyRuleType `json:"policy_rule"`
}

// SequenceType orders the policies attached to a network.
type SequenceType struct {
	Major int `json:"major"`
	Minor int `json:"minor"`
}

// VirtualNetworkPolicyType is the attribute of a network → policy reference.
type VirtualNetworkPolicyType struct {
	Sequence *SequenceType   `json:"sequence,omitempty"`
	Timer    json.RawMessage `json:"timer,omitempty"`
}

// InterfaceMirrorType is port mirroring on a VM interface.
type InterfaceMirrorType struct {
	TrafficDirection string           `json:"traffic_direction"`
	MirrorTo         MirrorActionType `json:"mirror_to"`
}

// ServiceTemplateInterfaceType names one interface of a service template.
type ServiceTemplateInterfaceType struct {
	ServiceInterfaceType string `json:"service_interface_type"`
}

// ServiceTemplateType is a service template's properties.
type ServiceTemplateType struct {
	Version                   int                            `json:"version,omitempty"`
	ServiceMode               string                         `json:"service_mode,omitempty"`
	ServiceType               string                         `json:"service_type,omitempty"`
	ServiceVirtualizationType string                         `json:"service_virtualization_type,omitempty"`
	InterfaceType             []ServiceTemplateInterfaceType `json:"interface_type,omitempty"`
}

// ServiceInstanceInterfaceType is one interface of a service instance.
type ServiceInstanceInterfaceType struct {
	VirtualNetwork string `json:"virtual_network"`
	IPAddress      string `json:"ip_address,omitempty"`
}

// ServiceInstanceType is a service instance's properties.
type ServiceInstanceType struct {
	InterfaceList []ServiceInstanceInterfaceType `json:"interface_list"`
	HAMode        string                         `json:"ha_mode,omitempty"`
}

// Common is the part every object shares.
type Common struct {
	UUID        string         `json:"uuid,omitempty"`
	FQName      []string       `json:"fq_name,omitempty"`
	ParentType  string         `json:"parent_type,omitempty"`
	ParentUUID  string         `json:"parent_uuid,omitempty"`
	DisplayName string         `json:"display_name,omitempty"`
	Annotations *KeyValuePairs `json:"annotations,omitempty"`
}

// MatchConditionType is what a compiled ACL rule matches: one address and
// one port range a side, unlike a policy rule's lists.
type MatchConditionType struct {
	Protocol   string      `json:"protocol"`
	SrcAddress AddressType `json:"src_address"`
	SrcPort    PortType    `json:"src_port"`
	DstAddress AddressType `json:"dst_address"`
	DstPort    PortType    `json:"dst_port"`
	Ethertype  string      `json:"ethertype,omitempty"`
}

// AclRuleType is one rule of a compiled access-control-list. RuleUUID is
// the policy rule's rule_uuid it came from, or one of the schema
// transformer's fixed UUIDs for its implicit rules.
type AclRuleType struct {
	RuleUUID       string             `json:"rule_uuid,omitempty"`
	Direction      string             `json:"direction,omitempty"`
	MatchCondition MatchConditionType `json:"match_condition"`
	ActionList     ActionListType     `json:"action_list"`
}

// AclEntriesType is an access-control-list's content: the VN's static ACL
// (Dynamic false, terminal first match) or its "dynamic" ACL (policies
// attached with a timer, evaluated first and non-terminally).
type AclEntriesType struct {
	Dynamic bool          `json:"dynamic"`
	AclRule []AclRuleType `json:"acl_rule"`
}
