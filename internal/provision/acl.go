package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vrsniff/vrsniff/internal/contrail"
)

// network is what mirroring reads of a virtual network.
type network struct {
	UUID              string          `json:"uuid"`
	FQName            []string        `json:"fq_name"`
	PolicyRefs        []contrail.Ref  `json:"network_policy_refs"`
	ACLs              []contrail.Ref  `json:"access_control_lists"`
	IpamRefs          []ipamRef       `json:"network_ipam_refs"`
	IsProvider        bool            `json:"is_provider_network"`
	ProviderProps     json.RawMessage `json:"provider_properties"`
	FabricSNAT        bool            `json:"fabric_snat"`
	MirrorDestination bool            `json:"mirror_destination"`
	Ports             []contrail.Ref  `json:"virtual_machine_interface_back_refs"`
}

// networkFields names every field of network: a read with fields= returns
// nothing else, and back references and children (the ACLs, the ports)
// only when asked for.
var networkFields = []string{"fq_name", "network_policy_refs", "access_control_lists", "network_ipam_refs",
	"is_provider_network", "provider_properties", "fabric_snat", "mirror_destination", "virtual_machine_interface_back_refs"}

type ipamRef struct {
	To   []string `json:"to"`
	Attr *struct {
		IpamSubnets []struct {
			Subnet *contrail.SubnetType `json:"subnet"`
		} `json:"ipam_subnets"`
	} `json:"attr"`
}

func (p *Provisioner) readNetwork(ctx context.Context, id string) (*network, error) {
	var n network
	if err := p.API.ReadFields(ctx, "virtual-network", id, networkFields, &n); err != nil {
		return nil, fmt.Errorf("virtual-network %s: %w", id, err)
	}
	n.UUID = id
	return &n, nil
}

func (p *Provisioner) networkByFQ(ctx context.Context, fq string) (*network, error) {
	id, err := p.API.FQNameToID(ctx, "virtual-network", split(fq))
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", fq, err)
	}
	return p.readNetwork(ctx, id)
}

// provider reports whether the network is a provider or fabric-SNAT one:
// its built-in deny ACL goes as soon as any policy is attached.
func (n *network) provider() bool {
	return n.IsProvider || n.FabricSNAT || (len(n.ProviderProps) > 0 && string(n.ProviderProps) != "null")
}

func (n *network) subnets() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range n.IpamRefs {
		if r.Attr == nil {
			continue
		}
		for _, s := range r.Attr.IpamSubnets {
			if s.Subnet == nil {
				continue
			}
			if a, err := netip.ParseAddr(s.Subnet.IPPrefix); err == nil {
				if p, err := a.Prefix(s.Subnet.IPPrefixLen); err == nil {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// refAttr decodes a network → policy reference's attribute.
func refAttr(r contrail.Ref) contrail.VirtualNetworkPolicyType {
	var a contrail.VirtualNetworkPolicyType
	_ = json.Unmarshal(r.Attr, &a)
	return a
}

// dynamicRef reports whether a reference attaches its policy dynamically:
// a timer, any object, even {}, in the attribute.
func dynamicRef(r contrail.Ref) bool {
	t := refAttr(r).Timer
	return len(t) > 0 && string(t) != "null"
}

// acl is one compiled access-control-list of a network.
type acl struct {
	UUID    string
	Entries contrail.AclEntriesType
	raw     json.RawMessage // the entries as the server sent them
}

// compiled is what the schema transformer made of a network's policies:
// the static ACL (refs without timer; nil when the network has none) and
// the dynamic one (refs with a timer; nil when none).
type compiled struct {
	Static, Dynamic *acl
}

func (p *Provisioner) readACLs(ctx context.Context, n *network) (compiled, error) {
	var c compiled
	for _, r := range n.ACLs {
		var v struct {
			FQName  []string        `json:"fq_name"`
			Entries json.RawMessage `json:"access_control_list_entries"`
		}
		if err := p.API.ReadFields(ctx, "access-control-list", r.UUID, []string{"fq_name", "access_control_list_entries"}, &v); err != nil {
			if contrail.IsNotFound(err) {
				continue // recompiled away meanwhile
			}
			return c, fmt.Errorf("access-control-list %s: %w", r.UUID, err)
		}
		a := &acl{UUID: r.UUID, raw: v.Entries}
		if len(v.Entries) > 0 && string(v.Entries) != "null" {
			if err := json.Unmarshal(v.Entries, &a.Entries); err != nil {
				return c, fmt.Errorf("access-control-list %s: %w", r.UUID, err)
			}
		}
		if a.Entries.Dynamic || (len(v.FQName) > 0 && v.FQName[len(v.FQName)-1] == "dynamic") {
			c.Dynamic = a
		} else {
			c.Static = a
		}
	}
	return c, nil
}

// noStaticACL is the snapshot of a network without a static ACL.
const noStaticACL = "none"

// snapshot is the static ACL's entries in canonical JSON (keys sorted), or
// noStaticACL. Entries are compared, never access_control_list_hash,
// which the schema transformer computes per process.
func (c compiled) snapshot() string {
	if c.Static == nil {
		return noStaticACL
	}
	var v any
	if err := json.Unmarshal(c.Static.raw, &v); err != nil {
		return string(c.Static.raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// find returns the rule compiled from the policy rule ruleUUID, and its
// position.
func (a *acl) find(ruleUUID string) (*contrail.AclRuleType, int) {
	if a == nil || ruleUUID == "" {
		return nil, -1
	}
	for i := range a.Entries.AclRule {
		if a.Entries.AclRule[i].RuleUUID == ruleUUID {
			return &a.Entries.AclRule[i], i
		}
	}
	return nil, -1
}

// mirrorRules counts the rules of a that mirror, other than the ones
// compiled from the policy rules mine.
func (a *acl) mirrorRules(mine []string) int {
	if a == nil {
		return 0
	}
	n := 0
	for _, r := range a.Entries.AclRule {
		if r.ActionList.MirrorTo != nil && !slices.Contains(mine, r.RuleUUID) {
			n++
		}
	}
	return n
}

// shadows returns the rules before position i in the static ACL whose match
// holds every flow rule i matches: under first-match-wins, rule i never
// decides any of those flows.
func (a *acl) shadows(m contrail.MatchConditionType, dir string, before int) []contrail.AclRuleType {
	var out []contrail.AclRuleType
	for j := 0; j < before && j < len(a.Entries.AclRule); j++ {
		r := a.Entries.AclRule[j]
		if covers(r.MatchCondition, r.Direction, m, dir) {
			out = append(out, r)
		}
	}
	return out
}

// covers reports whether every flow that b (with direction bdir) matches
// is matched by a. A rule "<>" matches both orientations; anything else
// (">", or none for the implicit rules) one.
func covers(a contrail.MatchConditionType, adir string, b contrail.MatchConditionType, bdir string) bool {
	if !protoCovers(a.Protocol, b.Protocol) || (a.Ethertype != "" && a.Ethertype != b.Ethertype) {
		return false
	}
	one := func(src, dst contrail.AddressType, sp, dp contrail.PortType) bool {
		fwd := addrCovers(a.SrcAddress, src) && addrCovers(a.DstAddress, dst) && portCovers(a.SrcPort, sp) && portCovers(a.DstPort, dp)
		rev := adir == "<>" && addrCovers(a.SrcAddress, dst) && addrCovers(a.DstAddress, src) && portCovers(a.SrcPort, dp) && portCovers(a.DstPort, sp)
		return fwd || rev
	}
	if !one(b.SrcAddress, b.DstAddress, b.SrcPort, b.DstPort) {
		return false
	}
	return bdir != "<>" || one(b.DstAddress, b.SrcAddress, b.DstPort, b.SrcPort)
}

func protoCovers(a, b string) bool {
	return a == "" || a == "any" || protoNumber(a) == protoNumber(b)
}

func protoNumber(p string) string {
	switch strings.ToLower(p) {
	case "tcp":
		return "6"
	case "udp":
		return "17"
	case "icmp":
		return "1"
	case "icmp6":
		return "58"
	}
	return p
}

func portCovers(a, b contrail.PortType) bool {
	if a.StartPort == -1 || (a.StartPort <= 0 && a.EndPort >= 65535) {
		return true
	}
	if b.StartPort == -1 {
		return false
	}
	return a.StartPort <= b.StartPort && b.EndPort <= a.EndPort
}

func addrCovers(a, b contrail.AddressType) bool {
	if a.VirtualNetwork != "" && a.VirtualNetwork != "any" && a.VirtualNetwork != b.VirtualNetwork {
		return false
	}
	if a.Subnet != nil {
		if b.Subnet == nil {
			return false
		}
		ap, err1 := subnetPrefix(a.Subnet)
		bp, err2 := subnetPrefix(b.Subnet)
		if err1 != nil || err2 != nil || ap.Bits() > bp.Bits() || !ap.Contains(bp.Addr()) {
			return false
		}
	}
	return a.SecurityGroup == "" && a.NetworkPolicy == ""
}

func subnetPrefix(s *contrail.SubnetType) (netip.Prefix, error) {
	a, err := netip.ParseAddr(s.IPPrefix)
	if err != nil {
		return netip.Prefix{}, err
	}
	return a.Prefix(s.IPPrefixLen)
}
