package fakeapi

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The schema transformer, emulated for what mirroring touches (the
// reference is tf-controller's schema_transformer, VirtualNetworkST.evaluate,
// policy_to_acl_rule and AclRuleListST; the facts: the spec's "How
// policies become ACLs" and the recorded acl-transcripts). After every
// change (unless Options.ManualCompile), each VN's network_policy_refs are
// compiled into the VN's access-control-list children:
//
//   - refs without a timer, ordered by (sequence.major, sequence.minor),
//     make the static ACL, named like the VN; refs with a timer (any
//     object, even {}) make the ACL named "dynamic" (entries.dynamic true).
//     A ref whose attr has no sequence is ignored; a ref with a null attr
//     is static and goes last. A VN with no static ref has no static ACL
//     (unless it is a provider or fabric-SNAT VN without any policy).
//   - a policy rule becomes one ACL rule per (src port, dst port, src
//     address, dst address); protocol names become numbers ("tcp" → "6");
//     "local" becomes the VN; a rule where neither side is the VN (or
//     "any") is ignored, so "src subnet, dst another VN" compiles to
//     nothing; network_policy addresses become the VNs the policy is
//     attached to. Service chains (apply_service) are not emulated: such
//     rules are left out.
//   - a rule whose match lies within an earlier rule's match (ports,
//     protocol, addresses; direction and action not considered) is
//     dropped, in the static ACL whatever its action, in the dynamic one
//     only when both mirror to the same analyzer.
//   - after the static ACL's rules come the implicit ones: VN → VN pass;
//     then (logical routers enabled, the default) per rule a deny of every
//     protocol between the same addresses, and any → any pass; or
//     (Options.LogicalRoutersDisabled) any → any deny. They are subject to
//     the same subset rule.
//   - the compiled mirror_to gains juniper_header true and
//     nic_assisted_mirroring false when unset, the action list log,
//     alert and host_based_service false; an analyzer_name that names a
//     service instance gets the analyzer_ip_address of the instance-ip
//     marked service_instance_ip on the instance's left port (see
//     Options.SvcMonitor), or keeps what the policy says; the same holds
//     for a port's interface_mirror, which the transformer writes back.
//   - an ACL is updated in place (same uuid) when its entries change, and
//     deleted when its refs are gone; access_control_list_hash is a hash
//     of the entries salted per server, as Python's hash() differs per
//     process: compare entries, never hashes.
//
// Routing instances and their connections are not emulated.

// afterChange runs what the control plane runs after a change.
func (s *Server) afterChange() {
	if s.opts.SvcMonitor {
		s.svcMonitor()
	}
	if !s.opts.ManualCompile {
		s.compile()
	}
}

// Compile runs the schema transformer once over every VN (and svc-monitor
// first, with Options.SvcMonitor). With Options.ManualCompile it is the
// only way ACLs change; otherwise the server compiles after every change
// by itself and Compile changes nothing.
func (s *Server) Compile() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.SvcMonitor {
		s.svcMonitor()
	}
	s.compile()
}

// ACLs returns the rules of the static and the dynamic ACL of the VN with
// UUID vnUUID, as stored (what the vRouter agent would receive). A nil
// slice means the VN has no such ACL; an ACL without rules is an empty,
// non-nil slice.
func (s *Server) ACLs(vnUUID string) (static, dynamic []Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vn := s.objs[vnUUID]
	if vn == nil || vn.Type != "virtual-network" {
		return nil, nil
	}
	for _, acl := range s.children(vn, "access-control-list") {
		e := getMap(acl.Props, "access_control_list_entries")
		rules := []Rule{}
		l, _ := e["acl_rule"].([]any)
		for _, r := range l {
			if m, ok := r.(map[string]any); ok {
				rules = append(rules, parseRule(m))
			}
		}
		if d, _ := e["dynamic"].(bool); d {
			dynamic = rules
		} else {
			static = rules
		}
	}
	return static, dynamic
}

func (s *Server) compile() {
	for _, vn := range s.ofType("virtual-network") {
		s.compileVN(vn)
	}
}

// policyRef is a VN's ref to a policy as the transformer orders it.
type policyRef struct {
	policy       *object
	major, minor int64
	timer        bool
}

func (s *Server) policyRefs(vn *object) []policyRef {
	var l []policyRef
	for _, r := range s.sortedRefs(vn, "network-policy") {
		p := policyRef{policy: s.objs[r.UUID], major: math.MaxInt64, minor: math.MaxInt64}
		if r.Attr != nil {
			attr, _ := r.Attr.(map[string]any)
			seq := getMap(attr, "sequence")
			if seq == nil {
				continue // "sequence number is not available": not applied
			}
			maj, _ := getInt(seq, "major")
			mnr, _ := getInt(seq, "minor")
			p.major, p.minor = int64(maj), int64(mnr)
			p.timer = attr["timer"] != nil && !s.opts.IgnoreTimer
		}
		l = append(l, p)
	}
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].major != l[j].major {
			return l[i].major < l[j].major
		}
		return l[i].minor < l[j].minor
	})
	return l
}

func (s *Server) compileVN(vn *object) {
	name := strings.Join(vn.FQName, ":")
	provider, _ := vn.Props["is_provider_network"].(bool)
	snat, _ := vn.Props["fabric_snat"].(bool)
	var providerVNs []string
	for _, r := range s.sortedRefs(vn, "virtual-network") {
		providerVNs = append(providerVNs, strings.Join(r.To, ":"))
	}
	refs := s.policyRefs(vn)
	var static, dynamic *ruleList
	if len(refs) == 0 && (provider || snat || len(providerVNs) > 0) {
		static = &ruleList{}
	}
	for _, p := range refs {
		target := &static
		if p.timer {
			target = &dynamic
		}
		if *target == nil {
			*target = &ruleList{dynamic: p.timer}
		}
		if p.policy == nil {
			continue
		}
		entries := getMap(p.policy.Props, "network_policy_entries")
		rules, _ := entries["policy_rule"].([]any)
		for _, pr := range rules {
			prule, ok := pr.(map[string]any)
			if !ok {
				continue
			}
			(*target).merge(s.policyToACL(name, prule, p.timer))
		}
	}
	if static != nil {
		s.implicitRules(name, static, provider, snat, providerVNs)
	}
	s.writeACL(vn, vn.FQName[len(vn.FQName)-1], static, false)
	s.writeACL(vn, "dynamic", dynamic, true)
	s.processPortAnalyzers(vn)
}

var anyPorts = Ports{Start: 0, End: 65535}

func (s *Server) implicitRules(name string, static *ruleList, provider, snat bool, providerVNs []string) {
	rule := func(src, dst, action, uuid, dir string) Rule {
		return Rule{RuleUUID: uuid, Direction: dir, Action: Action{SimpleAction: action},
			Match: Match{Protocol: "any", Src: Address{VirtualNetwork: src}, SrcPort: anyPorts,
				Dst: Address{VirtualNetwork: dst}, DstPort: anyPorts}}
	}
	acl := &ruleList{}
	acl.append(rule(name, name, "pass", ImplicitAllow, ""))
	if snat {
		acl.append(rule(name, "default-domain:default-project:ip-fabric", "pass", ImplicitAllow, "<>"))
		acl.append(rule(name, "any", "deny", ImplicitDeny, "<>"))
	}
	if s.opts.LogicalRoutersDisabled {
		acl.append(rule("any", "any", "deny", ImplicitDeny, ""))
	} else {
		for _, r := range static.rules {
			src, dst := r.Match.Src, r.Match.Dst
			if src.VirtualNetwork != "" {
				src.Subnet, src.SubnetList = nil, nil
			}
			if dst.VirtualNetwork != "" {
				dst.Subnet, dst.SubnetList = nil, nil
			}
			acl.append(Rule{RuleUUID: r.RuleUUID, Direction: r.Direction, Action: Action{SimpleAction: "deny"},
				Match: Match{Protocol: "any", Src: src, SrcPort: anyPorts, Dst: dst, DstPort: anyPorts}})
		}
		if provider {
			acl.append(rule(name, "any", "deny", ImplicitDeny, "<>"))
		} else {
			for _, p := range providerVNs {
				acl.append(rule(name, p, "deny", ImplicitDeny, "<>"))
			}
		}
		acl.append(rule("any", "any", "pass", ImplicitAllow, ""))
	}
	static.merge(acl)
}

// ruleList is AclRuleListST: rules, each kept only if its match is not
// within an earlier one's.
type ruleList struct {
	rules   []Rule
	dynamic bool
}

func (l *ruleList) append(r Rule) bool {
	if l.covers(r) {
		return false
	}
	l.rules = append(l.rules, r)
	return true
}

// merge appends the rules of n that l does not cover (update_acl_entries).
func (l *ruleList) merge(n *ruleList) {
	for _, r := range n.rules {
		l.append(r)
	}
}

func (l *ruleList) covers(r Rule) bool {
	for _, e := range l.rules {
		if !portsWithin(r.Match.SrcPort, e.Match.SrcPort) || !portsWithin(r.Match.DstPort, e.Match.DstPort) ||
			(e.Match.Protocol != r.Match.Protocol && e.Match.Protocol != "any") ||
			!addressWithin(r.Match.Src, e.Match.Src) || !addressWithin(r.Match.Dst, e.Match.Dst) {
			continue
		}
		if !l.dynamic {
			return true
		}
		if r.Action.Mirror != nil && e.Action.Mirror != nil && r.Action.Mirror.AnalyzerName == e.Action.Mirror.AnalyzerName {
			return true
		}
	}
	return false
}

// portsWithin is _port_is_subset: an end port of -1 reaches everything.
func portsWithin(lhs, rhs Ports) bool {
	return lhs.Start >= rhs.Start && (rhs.End == -1 || lhs.End <= rhs.End)
}

// addressWithin is _address_is_subset: by VN when neither side has
// subnets, else by subnets alone.
func addressWithin(lhs, rhs Address) bool {
	if lhs.Subnet == nil && rhs.Subnet == nil && len(lhs.SubnetList) == 0 && len(rhs.SubnetList) == 0 {
		return rhs.VirtualNetwork == lhs.VirtualNetwork || rhs.VirtualNetwork == "any"
	}
	for _, l := range lhs.subnets() {
		for _, r := range rhs.subnets() {
			if l.Bits() >= r.Bits() && r.Contains(l.Addr()) {
				return true
			}
		}
	}
	return false
}

func (a Address) subnets() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range append(slices.Clone(a.SubnetList), derefSubnet(a.Subnet)...) {
		if p, err := netip.ParsePrefix(s.Prefix + "/" + strconv.Itoa(s.Len)); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

func derefSubnet(s *Subnet) []Subnet {
	if s == nil {
		return nil
	}
	return []Subnet{*s}
}

// protocolToACL is protocol_policy_to_acl.
func protocolToACL(p any, ethertype string) (string, bool) {
	if p == nil {
		return "any", true
	}
	ps, ok := p.(string)
	if !ok {
		return "", false
	}
	if ps != "" && strings.Trim(ps, "0123456789") == "" {
		return ps, true
	}
	ps = strings.ToLower(ps)
	if ethertype == "IPv6" && ps == "icmp" {
		ps = "ipv6-icmp"
	}
	n, ok := ipProtocols[ps]
	return n, ok
}

// policyToACL is policy_to_acl_rule for the VN named vn.
func (s *Server) policyToACL(vn string, prule map[string]any, dynamic bool) *ruleList {
	out := &ruleList{dynamic: dynamic}
	me := func(n string) bool { return n == vn || n == "any" }
	proto, ok := protocolToACL(prule["protocol"], getStr(prule, "ethertype"))
	if !ok {
		return out
	}
	al := getMap(prule, "action_list")
	if al == nil {
		return out
	}
	srcs, _ := prule["src_addresses"].([]any)
	dsts, _ := prule["dst_addresses"].([]any)
	sports, _ := prule["src_ports"].([]any)
	dports, _ := prule["dst_ports"].([]any)
	for _, sv := range srcs {
		sm, _ := sv.(map[string]any)
		sa := parseAddress(sm)
		svn := sa.VirtualNetwork
		if svn == "local" {
			svn, sa.VirtualNetwork = vn, vn
		}
		for _, dv := range dsts {
			dm, _ := dv.(map[string]any)
			da := parseAddress(dm)
			dvn := da.VirtualNetwork
			if dvn == "local" {
				dvn, da.VirtualNetwork = vn, vn
			}
			switch {
			case me(dvn) || me(svn):
			case dvn == "" && da.NetworkPolicy != "":
				if !slices.Contains(s.policyVNs(da.NetworkPolicy), vn) {
					continue
				}
				da.NetworkPolicy, da.VirtualNetwork = "", vn
			case svn == "" && sa.NetworkPolicy != "":
				if !slices.Contains(s.policyVNs(sa.NetworkPolicy), vn) {
					continue
				}
				sa.NetworkPolicy, sa.VirtualNetwork = "", vn
			case svn == "" && dvn == "" && sa.NetworkPolicy == "" && da.NetworkPolicy == "" &&
				len(sa.subnets()) > 0 && len(da.subnets()) > 0:
			default:
				continue // "network policy rule attached to ... Ignored."
			}
			action := parseAction(al)
			if len(action.ApplyService) > 0 {
				continue // service chains are not emulated
			}
			action.AssignRoutingInstance = ""
			if action.Mirror != nil && action.Mirror.AnalyzerName != "" && (me(svn) || me(dvn)) {
				if _, ip := s.analyzerVNAndIP(action.Mirror.AnalyzerName); ip != "" {
					action.Mirror.AnalyzerIP = ip
				}
			}
			for _, sp := range sports {
				for _, dp := range dports {
					for _, a := range s.addressToACL(sa) {
						for _, b := range s.addressToACL(da) {
							out.append(Rule{RuleUUID: getStr(prule, "rule_uuid"), Direction: getStr(prule, "direction"),
								Action: copyAction(action),
								Match:  Match{Protocol: proto, Src: a, SrcPort: policyPorts(sp), Dst: b, DstPort: policyPorts(dp)}})
						}
					}
				}
			}
		}
	}
	return out
}

// policyPorts reads a policy rule's PortType, whose defaults are 0 and
// 65535.
func policyPorts(v any) Ports {
	m, _ := v.(map[string]any)
	p := anyPorts
	if n, ok := getInt(m, "start_port"); ok {
		p.Start = n
	}
	if n, ok := getInt(m, "end_port"); ok {
		p.End = n
	}
	return p
}

func copyAction(a Action) Action {
	if a.Mirror != nil {
		m := *a.Mirror
		if m.StaticNH != nil {
			nh := *m.StaticNH
			m.StaticNH = &nh
		}
		a.Mirror = &m
	}
	a.ApplyService = slices.Clone(a.ApplyService)
	return a
}

// addressToACL is address_list_policy_to_acl: a network_policy address
// stands for the VNs the policy is attached to.
func (s *Server) addressToACL(a Address) []Address {
	if a.NetworkPolicy == "" {
		return []Address{a}
	}
	if s.byFQ[fqKey("network-policy", strings.Split(a.NetworkPolicy, ":"))] == "" {
		return nil
	}
	var out []Address
	for _, v := range s.policyVNs(a.NetworkPolicy) {
		out = append(out, Address{VirtualNetwork: v})
	}
	return out
}

// policyVNs returns the VNs (fq_name strings) attached to the policy.
func (s *Server) policyVNs(policy string) []string {
	id := s.byFQ[fqKey("network-policy", strings.Split(policy, ":"))]
	var out []string
	for _, vn := range s.ofType("virtual-network") {
		if slices.ContainsFunc(vn.Refs["network-policy"], func(r Ref) bool { return r.UUID == id }) {
			out = append(out, strings.Join(vn.FQName, ":"))
		}
	}
	sort.Strings(out)
	return out
}

func refersTo(o *object, rt, id string) bool {
	return slices.ContainsFunc(o.Refs[rt], func(r Ref) bool { return r.UUID == id })
}

func serviceInterfaceType(vmi *object) string {
	return getStr(getMap(vmi.Props, "virtual_machine_interface_properties"), "service_interface_type")
}

// analyzerVNAndIP is get_analyzer_vn_and_ip: for an analyzer_name naming
// a service instance, the VN of the left port of its first port tuple and
// the address of an instance-ip on that port marked service_instance_ip
// (of the family of the port's primary address).
func (s *Server) analyzerVNAndIP(name string) (vn, ip string) {
	si := s.objs[s.byFQ[fqKey("service-instance", strings.Split(name, ":"))]]
	if si == nil {
		return "", ""
	}
	pts := s.children(si, "port-tuple")
	if len(pts) == 0 {
		return "", ""
	}
	for _, vmi := range s.ofType("virtual-machine-interface") {
		if !refersTo(vmi, "port-tuple", pts[0].UUID) || serviceInterfaceType(vmi) != "left" {
			continue
		}
		if l := vmi.Refs["virtual-network"]; len(l) > 0 {
			vn = strings.Join(l[0].To, ":")
		}
		var iips []*object
		for _, iip := range s.ofType("instance-ip") {
			if refersTo(iip, "virtual-machine-interface", vmi.UUID) {
				iips = append(iips, iip)
			}
		}
		version := 0
		for _, want := range []int{4, 6} {
			for _, iip := range iips {
				if sec, _ := iip.Props["instance_ip_secondary"].(bool); !sec && ipVersion(iip) == want && version == 0 {
					version = want
				}
			}
		}
		for _, iip := range iips {
			if svc, _ := iip.Props["service_instance_ip"].(bool); svc && ipVersion(iip) != 0 &&
				(version == 0 || ipVersion(iip) == version) {
				return vn, getStr(iip.Props, "instance_ip_address")
			}
		}
		return vn, ""
	}
	return "", ""
}

func ipVersion(iip *object) int {
	a, err := netip.ParseAddr(getStr(iip.Props, "instance_ip_address"))
	switch {
	case err != nil:
		return 0
	case a.Is4():
		return 4
	}
	return 6
}

// processPortAnalyzers fills the analyzer IP of the interface_mirror of
// the VN's ports whose analyzer is a service instance, as the
// transformer's VirtualMachineInterfaceST.process_analyzer writes it.
func (s *Server) processPortAnalyzers(vn *object) {
	for _, vmi := range s.ofType("virtual-machine-interface") {
		if !refersTo(vmi, "virtual-network", vn.UUID) {
			continue
		}
		mirror := getMap(getMap(getMap(vmi.Props, "virtual_machine_interface_properties"), "interface_mirror"), "mirror_to")
		name := getStr(mirror, "analyzer_name")
		if name == "" {
			continue
		}
		if _, ip := s.analyzerVNAndIP(name); ip != "" && getStr(mirror, "analyzer_ip_address") != ip {
			mirror["analyzer_ip_address"] = ip
			s.touch(vmi)
		}
	}
}

func (s *Server) writeACL(vn *object, name string, rules *ruleList, dynamic bool) {
	fq := append(slices.Clone(vn.FQName), name)
	o := s.objs[s.byFQ[fqKey("access-control-list", fq)]]
	if rules == nil {
		if o != nil {
			s.remove(o)
		}
		return
	}
	entries := entriesAPI(dynamic, rules.rules)
	h := s.aclHash(entries)
	if o != nil {
		if o.Props["access_control_list_hash"] != h {
			o.Props["access_control_list_entries"] = entries
			o.Props["access_control_list_hash"] = h
			s.touch(o)
		}
		return
	}
	id := s.newUUID()
	now := s.timestamp()
	o = &object{Type: "access-control-list", UUID: id, FQName: fq, ParentType: "virtual-network", ParentUUID: vn.UUID,
		Refs: map[string][]Ref{}, created: s.clock, modified: s.clock,
		Props: map[string]any{"access_control_list_entries": entries, "access_control_list_hash": h, "display_name": name,
			"id_perms": s.idPerms(id, now, nil),
			"perms2": map[string]any{"owner": "cloud-admin", "owner_access": json.Number("7"),
				"global_access": json.Number("0"), "share": []any{}}}}
	s.objs[id] = o
	s.byFQ[fqKey(o.Type, fq)] = id
}

// aclHash stands for Python's hash() of the entries: the same entries
// give the same value in one server, another in the next.
func (s *Server) aclHash(entries map[string]any) json.Number {
	h := fnv.New64a()
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], s.hashSeed)
	h.Write(seed[:])
	h.Write(pyJSON(entries))
	return json.Number(strconv.FormatInt(int64(h.Sum64()), 10))
}

// svcMonitor emulates svc-monitor's shared service IPs: every port with a
// service_interface_type linked to a port tuple of a service instance is
// on the instance-ips "<si-uuid>-<type>-v4" and "-v6", which are removed
// when no port needs them any more.
func (s *Server) svcMonitor() {
	want := map[string][]string{} // instance-ip name → ports
	for _, pt := range s.ofType("port-tuple") {
		si := s.objs[pt.ParentUUID]
		if si == nil {
			continue
		}
		for _, vmi := range s.ofType("virtual-machine-interface") {
			t := serviceInterfaceType(vmi)
			if t == "" || !refersTo(vmi, "port-tuple", pt.UUID) {
				continue
			}
			for _, fam := range []string{"v4", "v6"} {
				n := si.UUID + "-" + t + "-" + fam
				if !slices.Contains(want[n], vmi.UUID) {
					want[n] = append(want[n], vmi.UUID)
				}
			}
		}
	}
	for _, iip := range s.ofType("instance-ip") {
		if svc, _ := iip.Props["service_instance_ip"].(bool); svc && want[iip.FQName[0]] == nil {
			s.remove(iip)
		}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names) // -v4 before -v6: the v6 address follows the v4 one
	for _, n := range names {
		var refs []Ref
		for _, id := range want[n] {
			refs = append(refs, Ref{To: s.objs[id].FQName, UUID: id})
		}
		if o := s.objs[s.byFQ[fqKey("instance-ip", []string{n})]]; o != nil {
			if !slices.EqualFunc(o.Refs["virtual-machine-interface"], refs, func(a, b Ref) bool { return a.UUID == b.UUID }) {
				o.Refs["virtual-machine-interface"] = refs
				s.touch(o)
			}
			continue
		}
		base, fam := n[:len(n)-3], n[len(n)-2:]
		var addr string
		if fam == "v6" {
			v4 := s.objs[s.byFQ[fqKey("instance-ip", []string{base + "-v4"})]]
			addr = "::" + getStr(v4.Props, "instance_ip_address")
		} else {
			a := uint32(0x00fffffc) - uint32(s.svcIPs)
			s.svcIPs++
			addr = netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).String()
		}
		ipam := s.serviceChainIPAM()
		s.mustCreate("instance-ip", omap{{"fq_name", []any{n}}, {"instance_ip_address", addr}, {"instance_ip_family", fam},
			{"service_instance_ip", true}, {"instance_ip_secondary", true}, {"instance_ip_mode", "active-active"},
			{"network_ipam_refs", []any{omap{{"uuid", ipam}}}}})
		s.objs[s.byFQ[fqKey("instance-ip", []string{n})]].Refs["virtual-machine-interface"] = refs
	}
}

// serviceChainIPAM returns the flat IPAM the service IPs come from,
// creating it (as the schema transformer does at start) when missing.
func (s *Server) serviceChainIPAM() string {
	fq := []string{"default-domain", "default-project", "service-chain-flat-ipam"}
	if id := s.byFQ[fqKey("network-ipam", fq)]; id != "" {
		return id
	}
	return s.mustCreate("network-ipam", omap{{"fq_name", toAnyList(fq)}, {"parent_type", "project"},
		{"ipam_subnet_method", "flat-subnet"}})
}
