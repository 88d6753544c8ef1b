package filter

import (
	"errors"
	"net/netip"
	"slices"
)

// FlowHints are necessary conditions of a tcpdump expression in the terms
// of a flow index (addresses and ports of IP flows): a reader that keeps
// the flows meeting them keeps every packet the expression matches, and
// may skip the rest of a file. They are conservative: what is not
// understood gives no condition, and an empty FlowHints means "read
// everything".
type FlowHints struct {
	// Prefixes, when not empty: every IPv4 or IPv6 packet the expression
	// matches has its source or its destination address in one of them.
	Prefixes []netip.Prefix
	// Ports, when not empty: every packet the expression matches is TCP,
	// UDP or SCTP with its source or its destination port in one of the
	// ranges, read where the filter reads it: the transport header right
	// after the IPv4 header of a packet that is not a later fragment (a
	// first fragment has one), or right after the fixed IPv6 header.
	Ports []PortRange
	// IP: every packet the expression matches is IPv4 or IPv6. When false
	// and Prefixes is not empty, a matching packet may also be ARP or RARP
	// (host and net match their addresses too, as in libpcap), which has
	// none of the addresses a flow index holds.
	IP bool
}

// PortRange is the ports Lo to Hi, both included.
type PortRange struct{ Lo, Hi uint16 }

// Contains reports whether port is in r.
func (r PortRange) Contains(port uint16) bool { return r.Lo <= port && port <= r.Hi }

// Empty reports whether h gives no condition on addresses or ports.
func (h FlowHints) Empty() bool { return len(h.Prefixes) == 0 && len(h.Ports) == 0 }

// Hints returns the flow hints of a tcpdump expression, read with the
// pure-Go compiler's parser (the language of goCompile):
//
//	host X and port Y       -> {X}, {Y}
//	host A or host B        -> {A, B}
//	not host A              -> none
//	port 53 or host A       -> none, none
//
// An expression that parser does not support gives no hints and no error
// (a build with libpcap may still compile it); one over the limits
// (ErrTooComplex) or not well formed gives an error.
func Hints(expr string) (FlowHints, error) {
	if err := checkExpr(expr); err != nil {
		return FlowHints{}, err
	}
	n, err := parse(expr)
	if errors.Is(err, ErrUnsupported) {
		return FlowHints{}, nil
	}
	if err != nil {
		return FlowHints{}, err
	}
	return hintsOf(n), nil
}

// The nodes below mark, in the expression tree, the primitives that
// Hints understands; each compiles to the node it wraps.

// addrPrim is host or net: src or dst (as its qualifiers say) in pf. ip
// says it matches only IPv4 or IPv6 packets (ip host, any IPv6 address);
// without it an IPv4 address also matches ARP and RARP.
type addrPrim struct {
	node
	pf netip.Prefix
	ip bool
}

// portPrim is port or portrange: src or dst port in lo..hi.
type portPrim struct {
	node
	lo, hi uint32
}

// ipOnly is a primitive that matches IPv4 or IPv6 packets only (ip, ip6,
// tcp, udp, icmp, proto N...).
type ipOnly struct{ node }

// addrNode is netNode marked with what Hints needs to know.
func (p *parser) addrNode(q quals, pf netip.Prefix) (node, error) {
	n, err := p.netNode(q, pf)
	if err != nil {
		return nil, err
	}
	return p.mark(addrPrim{node: n, pf: pf, ip: q.proto == "ip" || q.proto == "ip6" || pf.Addr().Is6()}, n), nil
}

// mark returns the marked primitive m, or its bare node n after a vlan:
// libpcap (and goCompile after it) then reads the primitive 4 bytes
// further into the frame for each vlan before it in the expression,
// whichever branch that vlan was in, so it no longer tests the addresses
// and ports that a flow index keeps, and gives no hint.
func (p *parser) mark(m, n node) node {
	if p.link != 14 {
		return n
	}
	return m
}

// markIP marks n as matching IP packets only, as mark does.
func (p *parser) markIP(n node) node { return p.mark(ipOnly{n}, n) }

// hintsOf derives the conditions of n bottom up. A nil list is no
// condition. For and, both sides' conditions hold, but "src or dst in
// A1" and "src or dst in A2" do not give "src or dst in A1 and A2" (the
// source may be in one, the destination in the other): one side's list
// is kept, the shorter. For or, each list is the union of both sides',
// when both have one.
func hintsOf(n node) FlowHints {
	switch n := n.(type) {
	case addrPrim:
		return FlowHints{Prefixes: []netip.Prefix{n.pf}, IP: n.ip}
	case portPrim:
		return FlowHints{Ports: []PortRange{{uint16(n.lo), uint16(n.hi)}}, IP: true}
	case ipOnly:
		return FlowHints{IP: true}
	case and:
		l, r := hintsOf(n.l), hintsOf(n.r)
		return FlowHints{Prefixes: shorter(l.Prefixes, r.Prefixes), Ports: shorter(l.Ports, r.Ports), IP: l.IP || r.IP}
	case or:
		l, r := hintsOf(n.l), hintsOf(n.r)
		return FlowHints{Prefixes: union(l.Prefixes, r.Prefixes), Ports: union(l.Ports, r.Ports), IP: l.IP && r.IP}
	}
	// not, accept, and the tests hints know nothing of (vlan, less,
	// ether...): no condition.
	return FlowHints{}
}

func shorter[T any](a, b []T) []T {
	if a == nil || (b != nil && len(b) < len(a)) {
		return b
	}
	return a
}

func union[T comparable](a, b []T) []T {
	if a == nil || b == nil {
		return nil
	}
	u := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(u, x) {
			u = append(u, x)
		}
	}
	return u
}
