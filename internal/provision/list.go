package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/vrsniff/vrsniff/internal/contrail"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Mechanisms, as List reports them.
const (
	MechDynamic = "dynamic-policy"         // mirror-only policy attached with a timer
	MechStatic  = "static-policy (unsafe)" // pass + mirror_to in the static ACL, as older versions made them
	MechPort    = "interface-mirror"       // port mirroring
)

// Mirror describes one mirror that vrsniff created, as List found it.
type Mirror struct {
	Name         string   `json:"name"`
	Project      string   `json:"project,omitempty"`
	Kind         Kind     `json:"kind"`
	Mechanism    string   `json:"mechanism,omitempty"`
	Target       string   `json:"target"`
	Analyzer     string   `json:"analyzer"`
	AnalyzerName string   `json:"analyzer_name,omitempty"`
	Checks       []Check  `json:"checks,omitempty"`
	Notes        []string `json:"notes,omitempty"`
	Objects      []string `json:"objects"` // "type fq_name-or-uuid" of what belongs to it
}

// Check is one thing List verified about a mirror.
type Check struct {
	// Name is one of: attached, compiled (the rule is in the network's
	// ACL and decides), allow-neutral (what is allowed did not change),
	// analyzer (the destination can receive), unique-name (no other
	// mirror uses the analyzer_name with another destination), coverage
	// (every port of the network is mirrored), ports (the ports still
	// carry the mirror).
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// OK reports whether every check passed.
func (m *Mirror) OK() bool {
	return !slices.ContainsFunc(m.Checks, func(c Check) bool { return !c.OK })
}

// State is "ok", or the failed checks.
func (m *Mirror) State() string {
	var bad []string
	for _, c := range m.Checks {
		if !c.OK {
			bad = append(bad, c.Name+": "+c.Detail)
		}
	}
	if len(bad) == 0 {
		return "ok"
	}
	return strings.Join(bad, "; ")
}

func (m *Mirror) check(name string, ok bool, detail string) {
	m.Checks = append(m.Checks, Check{Name: name, OK: ok, Detail: detail})
}

// describe is the listing entry of a spec.
func (s *Spec) describe() Mirror {
	m := Mirror{Name: s.Name, Kind: s.Kind, Target: s.VN, Analyzer: s.analyzerText(), AnalyzerName: s.analyzerName()}
	if s.Project != nil {
		m.Project = colon(s.Project)
	}
	switch s.Kind {
	case KindPolicy:
		m.Mechanism = MechDynamic
		m.Objects = []string{"network-policy " + colon(s.policyFQ())}
	case KindServiceInstance:
		m.Mechanism = MechDynamic
		if s.AnalyzerSI == "" {
			m.Objects = []string{"service-template " + colon(s.stFQ()), "service-instance " + colon(s.siFQ()),
				"port-tuple " + colon(s.tupleFQ())}
		}
		m.Objects = append(m.Objects, "network-policy "+colon(s.policyFQ()))
	default:
		m.Mechanism = MechPort
	}
	return m
}

type marked struct {
	contrail.Common
	Props      map[string]json.RawMessage  `json:"virtual_machine_interface_properties"`
	Entries    *contrail.PolicyEntriesType `json:"network_policy_entries"`
	VNBackRefs []contrail.Ref              `json:"virtual_network_back_refs"`
	TupleRefs  []contrail.Ref              `json:"port_tuple_refs"`
}

// list returns the project's objects of type typ that carry a marker.
func (p *Provisioner) list(ctx context.Context, typ, parent string, fields ...string) ([]marked, error) {
	raws, err := p.API.List(ctx, typ, parent, append([]string{"fq_name", "annotations"}, fields...)...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", contrail.Plural(typ), err)
	}
	var out []marked
	for _, raw := range raws {
		var m marked
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("decode %s: %w", typ, err)
		}
		if _, ok := m.Annotations.Get(KeyMirror); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

type projectRef struct {
	fq []string
	id string
}

// projects resolves the projects to look in; nil means every project the
// credentials can read.
func (p *Provisioner) projects(ctx context.Context, fqs [][]string) ([]projectRef, error) {
	if fqs == nil {
		raws, err := p.API.List(ctx, "project", "", "fq_name")
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		var out []projectRef
		for _, raw := range raws {
			var c contrail.Common
			if err := json.Unmarshal(raw, &c); err != nil {
				return nil, fmt.Errorf("decode project: %w", err)
			}
			out = append(out, projectRef{c.FQName, c.UUID})
		}
		return out, nil
	}
	var out []projectRef
	for _, fq := range fqs {
		id, err := p.API.FQNameToID(ctx, "project", fq)
		if err != nil {
			return nil, fmt.Errorf("project %s: %w", colon(fq), err)
		}
		out = append(out, projectRef{fq, id})
	}
	return out, nil
}

// List returns the mirrors vrsniff created in the projects (nil: every
// project the credentials can read), each with what it checked: whether
// the mirror is compiled where the vRouter uses it, leaves what is allowed
// unchanged, reaches its analyzer, and owns its analyzer_name.
func (p *Provisioner) List(ctx context.Context, projects [][]string) ([]Mirror, error) {
	prjs, err := p.projects(ctx, projects)
	if err != nil {
		return nil, err
	}
	users, err := p.analyzerNameUsers(ctx)
	if err != nil {
		return nil, err
	}
	var out []Mirror
	for _, prj := range prjs {
		pols, err := p.list(ctx, "network-policy", prj.id, "network_policy_entries", "virtual_network_back_refs")
		if err != nil {
			return nil, err
		}
		for _, pol := range pols {
			m, err := p.policyMirror(ctx, prj.fq, pol, users)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		ports, err := p.list(ctx, "virtual-machine-interface", prj.id, "virtual_machine_interface_properties")
		if err != nil {
			return nil, err
		}
		ms, err := p.portMirrors(ctx, prj.fq, ports, users)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Project != out[j].Project {
			return out[i].Project < out[j].Project
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// ruleNames maps the rule_uuid of every rule of the network's policies to
// "policy#index", and the schema transformer's implicit rules to theirs.
func (p *Provisioner) ruleNames(ctx context.Context, n *network) map[string]string {
	names := map[string]string{
		"00000000-0000-0000-0000-100000000001": "implicit allow",
		"00000000-0000-0000-0000-100000000002": "implicit deny",
	}
	for _, r := range n.PolicyRefs {
		pol, err := p.readPolicy(ctx, r.To)
		if err != nil || pol.Entries == nil {
			continue
		}
		for i, pr := range pol.Entries.PolicyRule {
			names[pr.RuleUUID] = fmt.Sprintf("%s#%d", r.To[len(r.To)-1], i)
		}
	}
	return names
}

func ruleLabel(names map[string]string, r contrail.AclRuleType) string {
	if n, ok := names[r.RuleUUID]; ok {
		return n
	}
	return "rule " + r.RuleUUID
}

// matchOf is the ACL match a policy rule compiles to (its first address
// and port range a side).
func matchOf(r contrail.PolicyRuleType) contrail.MatchConditionType {
	m := contrail.MatchConditionType{Protocol: r.Protocol, Ethertype: r.Ethertype}
	if len(r.SrcAddresses) > 0 {
		m.SrcAddress = r.SrcAddresses[0]
	}
	if len(r.DstAddresses) > 0 {
		m.DstAddress = r.DstAddresses[0]
	}
	m.SrcPort, m.DstPort = contrail.AnyPort, contrail.AnyPort
	if len(r.SrcPorts) > 0 {
		m.SrcPort = r.SrcPorts[0]
	}
	if len(r.DstPorts) > 0 {
		m.DstPort = r.DstPorts[0]
	}
	return m
}

func (p *Provisioner) policyMirror(ctx context.Context, prj []string, pol marked, users map[string][]nameUser) (Mirror, error) {
	a := pol.Annotations
	m := Mirror{Project: colon(prj), Objects: []string{"network-policy " + colon(pol.FQName)}}
	m.Name, _ = a.Get(KeyMirror)
	k, _ := a.Get(KeyKind)
	m.Kind = Kind(k)
	m.Target, _ = a.Get(KeyTarget)
	m.Analyzer, _ = a.Get(KeyAnalyzer)
	s := Spec{Name: m.Name, Project: prj, Kind: m.Kind}
	var rules []contrail.PolicyRuleType
	if pol.Entries != nil {
		rules = pol.Entries.PolicyRule
	}
	var mt *contrail.MirrorActionType
	if len(rules) > 0 {
		mt = rules[0].ActionList.MirrorTo
	}
	if mt != nil {
		m.AnalyzerName = mt.AnalyzerName
	}
	if m.Kind == KindServiceInstance {
		s.AnalyzerSI = m.AnalyzerName
		if m.AnalyzerName == colon(append(clone(prj), Prefix+m.Name)) {
			s.AnalyzerSI = ""
			m.Objects = append(s.describe().Objects[:3:3], m.Objects...)
			st, err := p.serviceState(ctx, &s)
			if err != nil {
				return m, err
			}
			if len(st) > 0 {
				m.check("objects", false, strings.Join(st, "; "))
			}
		}
	}
	var ref *contrail.Ref
	var vnID string
	for i, r := range pol.VNBackRefs {
		if colon(r.To) == m.Target {
			ref, vnID = &pol.VNBackRefs[i], r.UUID
		}
	}
	if ref == nil {
		m.Mechanism = MechDynamic
		m.check("attached", false, "not attached to "+m.Target)
		return m, nil
	}
	n, err := p.readNetwork(ctx, vnID)
	if err != nil {
		return m, err
	}
	c, err := p.readACLs(ctx, n)
	if err != nil {
		return m, err
	}
	var ids []string
	for _, r := range rules {
		ids = append(ids, r.RuleUUID)
	}
	// The reference as the network holds it says the mechanism.
	m.Mechanism = MechStatic
	for _, r := range n.PolicyRefs {
		if slices.Equal(r.To, pol.FQName) && dynamicRef(r) {
			m.Mechanism = MechDynamic
		}
	}
	if m.Mechanism == MechDynamic {
		p.checkDynamic(&m, &s, rules, c, a)
		m.Notes = append(m.Notes, "mirrors denied flows too: the dynamic ACL is evaluated before the static one and security groups")
	} else {
		p.checkStatic(ctx, &m, n, rules, c)
	}
	if k := c.Dynamic.mirrorRules(ids) + c.Static.mirrorRules(ids); k >= 2 {
		m.Notes = append(m.Notes, fmt.Sprintf("%s has %d other mirror rules: a flow that more than two analyzers match is mirrored to two only", m.Target, k))
	}
	if m.Kind == KindServiceInstance && !p.exists(ctx, "service-instance", m.AnalyzerName) {
		m.check("analyzer", false, "service instance "+m.AnalyzerName+" does not exist")
	} else if m.Kind == KindServiceInstance {
		ok, detail := false, "the instance has no address yet (svc-monitor, and the sniffer port linked to the port tuple?)"
		for _, id := range ids {
			if r, _ := c.Dynamic.find(id); r != nil && r.ActionList.MirrorTo != nil && r.ActionList.MirrorTo.AnalyzerIPAddress != "" {
				ok, detail = true, "service instance at "+r.ActionList.MirrorTo.AnalyzerIPAddress
			}
		}
		m.check("analyzer", ok, detail)
	} else if mt != nil {
		p.checkAnalyzer(ctx, &m, mt, n)
	}
	if mt != nil && m.Kind != KindServiceInstance {
		checkUnique(&m, mt, users)
	}
	return m, nil
}

func (p *Provisioner) checkDynamic(m *Mirror, s *Spec, rules []contrail.PolicyRuleType, c compiled, a *contrail.KeyValuePairs) {
	missing := 0
	for _, r := range rules {
		if cr, _ := c.Dynamic.find(r.RuleUUID); cr == nil || cr.ActionList.MirrorTo == nil {
			missing++
		}
	}
	if missing > 0 || len(rules) == 0 {
		m.check("compiled", false, fmt.Sprintf("%d of %d rules are not in the dynamic ACL of %s (is the schema transformer running?)", missing, len(rules), m.Target))
	} else {
		m.check("compiled", true, "in the dynamic ACL of "+m.Target)
	}
	neutral, detail := true, "the static ACL is the one before the mirror"
	for _, r := range rules {
		if r.ActionList.SimpleAction != "" {
			neutral, detail = false, "a rule of the policy has simple_action "+r.ActionList.SimpleAction+": it no longer only mirrors"
		}
	}
	if snap, ok := a.Get(KeyStaticACL); !ok {
		neutral, detail = false, "no snapshot of the static ACL to compare with"
	} else if neutral && snap != c.snapshot() {
		neutral, detail = false, "the static ACL of "+m.Target+" differs from the one before the mirror (other policies changed since?)"
	}
	m.check("allow-neutral", neutral, detail)
}

func (p *Provisioner) checkStatic(ctx context.Context, m *Mirror, n *network, rules []contrail.PolicyRuleType, c compiled) {
	names := p.ruleNames(ctx, n)
	var problems []string
	for _, r := range rules {
		cr, i := c.Static.find(r.RuleUUID)
		if cr == nil {
			// Eliminated at compile time: an earlier rule's match holds it.
			var by []string
			if c.Static != nil {
				for _, e := range c.Static.shadows(matchOf(r), r.Direction, len(c.Static.Entries.AclRule)) {
					by = append(by, ruleLabel(names, e))
				}
			}
			if len(by) > 0 {
				problems = append(problems, "removed at compile time behind "+strings.Join(by, ", ")+": mirrors nothing")
			} else {
				problems = append(problems, "not in the static ACL of "+m.Target)
			}
			continue
		}
		if sh := c.Static.shadows(cr.MatchCondition, cr.Direction, i); len(sh) > 0 {
			var by []string
			for _, e := range sh {
				by = append(by, ruleLabel(names, e))
			}
			problems = append(problems, "shadowed by "+strings.Join(by, ", ")+" (first match wins): mirrors nothing")
		} else if i > 0 {
			problems = append(problems, fmt.Sprintf("rule %d of the static ACL: flows that the %d rules before it match are not mirrored", i+1, i))
		}
	}
	if len(problems) > 0 {
		m.check("compiled", false, strings.Join(problems, "; "))
	} else {
		m.check("compiled", true, "first in the static ACL of "+m.Target)
	}
	m.check("allow-neutral", false, "a static pass rule opens traffic the network's implicit denies blocked; delete this mirror and create it again (dynamic)")
}

// checkAnalyzer checks that the destination of mt can receive.
func (p *Provisioner) checkAnalyzer(ctx context.Context, m *Mirror, mt *contrail.MirrorActionType, n *network) {
	switch {
	case mt.NhMode == "static":
		vtep := ""
		if mt.StaticNhHeader != nil {
			vtep = mt.StaticNhHeader.VtepDstIPAddress
		}
		if a, err := netip.ParseAddr(vtep); err != nil || !a.Is4() {
			m.check("analyzer", false, "static next hop to "+vtep+": the vRouter resolves IPv4 VTEPs only")
		} else {
			m.check("analyzer", true, "VXLAN to VTEP "+vtep)
		}
	case mt.JuniperHeader != nil && !*mt.JuniperHeader:
		if mt.AnalyzerMACAddress == "" || mt.RoutingInstance == "" {
			m.check("analyzer", false, "without the Juniper header a dynamic next hop needs analyzer_mac_address and routing_instance: the vRouter discards")
			return
		}
		ri := split(mt.RoutingInstance)
		an, err := p.networkByFQ(ctx, colon(ri[:min(3, len(ri))]))
		if err != nil || !an.MirrorDestination {
			m.check("analyzer", false, "the analyzer network "+colon(ri[:min(3, len(ri))])+" does not have mirror_destination set")
			return
		}
		m.check("analyzer", true, "header-less to "+mt.AnalyzerMACAddress+" in "+mt.RoutingInstance)
	case n != nil:
		ok, err := p.routable(ctx, mt.AnalyzerIPAddress, n)
		switch {
		case err != nil:
			m.check("analyzer", false, err.Error())
		case ok:
			m.check("analyzer", true, mt.AnalyzerIPAddress+" is routable from "+colon(n.FQName))
		default:
			m.check("analyzer", false, mt.AnalyzerIPAddress+" is in no subnet of "+colon(n.FQName)+" nor of a network its policies connect")
		}
	default:
		m.check("analyzer", true, mt.AnalyzerIPAddress)
	}
}

// portMirrors groups the project's marked ports by mirror.
func (p *Provisioner) portMirrors(ctx context.Context, prj []string, ports []marked, users map[string][]nameUser) ([]Mirror, error) {
	byName := map[string]*Mirror{}
	analyzerIP := map[string]string{}
	var order []string
	covered := map[string]map[string]bool{}
	for _, port := range ports {
		a := port.Annotations
		k, _ := a.Get(KeyKind)
		if k != string(KindPort) && k != string(KindPerPort) {
			continue // a sniffer port of a service-instance mirror
		}
		name, _ := a.Get(KeyMirror)
		m := byName[name]
		if m == nil {
			m = &Mirror{Name: name, Project: colon(prj), Kind: Kind(k), Mechanism: MechPort}
			m.Analyzer, _ = a.Get(KeyAnalyzer)
			m.Target, _ = a.Get(KeyTarget)
			if k == string(KindPort) {
				m.Target = "port " + port.UUID
			}
			byName[name] = m
			order = append(order, name)
			covered[name] = map[string]bool{}
		}
		covered[name][port.UUID] = true
		m.Objects = append(m.Objects, "virtual-machine-interface "+port.UUID+" (interface_mirror)")
		var im contrail.InterfaceMirrorType
		if raw, ok := port.Props["interface_mirror"]; !ok || json.Unmarshal(raw, &im) != nil {
			m.check("ports", false, "interface_mirror removed from port "+port.UUID)
			continue
		}
		if m.AnalyzerName == "" {
			m.AnalyzerName = im.MirrorTo.AnalyzerName
			analyzerIP[name] = im.MirrorTo.AnalyzerIPAddress
			p.checkAnalyzer(ctx, m, &im.MirrorTo, nil)
			checkUnique(m, &im.MirrorTo, users)
			m.Notes = append(m.Notes, "traffic direction "+im.TrafficDirection+" (ingress: packets the VM sends; egress: packets delivered to it)")
		} else if im.MirrorTo.AnalyzerName != m.AnalyzerName {
			m.check("ports", false, "interface_mirror of port "+port.UUID+" changed by someone else (analyzer "+im.MirrorTo.AnalyzerName+")")
		}
	}
	var out []Mirror
	for _, name := range order {
		m := byName[name]
		m.check("allow-neutral", true, "port mirroring does not touch ACLs")
		if m.Kind == KindPerPort {
			if err := p.checkCoverage(ctx, m, covered[name], analyzerIP[name]); err != nil {
				return nil, err
			}
		}
		out = append(out, *m)
	}
	return out, nil
}

// checkCoverage reports the ports of a per-port mirror's network that it
// does not mirror (added since, or skipped).
func (p *Provisioner) checkCoverage(ctx context.Context, m *Mirror, covered map[string]bool, analyzerIP string) error {
	n, err := p.networkByFQ(ctx, m.Target)
	if contrail.IsNotFound(err) {
		m.check("coverage", false, "network "+m.Target+" is gone")
		return nil
	} else if err != nil {
		return err
	}
	var missing []string
	own := 0
	for _, r := range n.Ports {
		if covered[r.UUID] {
			continue
		}
		// The analyzer's own port is left out on purpose.
		if v, err := p.readPort(ctx, r.UUID); err == nil {
			if addrs, err := p.addresses(ctx, v); err == nil && slices.Contains(addrs, analyzerIP) {
				own++
				continue
			}
		}
		missing = append(missing, r.UUID)
	}
	if len(missing) > 0 {
		m.check("coverage", false, fmt.Sprintf("%d of %d ports of %s not mirrored (new, or mirrored by someone else): %s",
			len(missing), len(n.Ports), m.Target, strings.Join(missing, ", ")))
	} else {
		m.check("coverage", true, fmt.Sprintf("all %d ports of %s but the analyzer's own (%d)", len(n.Ports)-own, m.Target, own))
	}
	return nil
}

func (p *Provisioner) serviceState(ctx context.Context, s *Spec) ([]string, error) {
	var states []string
	for _, o := range []struct {
		typ string
		fq  []string
	}{{"service-template", s.stFQ()}, {"service-instance", s.siFQ()}, {"port-tuple", s.tupleFQ()}} {
		if _, err := p.API.FQNameToID(ctx, o.typ, o.fq); contrail.IsNotFound(err) {
			states = append(states, o.typ+" missing")
		} else if err != nil {
			return nil, err
		}
	}
	id, err := p.API.FQNameToID(ctx, "port-tuple", s.tupleFQ())
	if err == nil {
		var pt struct {
			Ports []contrail.Ref `json:"virtual_machine_interface_back_refs"`
		}
		if err := p.API.ReadFields(ctx, "port-tuple", id, []string{"virtual_machine_interface_back_refs"}, &pt); err == nil && len(pt.Ports) == 0 {
			states = append(states, "no analyzer port linked to the port tuple (boot the sniffer VM)")
		}
	}
	return states, nil
}

// A nameUser is an object whose mirror_to uses an analyzer_name.
type nameUser struct {
	what string // "network-policy FQ" or "port UUID"
	dest string
}

// destination is what a mirror_to sends to, as text to compare.
func destination(m *contrail.MirrorActionType) string {
	d := fmt.Sprintf("%s udp/%d", m.AnalyzerIPAddress, m.UDPPort)
	if m.UDPPort == 0 {
		d = fmt.Sprintf("%s udp/%d", m.AnalyzerIPAddress, mirror.DefaultPort)
	}
	if m.NhMode == "static" && m.StaticNhHeader != nil {
		d = fmt.Sprintf("vxlan %s vni %d", m.StaticNhHeader.VtepDstIPAddress, m.StaticNhHeader.VNI)
	}
	if m.JuniperHeader != nil && !*m.JuniperHeader {
		d += " no-header " + m.AnalyzerMACAddress + " " + m.RoutingInstance
	}
	return d
}

// analyzerNameUsers maps every analyzer_name used in the cluster's policies
// and port mirrors to what uses it.
func (p *Provisioner) analyzerNameUsers(ctx context.Context) (map[string][]nameUser, error) {
	users := map[string][]nameUser{}
	pols, err := p.API.List(ctx, "network-policy", "", "fq_name", "network_policy_entries")
	if err != nil {
		return nil, fmt.Errorf("list network-policys: %w", err)
	}
	for _, raw := range pols {
		var pol marked
		if err := json.Unmarshal(raw, &pol); err != nil {
			return nil, fmt.Errorf("decode network-policy: %w", err)
		}
		if pol.Entries == nil {
			continue
		}
		for _, r := range pol.Entries.PolicyRule {
			if mt := r.ActionList.MirrorTo; mt != nil && mt.AnalyzerName != "" {
				users[mt.AnalyzerName] = append(users[mt.AnalyzerName], nameUser{"network-policy " + colon(pol.FQName), destination(mt)})
			}
		}
	}
	ports, err := p.API.List(ctx, "virtual-machine-interface", "", "fq_name", "virtual_machine_interface_properties")
	if err != nil {
		return nil, fmt.Errorf("list virtual-machine-interfaces: %w", err)
	}
	for _, raw := range ports {
		var v marked
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("decode virtual-machine-interface: %w", err)
		}
		var im contrail.InterfaceMirrorType
		if b, ok := v.Props["interface_mirror"]; ok && json.Unmarshal(b, &im) == nil && im.MirrorTo.AnalyzerName != "" {
			n := im.MirrorTo.AnalyzerName
			users[n] = append(users[n], nameUser{"port " + v.UUID, destination(&im.MirrorTo)})
		}
	}
	return users, nil
}

// conflicts returns the users of mt's analyzer_name that send elsewhere.
func conflicts(mt *contrail.MirrorActionType, users map[string][]nameUser) []string {
	var out []string
	d := destination(mt)
	for _, u := range users[mt.AnalyzerName] {
		if u.dest != d {
			out = append(out, u.what+" ("+u.dest+")")
		}
	}
	return out
}

func checkUnique(m *Mirror, mt *contrail.MirrorActionType, users map[string][]nameUser) {
	if c := conflicts(mt, users); len(c) > 0 {
		m.check("unique-name", false, "analyzer_name "+mt.AnalyzerName+" is also used by "+strings.Join(c, ", ")+
			": every compute node keeps one destination per name")
	} else {
		m.check("unique-name", true, "")
	}
}

// checkAnalyzerName refuses a mirror whose analyzer_name another mirror
// uses with another destination: the compute nodes would send one of the
// two to the other's analyzer.
func (p *Provisioner) checkAnalyzerName(ctx context.Context, s *Spec) error {
	if s.Kind == KindServiceInstance {
		return nil
	}
	users, err := p.analyzerNameUsers(ctx)
	if err != nil {
		return err
	}
	if c := conflicts(s.mirrorTo(), users); len(c) > 0 {
		return fmt.Errorf("analyzer_name %s is already used by %s with another destination: %w",
			s.analyzerName(), strings.Join(c, ", "), ErrConflict)
	}
	return nil
}

// Print writes mirrors as a table for people: one line a mirror, then the
// failed checks and notes of each.
func Print(w io.Writer, ms []Mirror) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %-24s %-22s %-40s %-28s %s\n", "NAME", "PROJECT", "MECHANISM", "TARGET", "ANALYZER", "STATE")
	for _, m := range ms {
		state := "ok"
		if !m.OK() {
			state = "NOT OK"
		}
		fmt.Fprintf(&b, "%-16s %-24s %-22s %-40s %-28s %s\n", m.Name, m.Project, m.Mechanism, m.Target, m.Analyzer, state)
	}
	for _, m := range ms {
		for _, c := range m.Checks {
			if !c.OK {
				fmt.Fprintf(&b, "%s: %s: %s\n", m.Name, c.Name, c.Detail)
			}
		}
		for _, n := range m.Notes {
			fmt.Fprintf(&b, "%s: note: %s\n", m.Name, n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// PrintJSON writes mirrors as JSON, every check included, for scripts.
func PrintJSON(w io.Writer, ms []Mirror) error {
	if ms == nil {
		ms = []Mirror{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ms)
}

// exists reports whether the object fq (colon-separated) is there; an
// answer other than "not found" counts as there.
func (p *Provisioner) exists(ctx context.Context, typ, fq string) bool {
	_, err := p.API.FQNameToID(ctx, typ, split(fq))
	return !contrail.IsNotFound(err)
}
