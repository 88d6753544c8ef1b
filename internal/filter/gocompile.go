package filter

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// ErrUnsupported is returned (wrapped) by the pure-Go compiler for a
// construct of the tcpdump language it does not compile; the message names
// the construct. A build with libpcap (cgo) compiles it.
var ErrUnsupported = errors.New("not supported by the pure-Go filter compiler (a build with libpcap compiles it)")

// snapRet is what the program returns for a frame it keeps: libpcap's
// default snapshot length, so that programs of both compilers agree.
const snapRet = 262144

// goCompile compiles a tcpdump expression for Ethernet (DLT_EN10MB) to
// classic BPF without libpcap. It knows this subset of pcap-filter(7),
// with libpcap's meaning for each (checked against libpcap by the tests):
//
//	ip ip6 arp rarp tcp udp sctp icmp icmp6 igmp
//	[ip|ip6] proto N
//	[ip|ip6|arp|rarp] [src|dst|src or dst|src and dst] host ADDR  (IPv4 or IPv6 literal)
//	[...] net ADDR/LEN, net ADDR mask MASK, net A[.B[.C]]
//	[tcp|udp|sctp] [src|dst|...] port N, portrange N-M
//	ether [src|dst] host MAC (aa:bb:cc:dd:ee:ff), ether proto N (N > 1500)
//	less N, greater N, vlan [ID]
//	and && or || not ! ( )
//
// A bare address or number after and/or (and not or a parenthesis) takes
// the qualifiers of the primitive before it ("host A or not B"). As in
// libpcap, and and or have the same precedence and associate to the left
// ("tcp or udp and port 53" is "(tcp or udp) and port 53"), each vlan
// shifts the offsets of every primitive after it by 4 bytes, numbers are
// decimal, 0x hexadecimal or 0 octal (portrange: decimal only), and
// 12 hex digits are an Ethernet address (refused).
//
// The program is not optimized. On a frame cut short before a field it
// reads, it rejects the frame where libpcap's optimized program may not
// need that field ("port 0 or udp" on a UDP frame cut after its IP
// header); on whole frames the verdicts are libpcap's.
//
// Host and service names, byte-offset expressions (tcp[13] & 2 != 0),
// broadcast/multicast and the other link or protocol keywords are
// refused with an error wrapping ErrUnsupported that names the word.
func goCompile(expr string) ([]bpf.RawInstruction, error) {
	n, err := parse(expr)
	if err != nil {
		return nil, err
	}
	var g codegen
	tl, fl := g.label(), g.label()
	n.emit(&g, tl, fl)
	g.place(tl)
	g.ins = append(g.ins, ains{in: bpf.RetConstant{Val: snapRet}})
	g.place(fl)
	g.ins = append(g.ins, ains{in: bpf.RetConstant{Val: 0}})
	return g.assemble()
}

// parse turns expr into its expression tree; the empty expression
// accepts every frame.
func parse(expr string) (node, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, link: 14}
	var n node = accept{}
	if len(toks) > 0 {
		if n, err = p.expr(); err != nil {
			return nil, err
		}
		if p.pos < len(p.toks) {
			return nil, fmt.Errorf("syntax error at %q", p.toks[p.pos])
		}
	}
	return n, nil
}

// lex splits expr into words, parentheses and the operators ! && ||.
func lex(expr string) ([]string, error) {
	var toks []string
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, expr[i:i+1])
			i++
		case c == '!' && !strings.HasPrefix(expr[i:], "!="):
			toks = append(toks, "!")
			i++
		case strings.HasPrefix(expr[i:], "&&") || strings.HasPrefix(expr[i:], "||"):
			toks = append(toks, expr[i:i+2])
			i += 2
		case isWord(c):
			j := i
			for j < len(expr) && isWord(expr[j]) {
				j++
			}
			toks = append(toks, expr[i:j])
			i = j
		case strings.IndexByte("[]=<>&|+*%^~", c) >= 0 || c == '!':
			return nil, fmt.Errorf("byte-offset expressions and arithmetic (%q): %w", c, ErrUnsupported)
		default:
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	return toks, nil
}

func isWord(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == ':' || c == '/' || c == '-' || c == '_' || c == '\\'
}

// quals are the qualifiers of a primitive: protocol, direction and type.
type quals struct {
	proto string // "", ip, ip6, arp, rarp, tcp, udp, sctp
	dir   string // "", src, dst, "src or dst", "src and dst"
	typ   string // "", host, net, port, portrange
}

type parser struct {
	toks []string
	pos  int
	link int // offset of the link-layer payload: 14, plus 4 per vlan so far
	last *quals
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	if t == "" {
		return t
	}
	p.pos++
	return t
}

// expr: term { (and|or) term }, left-associative, one precedence.
func (p *parser) expr() (node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		switch op {
		case "and", "&&", "or", "||":
		default:
			return l, nil
		}
		p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		if op == "and" || op == "&&" {
			l = and{l, r}
		} else {
			l = or{l, r}
		}
	}
}

func (p *parser) unary() (node, error) {
	switch t := p.peek(); t {
	case "not", "!":
		p.next()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return not{n}, nil
	case "(":
		p.next()
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, errors.New("syntax error: missing )")
		}
		p.last = nil // "(port 1) or 2" is no "port 2"
		return n, nil
	case "":
		return nil, errors.New("syntax error: expression ends early")
	}
	return p.primitive()
}

var unsupportedWords = map[string]bool{
	"broadcast": true, "multicast": true, "gateway": true, "fddi": true, "tr": true,
	"wlan": true, "ppp": true, "slip": true, "link": true, "decnet": true, "atalk": true, "aarp": true,
	"iso": true, "esis": true, "isis": true, "clnp": true, "stp": true, "ipx": true, "netbeui": true,
	"mpls": true, "pppoed": true, "pppoes": true, "geneve": true, "inbound": true, "outbound": true,
	"ifname": true, "on": true, "rnr": true, "rulenum": true, "reason": true, "rset": true,
	"ruleset": true, "srnr": true, "subrulenum": true, "action": true, "type": true, "subtype": true,
	"dir": true, "len": true, "protochain": true, "ah": true, "esp": true, "vrrp": true, "carp": true,
	"pim": true, "igrp": true, "lat": true, "mopdl": true, "moprc": true, "sca": true, "llc": true,
	"ra": true, "ta": true, "addr1": true, "addr2": true, "addr3": true, "addr4": true, "hdpr": true,
	"lane": true, "oam": true, "oamf4": true, "metac": true, "bcc": true, "sc": true, "ilmic": true,
	"connectmsg": true, "metaconnect": true, "vpi": true, "vci": true, "fisu": true, "lssu": true,
	"msu": true, "sio": true, "opc": true, "dpc": true, "sls": true, "ip6multicast": true,
}

// keywords cannot stand where an address or number is due.
var keywords = map[string]bool{
	"(": true, ")": true, "!": true, "not": true, "and": true, "or": true, "&&": true, "||": true,
	"ip": true, "ip6": true, "arp": true, "rarp": true, "tcp": true, "udp": true, "sctp": true,
	"icmp": true, "icmp6": true, "igmp": true, "src": true, "dst": true, "host": true, "net": true,
	"port": true, "portrange": true, "proto": true, "vlan": true, "less": true, "greater": true, "mask": true,
}

var protoNums = map[string]uint32{"tcp": 6, "udp": 17, "sctp": 132}

// primitive parses one primitive, or a bare id that takes the last
// primitive's qualifiers.
func (p *parser) primitive() (node, error) {
	t := p.peek()
	switch t {
	case "less", "greater", "vlan", "icmp", "icmp6", "igmp":
		p.last = nil
	}
	switch t {
	case "less", "greater":
		p.next()
		n, err := p.number(t)
		if err != nil {
			return nil, err
		}
		if t == "less" {
			return test{load: ldLen, op: opGT, k: n, neg: true}, nil
		}
		return test{load: ldLen, op: opGE, k: n}, nil
	case "vlan":
		p.next()
		return p.vlan()
	case "icmp", "icmp6", "igmp":
		p.next()
		return p.markIP(protoNode(p.link, map[string]string{"icmp": "ip", "icmp6": "ip6", "igmp": "ip"}[t],
			map[string]uint32{"icmp": 1, "icmp6": 58, "igmp": 2}[t])), nil
	}
	if t == "ether" {
		p.next()
		p.last = nil
		return p.ether()
	}
	if unsupportedWords[t] {
		return nil, fmt.Errorf("%q: %w", t, ErrUnsupported)
	}
	var q quals
	switch t {
	case "ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp":
		q.proto = p.next()
	}
	switch p.peek() {
	case "src", "dst":
		q.dir = p.next()
		if op := p.peek(); (op == "or" || op == "and") && p.pos+1 < len(p.toks) && p.toks[p.pos+1] == map[string]string{"src": "dst", "dst": "src"}[q.dir] {
			q.dir = "src " + op + " dst"
			p.pos += 2
		}
	}
	switch p.peek() {
	case "host", "net", "port", "portrange":
		q.typ = p.next()
	case "proto":
		if q.dir != "" {
			return nil, errors.New("syntax error: src/dst before proto")
		}
		p.next()
		n, err := p.number("proto")
		if err != nil {
			return nil, err
		}
		if n > 255 {
			return nil, fmt.Errorf("proto %d: not an IP protocol number", n)
		}
		switch q.proto {
		case "", "ip", "ip6":
			return p.markIP(protoNode(p.link, q.proto, n)), nil
		}
		return nil, fmt.Errorf("%s proto: %w", q.proto, ErrUnsupported)
	}
	if q == (quals{}) {
		// A bare id right after and/or: the last primitive's qualifiers.
		prev := ""
		if p.pos > 0 {
			prev = p.toks[p.pos-1]
		}
		switch prev {
		case "and", "or", "&&", "||", "not", "!", "(":
		default:
			p.last = nil
		}
		if p.last == nil {
			if keywords[t] {
				return nil, fmt.Errorf("syntax error at %q", t)
			}
			return nil, fmt.Errorf("syntax error at %q: an address or number needs qualifiers (host, net, port) unless it follows and/or after one that has them", t)
		}
		q = *p.last
	} else if q.dir == "" && q.typ == "" {
		switch p.peek() {
		case "", "and", "&&", "or", "||", ")":
			p.last = nil
			if q.proto == "arp" || q.proto == "rarp" {
				return protoOnly(p.link, q.proto), nil
			}
			return p.markIP(protoOnly(p.link, q.proto)), nil
		}
		return nil, fmt.Errorf("syntax error at %q: %s before an address or number needs host, net, port or src/dst", p.peek(), q.proto)
	}
	id := p.next()
	if id == "" {
		return nil, errors.New("syntax error: expression ends early")
	}
	if keywords[id] {
		return nil, fmt.Errorf("syntax error at %q", id)
	}
	if unsupportedWords[id] {
		return nil, fmt.Errorf("%q: %w", id, ErrUnsupported)
	}
	if q.typ == "" {
		q.typ = "host"
	}
	last := q
	p.last = &last
	switch q.typ {
	case "host":
		if strings.Contains(id, "/") {
			return nil, fmt.Errorf("%q: a network needs net (net %s)", id, id)
		}
		a, err := addr(id)
		if err != nil {
			return nil, err
		}
		bits := 32
		if a.Is6() {
			bits = 128
		}
		return p.addrNode(q, netip.PrefixFrom(a, bits))
	case "net":
		pf, err := p.netPrefix(id)
		if err != nil {
			return nil, err
		}
		return p.addrNode(q, pf)
	default: // port, portrange
		return p.portNode(q, id)
	}
}

func (p *parser) vlan() (node, error) {
	tpid := or{or{etherType(p.link, 0x8100), etherType(p.link, 0x88a8)}, etherType(p.link, 0x9100)}
	var n node = tpid
	if t := p.peek(); t != "" && t[0] >= '0' && t[0] <= '9' {
		id, err := p.number("vlan")
		if err != nil {
			return nil, err
		}
		if id > 4095 {
			return nil, fmt.Errorf("vlan %d: VLAN IDs are 0 to 4095", id)
		}
		n = and{tpid, test{load: load{size: 2, off: p.link}, mask: 0xfff, op: opEQ, k: id}}
	}
	p.link += 4
	return n, nil
}

// ether parses what follows "ether": [src|dst] [host] MAC, or proto N
// for an EtherType above 1500. The Ethernet addresses are at the start of
// the frame whatever vlan came before.
func (p *parser) ether() (node, error) {
	if p.peek() == "proto" {
		p.next()
		n, err := p.number("ether proto")
		if err != nil {
			return nil, err
		}
		if n <= 1500 || n > 0xffff {
			return nil, fmt.Errorf("ether proto %d (a length or LLC type): %w", n, ErrUnsupported)
		}
		return etherType(p.link, n), nil
	}
	dir := ""
	if d := p.peek(); d == "src" || d == "dst" {
		dir = p.next()
	}
	if p.peek() == "host" {
		p.next()
	} else if dir == "" {
		return nil, fmt.Errorf("ether %q: %w", p.peek(), ErrUnsupported)
	}
	id := p.next()
	mac, err := net.ParseMAC(id)
	if err != nil || len(mac) != 6 || strings.Count(id, ":") != 5 {
		return nil, fmt.Errorf("ethernet address %q: want six bytes of two hex digits joined by ':'", id)
	}
	at := func(off int) node {
		return and{
			test{load: load{size: 4, off: off + 2}, op: opEQ, k: uint32(mac[2])<<24 | uint32(mac[3])<<16 | uint32(mac[4])<<8 | uint32(mac[5])},
			test{load: load{size: 2, off: off}, op: opEQ, k: uint32(mac[0])<<8 | uint32(mac[1])},
		}
	}
	switch dir {
	case "src":
		return at(6), nil
	case "dst":
		return at(0), nil
	}
	return or{at(6), at(0)}, nil
}

// number parses a decimal, 0x hexadecimal or 0 octal number, as libpcap.
func (p *parser) number(what string) (uint32, error) {
	t := p.next()
	n, err := parseNum(t)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a number", what, t)
	}
	return n, nil
}

func parseNum(t string) (uint32, error) {
	if len(t) == 12 && strings.Trim(t, "0123456789abcdefABCDEF") == "" {
		// libpcap reads twelve hex digits as an Ethernet address.
		return 0, fmt.Errorf("ethernet address %q: %w", t, ErrUnsupported)
	}
	base := 10
	switch {
	case strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "0X"):
		base, t = 16, t[2:]
	case len(t) > 1 && t[0] == '0':
		base = 8
	}
	if t == "" || t[0] == '+' || t[0] == '-' || strings.Contains(t, "_") {
		return 0, errors.New("bad number")
	}
	n, err := strconv.ParseUint(t, base, 32)
	return uint32(n), err
}

func addr(id string) (netip.Addr, error) {
	a, err := netip.ParseAddr(id)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		if err == nil {
			err = errors.New("zoned or IPv4-mapped")
		}
		if id != "" && (id[0] < '0' || id[0] > '9') && !strings.Contains(id, ":") {
			return netip.Addr{}, fmt.Errorf("host name %q: %w (give an address)", id, ErrUnsupported)
		}
		return netip.Addr{}, fmt.Errorf("address %q: %v", id, err)
	}
	return a, nil
}

// netPrefix parses a network as libpcap: ADDR/LEN, ADDR mask MASK, or
// one to three dotted IPv4 bytes (10 is 10.0.0.0/8).
func (p *parser) netPrefix(id string) (netip.Prefix, error) {
	var pf netip.Prefix
	if a, l, ok := strings.Cut(id, "/"); ok {
		ad, err := addr(a)
		if err != nil {
			return pf, err
		}
		n, err := parseNum(l) // a number as libpcap reads one: 010 is 8
		if err != nil || int(n) > ad.BitLen() {
			return pf, fmt.Errorf("net %q: bad prefix length", id)
		}
		pf = netip.PrefixFrom(ad, int(n))
	} else if p.peek() == "mask" {
		p.next()
		ad, err := addr(id)
		if err != nil {
			return pf, err
		}
		m, err := addr(p.next())
		if err != nil || !ad.Is4() || !m.Is4() {
			return pf, fmt.Errorf("net %q mask: want IPv4 address and mask", id)
		}
		b := m.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		n := bits.OnesCount32(v)
		if v != ^uint32(0)<<(32-n) {
			return pf, fmt.Errorf("mask %s: %w (a mask with gaps)", m, ErrUnsupported)
		}
		pf = netip.PrefixFrom(ad, n)
	} else if a, err := netip.ParseAddr(id); err == nil {
		pf = netip.PrefixFrom(a, a.BitLen())
	} else if !strings.Contains(id, ".") {
		// A number: its leading zero bytes are dropped, and the mask
		// covers the rest (net 10 is 10.0.0.0/8, net 256 1.0.0.0/16).
		v, err := parseNum(id)
		if err != nil {
			if _, err := addr(id); err != nil {
				return pf, err
			}
			return pf, fmt.Errorf("net %q: bad address", id)
		}
		bits := 32
		for v != 0 && v&0xff000000 == 0 {
			v <<= 8
			bits -= 8
		}
		pf = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
	} else {
		parts := strings.Split(id, ".")
		if len(parts) > 3 {
			return pf, fmt.Errorf("net %q: bad address", id)
		}
		var b [4]byte
		for i, s := range parts {
			v, err := strconv.ParseUint(s, 10, 8) // decimal only, as libpcap's
			if err != nil || strings.TrimLeft(s, "0123456789") != "" {
				if _, err := addr(id); err != nil {
					return pf, err
				}
				return pf, fmt.Errorf("net %q: bad address", id)
			}
			b[i] = byte(v)
		}
		pf = netip.PrefixFrom(netip.AddrFrom4(b), 8*len(parts))
	}
	if pf.Masked().Addr() != pf.Addr() {
		return pf, fmt.Errorf("net %s: non-network bits set", id)
	}
	return pf, nil
}

// netNode matches an address or network in the header of every protocol
// the qualifiers allow: for IPv4, IP, ARP and RARP by default, as libpcap.
func (p *parser) netNode(q quals, pf netip.Prefix) (node, error) {
	type hdr struct {
		proto    string
		et       uint32
		src, dst int
	}
	var hs []hdr
	if pf.Addr().Is4() {
		hs = []hdr{{"ip", 0x0800, 12, 16}, {"arp", 0x0806, 14, 24}, {"rarp", 0x8035, 14, 24}}
	} else {
		hs = []hdr{{"ip6", 0x86dd, 8, 24}}
	}
	switch q.proto {
	case "", "ip", "ip6", "arp", "rarp":
	default:
		return nil, fmt.Errorf("%s %s: qualifiers that do not fit together", q.proto, q.typ)
	}
	var n node
	for _, h := range hs {
		if q.proto != "" && q.proto != h.proto {
			continue
		}
		m := p.addrMatch(q.dir, h.src, h.dst, pf)
		m = and{etherType(p.link, h.et), m}
		if n == nil {
			n = m
		} else {
			n = or{n, m}
		}
	}
	if n == nil {
		return nil, fmt.Errorf("%s %s %s: address family does not fit the protocol", q.proto, q.typ, pf)
	}
	return n, nil
}

// addrMatch compares the source and or destination address fields (at
// src and dst bytes into the network header) with pf.
func (p *parser) addrMatch(dir string, src, dst int, pf netip.Prefix) node {
	one := func(off int) node {
		b := pf.Addr().AsSlice()
		var n node
		for i := 0; i < len(b); i += 4 {
			bits := min(max(pf.Bits()-8*i, 0), 32)
			if bits == 0 {
				continue
			}
			mask := uint32(math.MaxUint32 << (32 - bits))
			v := uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
			t := test{load: load{size: 4, off: p.link + off + i}, op: opEQ, k: v}
			if mask != math.MaxUint32 {
				t.mask = mask
			}
			if n == nil {
				n = t
			} else {
				n = and{n, t}
			}
		}
		if n == nil {
			return accept{}
		}
		return n
	}
	switch dir {
	case "src":
		return one(src)
	case "dst":
		return one(dst)
	case "src and dst":
		return and{one(src), one(dst)}
	}
	return or{one(src), one(dst)}
}

func (p *parser) portNode(q quals, id string) (node, error) {
	var lo, hi uint32
	if q.typ == "portrange" {
		a, b, ok := strings.Cut(id, "-")
		if !ok {
			return nil, fmt.Errorf("portrange %q: want N-M", id)
		}
		// Decimal, as libpcap reads a range (sscanf %d-%d): 0100 is 100.
		var err error
		if lo, err = rangePort(a); err != nil {
			return nil, err
		}
		if hi, err = rangePort(b); err != nil {
			return nil, err
		}
		if lo > hi {
			lo, hi = hi, lo
		}
	} else {
		var err error
		if lo, err = port(id); err != nil {
			return nil, err
		}
		hi = lo
	}
	protos := []uint32{132, 6, 17}
	switch q.proto {
	case "":
	case "tcp", "udp", "sctp":
		protos = []uint32{protoNums[q.proto]}
	default:
		return nil, fmt.Errorf("%s %s: qualifiers that do not fit together", q.proto, q.typ)
	}
	anyProto := func(off int) node {
		var n node
		for _, pr := range protos {
			t := test{load: load{size: 1, off: off}, op: opEQ, k: pr}
			if n == nil {
				n = t
			} else {
				n = or{n, t}
			}
		}
		return n
	}
	match := func(ld load) node {
		if lo == hi {
			return test{load: ld, op: opEQ, k: lo}
		}
		return and{test{load: ld, op: opGE, k: lo}, test{load: ld, op: opGT, k: hi, neg: true}}
	}
	dirs := func(src, dst load) node {
		switch q.dir {
		case "src":
			return match(src)
		case "dst":
			return match(dst)
		case "src and dst":
			return and{match(src), match(dst)}
		}
		return or{match(src), match(dst)}
	}
	l := p.link
	v6 := and{and{etherType(l, 0x86dd), anyProto(l + 6)},
		dirs(load{size: 2, off: l + 40}, load{size: 2, off: l + 42})}
	v4 := and{and{and{etherType(l, 0x0800), anyProto(l + 9)},
		test{load: load{size: 2, off: l + 6}, op: opSet, k: 0x1fff, neg: true}},
		dirs(load{size: 2, off: l, ipHdr: l}, load{size: 2, off: l + 2, ipHdr: l})}
	return p.mark(portPrim{or{v6, v4}, lo, hi}, or{v6, v4}), nil
}

func port(s string) (uint32, error) {
	n, err := parseNum(s)
	if err != nil {
		if s != "" && (s[0] < '0' || s[0] > '9') {
			return 0, fmt.Errorf("service name %q: %w (give a port number)", s, ErrUnsupported)
		}
		return 0, fmt.Errorf("port %q: want a number", s)
	}
	if n > 65535 {
		return 0, fmt.Errorf("port %d: over 65535", n)
	}
	return n, nil
}

func rangePort(s string) (uint32, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		if _, err := port(s); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("portrange %q: %w (give decimal numbers)", s, ErrUnsupported)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("port %s: over 65535", s)
	}
	return uint32(n), nil
}

func etherType(link int, t uint32) node {
	return test{load: load{size: 2, off: link - 2}, op: opEQ, k: t}
}

// protoNode matches IP protocol n: for IPv6 in the fixed header's next
// header or behind a fragment header, as libpcap.
func protoNode(link int, family string, n uint32) node {
	v4 := and{etherType(link, 0x0800), test{load: load{size: 1, off: link + 9}, op: opEQ, k: n}}
	v6 := and{etherType(link, 0x86dd), or{
		test{load: load{size: 1, off: link + 6}, op: opEQ, k: n},
		and{test{load: load{size: 1, off: link + 6}, op: opEQ, k: 44}, test{load: load{size: 1, off: link + 40}, op: opEQ, k: n}},
	}}
	switch family {
	case "ip":
		return v4
	case "ip6":
		return v6
	}
	return or{v4, v6}
}

func protoOnly(link int, proto string) node {
	switch proto {
	case "ip":
		return etherType(link, 0x0800)
	case "ip6":
		return etherType(link, 0x86dd)
	case "arp":
		return etherType(link, 0x0806)
	case "rarp":
		return etherType(link, 0x8035)
	}
	return protoNode(link, "", protoNums[proto])
}

// The expression tree. emit writes code that jumps to tl when the node
// holds and to fl when not.
type node interface{ emit(g *codegen, tl, fl int) }

type and struct{ l, r node }
type or struct{ l, r node }
type not struct{ n node }
type accept struct{}

func (n and) emit(g *codegen, tl, fl int) {
	m := g.label()
	n.l.emit(g, m, fl)
	g.place(m)
	n.r.emit(g, tl, fl)
}

func (n or) emit(g *codegen, tl, fl int) {
	m := g.label()
	n.l.emit(g, tl, m)
	g.place(m)
	n.r.emit(g, tl, fl)
}

func (n not) emit(g *codegen, tl, fl int) { n.n.emit(g, fl, tl) }

func (accept) emit(g *codegen, tl, fl int) {
	g.ins = append(g.ins, ains{in: bpf.Jump{}, jt: tl, cond: jumpAlways})
}

type cmpOp int

const (
	opEQ cmpOp = iota
	opGT
	opGE
	opSet
)

// load is a packet load: size bytes at off, plus the length of the IPv4
// header at ipHdr when ipHdr is not 0.
type load struct {
	size, off int
	ipHdr     int
}

// ldLen loads the frame's length.
var ldLen = load{size: -1}

// test is a leaf: load, optional mask, compare; neg swaps the outcome.
type test struct {
	load load
	mask uint32
	op   cmpOp
	k    uint32
	neg  bool
}

func (t test) emit(g *codegen, tl, fl int) {
	switch {
	case t.load.size < 0:
		g.ins = append(g.ins, ains{in: bpf.LoadExtension{Num: bpf.ExtLen}})
	case t.load.ipHdr > 0:
		g.ins = append(g.ins, ains{in: bpf.LoadMemShift{Off: uint32(t.load.ipHdr)}},
			ains{in: bpf.LoadIndirect{Off: uint32(t.load.off), Size: t.load.size}})
	default:
		g.ins = append(g.ins, ains{in: bpf.LoadAbsolute{Off: uint32(t.load.off), Size: t.load.size}})
	}
	if t.mask != 0 {
		g.ins = append(g.ins, ains{in: bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: t.mask}})
	}
	if t.neg {
		tl, fl = fl, tl
	}
	g.ins = append(g.ins, ains{cond: jumpCond, op: t.op, k: t.k, jt: tl, jf: fl})
}

const (
	plain = iota
	jumpAlways
	jumpCond
)

// ains is an instruction whose jumps name labels.
type ains struct {
	in     bpf.Instruction
	cond   int
	op     cmpOp
	k      uint32
	jt, jf int
}

type codegen struct {
	ins    []ains
	labels []int // label -> index in ins
}

func (g *codegen) label() int {
	g.labels = append(g.labels, -1)
	return len(g.labels) - 1
}

func (g *codegen) place(l int) { g.labels[l] = len(g.ins) }

// assemble resolves labels. A conditional jump reaches 255 instructions
// at most: a farther target gets an unconditional jump (32-bit offset)
// right after the condition, repeated until every jump fits.
func (g *codegen) assemble() ([]bpf.RawInstruction, error) {
	for {
		far := -1
		for i, a := range g.ins {
			if a.cond == jumpCond && (g.labels[a.jt]-i-1 > 255 || g.labels[a.jf]-i-1 > 255) {
				far = i
				break
			}
		}
		if far < 0 {
			break
		}
		a := g.ins[far]
		lt, lf := g.label(), g.label()
		tramp := []ains{{in: bpf.Jump{}, cond: jumpAlways, jt: a.jt}, {in: bpf.Jump{}, cond: jumpAlways, jt: a.jf}}
		g.ins[far].jt, g.ins[far].jf = lt, lf
		g.ins = append(g.ins[:far+1], append(tramp, g.ins[far+1:]...)...)
		for l, at := range g.labels {
			if at > far {
				g.labels[l] = at + 2
			}
		}
		g.labels[lt], g.labels[lf] = far+1, far+2
	}
	if len(g.ins) > MaxInstructions {
		return nil, fmt.Errorf("%w: %d BPF instructions, the limit is %d", ErrTooComplex, len(g.ins), MaxInstructions)
	}
	out := make([]bpf.Instruction, len(g.ins))
	for i, a := range g.ins {
		switch a.cond {
		case plain:
			out[i] = a.in
		case jumpAlways:
			out[i] = bpf.Jump{Skip: uint32(g.labels[a.jt] - i - 1)}
		case jumpCond:
			jt, jf := uint8(g.labels[a.jt]-i-1), uint8(g.labels[a.jf]-i-1)
			switch a.op {
			case opSet:
				out[i] = bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: a.k, SkipTrue: jt, SkipFalse: jf}
			case opGT:
				out[i] = bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: a.k, SkipTrue: jt, SkipFalse: jf}
			case opGE:
				out[i] = bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: a.k, SkipTrue: jt, SkipFalse: jf}
			default:
				out[i] = bpf.JumpIf{Cond: bpf.JumpEqual, Val: a.k, SkipTrue: jt, SkipFalse: jf}
			}
		}
	}
	raw, err := bpf.Assemble(out)
	if err != nil {
		return nil, fmt.Errorf("assembling: %w", err)
	}
	return raw, nil
}
