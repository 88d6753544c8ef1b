// Package provision sets mirroring up and tears it down through the
// Contrail config API, in the ways that leave what tenants' traffic is
// allowed unchanged:
//
//   - a dynamic, mirror-only network policy (rules with mirror_to and no
//     simple_action, attached with a timer in the ref attr), which the
//     vRouter agent evaluates first and non-terminally for every flow of
//     the network, denied ones included (KindPolicy, and
//     KindServiceInstance for an analyzer service instance);
//   - port mirroring (interface_mirror) of one VM interface (KindPort) or
//     of every port of a network (KindPerPort), for provider networks and
//     ports with policy disabled.
//
// A policy mirror is verified after it is attached: the network's dynamic
// ACL must hold the rule with its destination and the static ACL must be
// the snapshot taken before; otherwise it is rolled back. Every object it
// creates carries a name prefix and annotations, so that List finds it
// again and reports whether it works, and Delete removes exactly what
// Create made and restores what Create changed. A Create that fails half
// way rolls back the steps already done. The mechanism is explained in
// docs/mirror.md; the facts behind it in the spec's "How policies become
// ACLs".
package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/vrsniff/vrsniff/internal/contrail"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Marker: every object vrsniff creates is named Prefix + mirror name and
// annotated with these keys.
const (
	Prefix      = "vrsniff-"
	KeyMirror   = "vrsniff.mirror"   // the mirror's name
	KeyKind     = "vrsniff.kind"     // a Kind
	KeyTarget   = "vrsniff.target"   // what is mirrored (VN fq_name or port UUID)
	KeyAnalyzer = "vrsniff.analyzer" // where it goes
	KeySpec     = "vrsniff.spec"     // digest of the Spec, to recognise a repeated create
	KeySaved    = "vrsniff.saved"    // on a port: what to restore on delete
	// KeyStaticACL holds, on a policy mirror's policy, the network's
	// static ACL entries as they were before the policy was attached
	// (canonical JSON, or "none"): a dynamic mirror must leave them
	// unchanged. Entries, not access_control_list_hash, which differs
	// between schema transformer processes.
	KeyStaticACL = "vrsniff.static-acl"
)

// Kind is the way a mirror is set up.
type Kind string

// The kinds of mirror.
const (
	KindPolicy          Kind = "policy"           // dynamic mirror-only policy, mirror_to an analyzer IP
	KindPort            Kind = "port"             // interface_mirror on a VM port
	KindPerPort         Kind = "per-port"         // interface_mirror on every port of a network
	KindServiceInstance Kind = "service-instance" // dynamic mirror-only policy to an analyzer service instance
)

// Analyzer is the destination of mirrored traffic.
type Analyzer struct {
	IP            string // analyzer IP address (required except for KindServiceInstance)
	UDPPort       int    // 0 means mirror.DefaultPort, the vRouter's
	JuniperHeader *bool  // nil: server default (true); 3.1+
	NHMode        string // "", "dynamic" or "static"; 3.1+
	MAC           string // analyzer MAC; 3.1+
	VTEP          string // static next hop: VTEP IP
	VTEPMAC       string // static next hop: VTEP MAC (optional)
	VNI           int    // static next hop: VXLAN network identifier
	NICVLAN       int    // NIC-assisted mirroring VLAN; 0 means off; 4.0+
}

// Match narrows which traffic a policy rule mirrors.
type Match struct {
	Protocol  string // any (default), tcp, udp, icmp, icmp6 or a number
	Direction string // "<>" (default, both ways) or ">"
	SrcCIDR   string // source subnet instead of the whole network
	DstCIDR   string // destination subnet
	SrcPorts  string // "80" or "1000-2000"; empty means any
	DstPorts  string
	OtherVN   string // the far side's network (colon fq_name); empty means any
}

// Spec is one mirror to create.
type Spec struct {
	Name    string   // mirror name; objects are named Prefix + Name
	Project []string // [domain, project] that owns the created objects
	Kind    Kind

	// KindPolicy, KindServiceInstance and KindPerPort: the network to
	// mirror (colon-separated fq_name); the traffic to match (policies
	// only).
	VN    string
	Match Match

	// KindPort: the port, by UUID or as the VM's Interface-th port.
	Port             string
	VM               string
	Interface        int
	TrafficDirection string // ingress, egress or both (default)

	Analyzer Analyzer

	// AnalyzerVN is the analyzer's network: for KindServiceInstance the
	// network of its left interface (default VN); without the Juniper
	// header and with a dynamic next hop, the network whose routing
	// instance the mirror_to names.
	AnalyzerVN string
	// SnifferPort is, for KindServiceInstance, the sniffer VM's port on
	// AnalyzerVN, linked to the new instance's port tuple: svc-monitor
	// gives the instance its address from it.
	SnifferPort string
	// AnalyzerSI, for KindServiceInstance, names an existing analyzer
	// service instance (domain:project:name, e.g. made by the Heat
	// template) to mirror to instead of creating one.
	AnalyzerSI string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// CheckName checks a mirror name: 1-63 letters, digits, '.', '_' or '-',
// not starting with one of the last three. The name is part of object
// names and of the commands printed for an operator, unquoted.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("mirror name %q: use 1-63 letters, digits, '.', '_' or '-'", name)
	}
	return nil
}

// ParseProject reads a --project value, domain:project; "" gives nil.
func ParseProject(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	l := strings.Split(p, ":")
	if len(l) != 2 || l[0] == "" || l[1] == "" {
		return nil, fmt.Errorf("--project %q: want domain:project", p)
	}
	return l, nil
}

// Check validates s and fills in defaults. Project may stay nil: Create
// then uses the project of the network or port mirrored.
func (s *Spec) Check() error {
	if err := CheckName(s.Name); err != nil {
		return err
	}
	if s.Project != nil && (len(s.Project) != 2 || s.Project[0] == "" || s.Project[1] == "") {
		return fmt.Errorf("project %q: want domain:project", strings.Join(s.Project, ":"))
	}
	if s.Project == nil && s.VN != "" {
		if vn := split(s.VN); len(vn) == 3 {
			s.Project = clone(vn[:2])
		}
	}
	switch s.Kind {
	case KindPolicy, KindServiceInstance, KindPerPort:
		if err := checkFQ(s.VN, 3); err != nil && !isUUID(s.VN) {
			return fmt.Errorf("network (a UUID or domain:project:name): %w", err)
		}
		if s.Kind != KindPerPort {
			if err := s.Match.check(); err != nil {
				return err
			}
		} else if s.Match != (Match{}) {
			return fmt.Errorf("port mirroring copies every packet of a port: the match flags apply to policy mirrors only")
		}
	case KindPort:
		if (s.Port == "") == (s.VM == "") {
			return fmt.Errorf("port mirroring needs exactly one of a port UUID or a VM name")
		}
		if s.Port != "" && s.Interface != 0 {
			return fmt.Errorf("--interface picks a port of --vm; with --port it means nothing")
		}
		if s.Match != (Match{}) {
			return fmt.Errorf("port mirroring copies every packet of a port: the match flags apply to policy mirrors only")
		}
	default:
		return fmt.Errorf("unknown mirror kind %q", s.Kind)
	}
	if s.Kind == KindPort || s.Kind == KindPerPort {
		switch s.TrafficDirection {
		case "":
			s.TrafficDirection = "both"
		case "ingress", "egress", "both":
		default:
			return fmt.Errorf("traffic direction %q: want ingress (packets the VM sends), egress (packets delivered to it) or both", s.TrafficDirection)
		}
	} else if s.TrafficDirection != "" && s.TrafficDirection != "both" {
		return fmt.Errorf("--traffic-direction applies to port mirroring; a policy mirror matches with --direction")
	}
	if s.Kind == KindServiceInstance {
		return s.checkServiceInstance()
	}
	if s.AnalyzerSI != "" || s.SnifferPort != "" {
		return fmt.Errorf("--analyzer-si and --sniffer-port belong to --service-instance")
	}
	return s.checkAnalyzer()
}

func (s *Spec) checkServiceInstance() error {
	if s.AnalyzerSI != "" {
		if err := checkFQ(s.AnalyzerSI, 3); err != nil {
			return fmt.Errorf("analyzer service instance: %w", err)
		}
		if s.SnifferPort != "" || s.AnalyzerVN != "" {
			return fmt.Errorf("with an existing service instance (--analyzer-si), --sniffer-port and --analyzer-vn are the instance's own business")
		}
	} else {
		if s.AnalyzerVN == "" {
			s.AnalyzerVN = s.VN
		}
		if err := checkFQ(s.AnalyzerVN, 3); err != nil {
			return fmt.Errorf("analyzer network: %w", err)
		}
		if s.SnifferPort == "" {
			// Without a port in the tuple svc-monitor never gives the
			// instance an address, and the rule mirrors nothing.
			return fmt.Errorf("a service-instance mirror needs the sniffer VM's port on the analyzer network (--sniffer-port), or an existing instance (--analyzer-si)")
		}
	}
	if s.Analyzer != (Analyzer{UDPPort: s.Analyzer.UDPPort}) || (s.Analyzer.UDPPort != 0 && s.Analyzer.UDPPort != mirror.DefaultPort) {
		return fmt.Errorf("a service-instance mirror takes its destination from the instance: leave out the analyzer flags")
	}
	s.Analyzer.UDPPort = 0
	return nil
}

func (s *Spec) checkAnalyzer() error {
	a := &s.Analyzer
	if a.UDPPort == 0 {
		a.UDPPort = mirror.DefaultPort
	}
	if a.UDPPort < 1 || a.UDPPort > 65535 {
		return fmt.Errorf("analyzer UDP port %d out of range", a.UDPPort)
	}
	switch a.NHMode {
	case "", "dynamic":
		if a.VTEP != "" || a.VNI != 0 || a.VTEPMAC != "" {
			return fmt.Errorf("--vtep, --vtep-mac and --vni need --nh-mode static")
		}
	case "static":
		// The agent resolves the VTEP in the fabric's IPv4 table.
		if v, err := netip.ParseAddr(a.VTEP); err != nil || !v.Is4() {
			return fmt.Errorf("static next hop needs the IPv4 address of a VTEP (--vtep): %q", a.VTEP)
		}
		if a.VNI < 1 || a.VNI > 1<<24-1 {
			return fmt.Errorf("static next hop needs a VNI in 1..16777215 (--vni), got %d", a.VNI)
		}
		if a.JuniperHeader != nil && *a.JuniperHeader {
			return fmt.Errorf("the vRouter does not support the Juniper header with a static next hop")
		}
		if a.VTEPMAC != "" {
			if _, err := net.ParseMAC(a.VTEPMAC); err != nil {
				return fmt.Errorf("VTEP MAC %q: %w", a.VTEPMAC, err)
			}
		}
		if a.IP == "" {
			a.IP = a.VTEP
		}
	default:
		return fmt.Errorf("next-hop mode %q: want dynamic or static", a.NHMode)
	}
	if a.MAC != "" {
		if _, err := net.ParseMAC(a.MAC); err != nil {
			return fmt.Errorf("analyzer MAC %q: %w", a.MAC, err)
		}
	}
	if a.NHMode != "static" && a.JuniperHeader != nil && !*a.JuniperHeader {
		// Without the header the agent forwards the frame itself in the
		// analyzer's routing instance, to its MAC; lacking either, it
		// programs a discard next hop.
		if a.MAC == "" || s.AnalyzerVN == "" {
			return fmt.Errorf("without the Juniper header a dynamic next hop needs the analyzer's MAC (--analyzer-mac) and network (--analyzer-vn); or use --nh-mode static")
		}
		if err := checkFQ(s.AnalyzerVN, 3); err != nil {
			return fmt.Errorf("analyzer network: %w", err)
		}
	} else if s.AnalyzerVN != "" {
		return fmt.Errorf("--analyzer-vn applies to --service-instance and to --juniper-header=false")
	}
	if a.NICVLAN < 0 || a.NICVLAN > 4094 {
		return fmt.Errorf("NIC-assisted mirroring VLAN %d out of range 1..4094", a.NICVLAN)
	}
	if a.IP == "" {
		return fmt.Errorf("say where mirrored traffic goes: --analyzer-ip, --nh-mode static with --vtep and --vni, or --service-instance")
	}
	if _, err := netip.ParseAddr(a.IP); err != nil {
		return fmt.Errorf("analyzer IP address %q: %w", a.IP, err)
	}
	return nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isUUID(s string) bool { return uuidRE.MatchString(s) }

func checkFQ(fq string, n int) error {
	p := strings.Split(fq, ":")
	if len(p) != n {
		return fmt.Errorf("%q: want %d colon-separated names (domain:project:name)", fq, n)
	}
	for _, e := range p {
		if e == "" {
			return fmt.Errorf("%q: empty name", fq)
		}
	}
	return nil
}

func (m *Match) check() error {
	switch m.Direction {
	case "":
		m.Direction = "<>"
	case "<>", ">":
	default:
		return fmt.Errorf("direction %q: want <> or >", m.Direction)
	}
	switch p := strings.ToLower(m.Protocol); p {
	case "":
		m.Protocol = "any"
	case "any", "tcp", "udp", "icmp", "icmp6":
		m.Protocol = p
	default:
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 255 {
			return fmt.Errorf("protocol %q: want any, tcp, udp, icmp, icmp6 or 0-255", m.Protocol)
		}
	}
	fams := map[bool]string{}
	for _, c := range []string{m.SrcCIDR, m.DstCIDR} {
		if c != "" {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return fmt.Errorf("subnet %q: %w", c, err)
			}
			fams[p.Addr().Is6()] = c
		}
	}
	if len(fams) == 2 {
		return fmt.Errorf("subnets %s and %s: one rule matches one IP version", fams[false], fams[true])
	}
	if e := m.ethertype(); e != "" {
		if c, ok := fams[e == "IPv4"]; ok {
			return fmt.Errorf("protocol %s is %s only, but subnet %s is not", m.Protocol, e, c)
		}
	}
	for _, p := range []string{m.SrcPorts, m.DstPorts} {
		if _, err := parsePorts(p); err != nil {
			return err
		}
	}
	if m.OtherVN != "" {
		if err := checkFQ(m.OtherVN, 3); err != nil {
			return fmt.Errorf("other network: %w", err)
		}
		if m.DstCIDR != "" {
			return fmt.Errorf("give either the other network or a destination subnet, not both")
		}
	}
	return nil
}

// ethertype is the IP version the rule is limited to: by its protocol
// (ICMP is IPv4's, ICMPv6 IPv6's), else by its subnets; "" for both.
func (m *Match) ethertype() string {
	switch m.Protocol {
	case "icmp", "1":
		return "IPv4"
	case "icmp6", "58":
		return "IPv6"
	}
	for _, c := range []string{m.SrcCIDR, m.DstCIDR} {
		if c == "" {
			continue
		}
		if netip.MustParsePrefix(c).Addr().Is6() {
			return "IPv6"
		}
		return "IPv4"
	}
	return ""
}

// parsePorts parses "80" or "1000-2000"; empty means any.
func parsePorts(s string) (contrail.PortType, error) {
	if s == "" || s == "any" {
		return contrail.AnyPort, nil
	}
	lo, hi, rng := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(lo)
	b := a
	var err2 error
	if rng {
		b, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || a < 0 || b > 65535 || a > b {
		return contrail.PortType{}, fmt.Errorf("ports %q: want N or N-M within 0-65535", s)
	}
	return contrail.PortType{StartPort: a, EndPort: b}, nil
}

// digest identifies a spec's settings, so that creating the same mirror
// again is recognised and a different one under the same name refused.
func (s *Spec) digest() string {
	c := *s
	c.Name = ""
	b, _ := json.Marshal(c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// analyzerText says where traffic goes, for annotations and listings.
func (s *Spec) analyzerText() string {
	a := s.Analyzer
	switch {
	case s.Kind == KindServiceInstance:
		return "service-instance " + colon(s.siFQ())
	case a.NHMode == "static":
		return fmt.Sprintf("vxlan %s vni %d", a.VTEP, a.VNI)
	}
	return fmt.Sprintf("%s udp/%d", a.IP, a.UDPPort)
}

func (s *Spec) objName() string    { return Prefix + s.Name }
func (s *Spec) policyFQ() []string { return append(clone(s.Project), s.objName()) }
func (s *Spec) stFQ() []string     { return []string{s.Project[0], s.objName()} }
func (s *Spec) tupleFQ() []string  { return append(s.siFQ(), s.objName()+"-tuple") }
func clone(l []string) []string    { return append([]string(nil), l...) }
func colon(fq []string) string     { return strings.Join(fq, ":") }
func split(fq string) []string     { return strings.Split(fq, ":") }
func ptr[T any](v T) *T            { return &v }

// siFQ is the analyzer service instance: an existing one, or the one the
// mirror creates.
func (s *Spec) siFQ() []string {
	if s.AnalyzerSI != "" {
		return split(s.AnalyzerSI)
	}
	return append(clone(s.Project), s.objName())
}

// analyzerName is the mirror_to analyzer_name. Every compute node keys its
// mirror table by it, cluster-wide: two mirrors under one name overwrite
// each other's destination, so it carries the domain and project.
func (s *Spec) analyzerName() string {
	if s.Kind == KindServiceInstance {
		return colon(s.siFQ())
	}
	return colon(s.policyFQ())
}

// mirrorTo builds the mirror_to value. Fields that are not set stay out of
// the request: a 3.0 server rejects the ones it does not know.
func (s *Spec) mirrorTo() *contrail.MirrorActionType {
	if s.Kind == KindServiceInstance {
		// The schema transformer fills in the instance's address.
		return &contrail.MirrorActionType{AnalyzerName: s.analyzerName()}
	}
	a := s.Analyzer
	m := &contrail.MirrorActionType{
		// The agent keys its mirror table by analyzer_name and programs
		// nothing without one.
		AnalyzerName:       s.analyzerName(),
		AnalyzerIPAddress:  a.IP,
		UDPPort:            a.UDPPort,
		JuniperHeader:      a.JuniperHeader,
		NhMode:             a.NHMode,
		AnalyzerMACAddress: a.MAC,
	}
	switch {
	case a.NHMode == "static":
		if m.JuniperHeader == nil {
			m.JuniperHeader = ptr(false)
		}
		m.StaticNhHeader = &contrail.StaticMirrorNhType{VtepDstIPAddress: a.VTEP, VtepDstMACAddress: a.VTEPMAC, VNI: a.VNI}
	case a.JuniperHeader != nil && !*a.JuniperHeader:
		// The analyzer network's routing instance: dom:proj:vn:vn.
		vn := split(s.AnalyzerVN)
		m.RoutingInstance = colon(append(vn, vn[2]))
	}
	if a.NICVLAN != 0 {
		m.NicAssistedMirroring = ptr(true)
		m.NicAssistedMirroringVlan = a.NICVLAN
	}
	return m
}

// rule builds the mirror-only policy rule: mirror_to and no simple_action,
// so that it changes nothing about what is allowed.
func (s *Spec) rule() contrail.PolicyRuleType {
	m := s.Match
	sp, _ := parsePorts(m.SrcPorts)
	dp, _ := parsePorts(m.DstPorts)
	// The network stays next to a source subnet: a subnet-only source
	// with another network as destination compiles to nothing (the
	// schema transformer logs "svn = None ... Ignored").
	src := contrail.AddressType{VirtualNetwork: s.VN, Subnet: subnet(m.SrcCIDR)}
	dst := contrail.AddressType{VirtualNetwork: "any"}
	switch {
	case m.OtherVN != "":
		dst = contrail.AddressType{VirtualNetwork: m.OtherVN}
	case m.DstCIDR != "":
		dst = contrail.AddressType{Subnet: subnet(m.DstCIDR)}
	}
	return contrail.PolicyRuleType{
		Direction:    m.Direction,
		Protocol:     m.Protocol,
		Ethertype:    m.ethertype(),
		SrcAddresses: []contrail.AddressType{src},
		SrcPorts:     []contrail.PortType{sp},
		DstAddresses: []contrail.AddressType{dst},
		DstPorts:     []contrail.PortType{dp},
		ActionList:   contrail.ActionListType{MirrorTo: s.mirrorTo()},
	}
}

func subnet(cidr string) *contrail.SubnetType {
	if cidr == "" {
		return nil
	}
	p := netip.MustParsePrefix(cidr).Masked()
	return &contrail.SubnetType{IPPrefix: p.Addr().String(), IPPrefixLen: p.Bits()}
}

// annotations marks an object as part of the mirror.
func (s *Spec) annotations(target string) *contrail.KeyValuePairs {
	return &contrail.KeyValuePairs{KeyValuePair: []contrail.KeyValuePair{
		{Key: KeyAnalyzer, Value: s.analyzerText()},
		{Key: KeyKind, Value: string(s.Kind)},
		{Key: KeyMirror, Value: s.Name},
		{Key: KeySpec, Value: s.digest()},
		{Key: KeyTarget, Value: target},
	}}
}
