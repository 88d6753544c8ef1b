// Package agent evaluates flows over the ACLs that fakeapi's schema
// transformer compiled, as the vRouter agent does (tf-controller
// vnsw/agent: FlowEntry::DoPolicy, MatchAcl, AclTable), so that tests can
// say what a mirror set-up lets through and what it mirrors. Only tests
// import it.
//
// A flow is evaluated on its source VN, and, when the destination is in
// another VN, on the destination VN as well (the destination's compute
// node, or the "out" ACL of a local flow). On each:
//
//   - the dynamic ACL first, every rule, non-terminal, without implicit
//     deny: it only collects mirror actions;
//   - then the static ACL: the first matching rule decides (deny drops; a
//     pass, or a rule without simple action, lets the flow through) and
//     its mirror action is collected too; no matching rule is an implicit
//     deny; a VN without a static ACL lets everything through;
//   - a rule with direction "<>" matches both ways (the agent adds the
//     reversed entry); ">" and the implicit rules only as written;
//   - mirrors apply to dropped flows too (the vRouter mirrors before it
//     drops); a mirror needs an analyzer_name and an analyzer IP (the agent
//     programs nothing without them); a flow carries at most two
//     analyzers: further ones are dropped.
//
// An address matches by VN ("any" matches every VN) and, when it has
// subnets, by IP as well; ports -1..-1 match any port.
package agent

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi"
)

// Flow is one flow as the vRouter sees it.
type Flow struct {
	SrcVN, DstVN     string // fq_name strings: "default-domain:demo:vn-web"
	Src, Dst         netip.Addr
	Protocol         uint8 // IP protocol number: 6 TCP, 17 UDP, 1 ICMP
	SrcPort, DstPort uint16
}

// Side is the outcome on one VN.
type Side struct {
	VN      string
	Allowed bool
	// Rule is the rule_uuid of the static rule that decided: a policy
	// rule's, fakeapi.ImplicitAllow or fakeapi.ImplicitDeny; "" when the
	// VN has no static ACL (allowed) or no rule matched (implicit deny).
	Rule string
	// Mirrors are the analyzers, "analyzer_name@analyzer_ip", at most two.
	Mirrors []string
}

// Verdict is the outcome of a flow.
type Verdict struct {
	Allowed bool     // allowed on every side
	Mirrors []string // the analyzers of both sides, each once
	Source  Side
	Dest    *Side // nil when both ends are in one VN
}

// MaxMirrors is how many analyzers one flow can have (the vRouter flow
// entry has a mirror and a second mirror index).
const MaxMirrors = 2

// Evaluate evaluates f over the ACLs srv holds now. A VN srv does not know
// has no ACLs.
func Evaluate(srv *fakeapi.Server, f Flow) Verdict {
	v := Verdict{Source: side(srv, f.SrcVN, f)}
	v.Allowed, v.Mirrors = v.Source.Allowed, slices.Clone(v.Source.Mirrors)
	if f.DstVN != f.SrcVN {
		d := side(srv, f.DstVN, f)
		v.Dest = &d
		v.Allowed = v.Allowed && d.Allowed
		for _, m := range d.Mirrors {
			if !slices.Contains(v.Mirrors, m) {
				v.Mirrors = append(v.Mirrors, m)
			}
		}
	}
	return v
}

func side(srv *fakeapi.Server, vn string, f Flow) Side {
	s := Side{VN: vn, Allowed: true}
	var static, dynamic []fakeapi.Rule
	if id := srv.Lookup("virtual-network", strings.Split(vn, ":")...); id != "" {
		static, dynamic = srv.ACLs(id)
	}
	for _, r := range dynamic {
		if matches(r, f) {
			s.mirror(r)
		}
	}
	if static == nil {
		return s
	}
	s.Allowed = false
	for _, r := range static {
		if matches(r, f) {
			s.mirror(r)
			s.Allowed = r.Action.SimpleAction != "deny"
			s.Rule = r.RuleUUID
			break
		}
	}
	return s
}

func (s *Side) mirror(r fakeapi.Rule) {
	m := r.Action.Mirror
	if m == nil || m.AnalyzerName == "" || m.AnalyzerIP == "" {
		return
	}
	a := m.AnalyzerName + "@" + m.AnalyzerIP
	if len(s.Mirrors) < MaxMirrors && !slices.Contains(s.Mirrors, a) {
		s.Mirrors = append(s.Mirrors, a)
	}
}

// matches reports whether the rule matches the flow as written or, for
// "<>", reversed.
func matches(r fakeapi.Rule, f Flow) bool {
	m := r.Match
	if m.Protocol != "any" {
		if n, err := strconv.Atoi(m.Protocol); err != nil || n != int(f.Protocol) {
			return false
		}
	}
	switch m.Ethertype {
	case "IPv4":
		if !f.Src.Is4() {
			return false
		}
	case "IPv6":
		if f.Src.Is4() {
			return false
		}
	}
	forward := address(m.Src, f.SrcVN, f.Src) && ports(m.SrcPort, f.SrcPort) &&
		address(m.Dst, f.DstVN, f.Dst) && ports(m.DstPort, f.DstPort)
	if forward || r.Direction != "<>" {
		return forward
	}
	return address(m.Dst, f.SrcVN, f.Src) && ports(m.DstPort, f.SrcPort) &&
		address(m.Src, f.DstVN, f.Dst) && ports(m.SrcPort, f.DstPort)
}

func address(a fakeapi.Address, vn string, ip netip.Addr) bool {
	if a.VirtualNetwork == "" && a.Subnet == nil && len(a.SubnetList) == 0 {
		return false // security groups and policies are resolved before; nothing to match
	}
	if a.VirtualNetwork != "" && a.VirtualNetwork != "any" && a.VirtualNetwork != vn {
		return false
	}
	subnets := a.SubnetList
	if a.Subnet != nil {
		subnets = append(slices.Clone(subnets), *a.Subnet)
	}
	if len(subnets) == 0 {
		return true
	}
	for _, s := range subnets {
		if p, err := netip.ParsePrefix(s.Prefix + "/" + strconv.Itoa(s.Len)); err == nil && p.Contains(ip) {
			return true
		}
	}
	return false
}

func ports(p fakeapi.Ports, port uint16) bool {
	lo, hi := p.Start, p.End
	if lo < 0 {
		lo = 0
	}
	if hi < 0 {
		hi = 65535
	}
	return int(port) >= lo && int(port) <= hi
}
