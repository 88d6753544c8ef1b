// Package provision sets mirroring up and tears it down through the
// Contrail config API: a network policy whose rule mirrors a virtual
// network's traffic to an analyzer, port mirroring on one VM interface, or
// the analyzer service instance path (service template, instance, port
// tuple and policy). Every object it creates carries a name prefix and
// annotations, so that List finds it again and Delete removes exactly what
// Create made and restores what Create changed. A Create that fails half
// way rolls back the steps already done.
package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/vrsniff/vrsniff/internal/contrail"
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
)

// DefaultUDPPort is the analyzer UDP port the vRouter uses when none is set.
const DefaultUDPPort = 8099

// Kind is the way a mirror is set up.
type Kind string

// The kinds of mirror.
const (
	KindPolicy          Kind = "policy"           // network policy rule with mirror_to an analyzer IP
	KindPort            Kind = "port"             // interface_mirror on a VM port
	KindServiceInstance Kind = "service-instance" // policy mirroring to an analyzer service instance
)

// Analyzer is the destination of mirrored traffic.
type Analyzer struct {
	IP            string // analyzer IP address (required except for KindServiceInstance)
	UDPPort       int    // 0 means DefaultUDPPort
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

	// KindPolicy and KindServiceInstance: the network to mirror
	// (colon-separated fq_name) and the traffic to match.
	VN    string
	Match Match

	// KindPort: the port, by UUID or as the VM's Interface-th port.
	Port             string
	VM               string
	Interface        int
	TrafficDirection string // ingress, egress or both (default)

	Analyzer Analyzer

	// KindServiceInstance: the network of the analyzer's left interface
	// (default VN) and, optionally, the sniffer VM's port on it, which is
	// then linked to the port tuple.
	AnalyzerVN  string
	SnifferPort string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Check validates s and fills in defaults.
func (s *Spec) Check() error {
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("mirror name %q: use 1-63 letters, digits, '.', '_' or '-'", s.Name)
	}
	if s.Project == nil {
		if s.VN != "" {
			vn := strings.Split(s.VN, ":")
			if len(vn) == 3 {
				s.Project = vn[:2]
			}
		}
		if s.Project == nil && s.Kind != KindPort {
			s.Project = []string{"default-domain", "admin"}
		}
	}
	if s.Project != nil && (len(s.Project) != 2 || s.Project[0] == "" || s.Project[1] == "") {
		return fmt.Errorf("project %q: want domain:project", strings.Join(s.Project, ":"))
	}
	a := &s.Analyzer
	if a.UDPPort == 0 {
		a.UDPPort = DefaultUDPPort
	}
	if a.UDPPort < 1 || a.UDPPort > 65535 {
		return fmt.Errorf("analyzer UDP port %d out of range", a.UDPPort)
	}
	switch a.NHMode {
	case "", "dynamic":
	case "static":
		if _, err := netip.ParseAddr(a.VTEP); err != nil {
			return fmt.Errorf("static next hop needs a VTEP IP address (--vtep): %q", a.VTEP)
		}
		if a.VNI < 1 || a.VNI > 1<<24-1 {
			return fmt.Errorf("static next hop needs a VNI in 1..16777215 (--vni), got %d", a.VNI)
		}
		if a.JuniperHeader != nil && *a.JuniperHeader {
			return fmt.Errorf("the vRouter does not support the Juniper header with a static next hop")
		}
		if a.IP == "" {
			a.IP = a.VTEP
		}
	default:
		return fmt.Errorf("next-hop mode %q: want dynamic or static", a.NHMode)
	}
	if a.NHMode != "static" && (a.VTEP != "" || a.VNI != 0) {
		return fmt.Errorf("--vtep and --vni need --nh-mode static")
	}
	if a.NICVLAN < 0 || a.NICVLAN > 4094 {
		return fmt.Errorf("NIC-assisted mirroring VLAN %d out of range", a.NICVLAN)
	}
	switch s.Kind {
	case KindPolicy, KindServiceInstance:
		if err := checkFQ(s.VN, 3); err != nil {
			return fmt.Errorf("network: %w", err)
		}
		if err := s.Match.check(); err != nil {
			return err
		}
	case KindPort:
		if (s.Port == "") == (s.VM == "") {
			return fmt.Errorf("port mirroring needs exactly one of a port UUID or a VM name")
		}
		switch s.TrafficDirection {
		case "":
			s.TrafficDirection = "both"
		case "ingress", "egress", "both":
		default:
			return fmt.Errorf("traffic direction %q: want ingress, egress or both", s.TrafficDirection)
		}
	default:
		return fmt.Errorf("unknown mirror kind %q", s.Kind)
	}
	if s.Kind == KindServiceInstance {
		if s.AnalyzerVN == "" {
			s.AnalyzerVN = s.VN
		}
		if err := checkFQ(s.AnalyzerVN, 3); err != nil {
			return fmt.Errorf("analyzer network: %w", err)
		}
	} else if _, err := netip.ParseAddr(a.IP); err != nil {
		return fmt.Errorf("analyzer IP address %q: %w", a.IP, err)
	}
	return nil
}

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
	for _, c := range []string{m.SrcCIDR, m.DstCIDR} {
		if c != "" {
			if _, err := netip.ParsePrefix(c); err != nil {
				return fmt.Errorf("subnet %q: %w", c, err)
			}
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
		return "service-instance " + strings.Join(s.siFQ(), ":")
	case a.NHMode == "static":
		return fmt.Sprintf("vxlan %s vni %d", a.VTEP, a.VNI)
	}
	return fmt.Sprintf("%s udp/%d", a.IP, a.UDPPort)
}

func (s *Spec) objName() string    { return Prefix + s.Name }
func (s *Spec) policyFQ() []string { return append(clone(s.Project), s.objName()) }
func (s *Spec) siFQ() []string     { return append(clone(s.Project), s.objName()) }
func (s *Spec) stFQ() []string     { return []string{s.Project[0], s.objName()} }
func (s *Spec) tupleFQ() []string  { return append(s.siFQ(), s.objName()+"-tuple") }
func clone(l []string) []string    { return append([]string(nil), l...) }
func colon(fq []string) string     { return strings.Join(fq, ":") }
func split(fq string) []string     { return strings.Split(fq, ":") }
func ptr[T any](v T) *T            { return &v }

// mirrorTo builds the mirror_to value. Fields that are not set stay out of
// the request: a 3.0 server rejects the ones it does not know.
func (s *Spec) mirrorTo() *contrail.MirrorActionType {
	if s.Kind == KindServiceInstance {
		// The schema transformer fills in the instance's address.
		return &contrail.MirrorActionType{AnalyzerName: colon(s.siFQ())}
	}
	a := s.Analyzer
	m := &contrail.MirrorActionType{
		// The agent keys its mirror table by analyzer_name and programs
		// nothing without one.
		AnalyzerName:       s.objName(),
		AnalyzerIPAddress:  a.IP,
		UDPPort:            a.UDPPort,
		JuniperHeader:      a.JuniperHeader,
		NhMode:             a.NHMode,
		AnalyzerMACAddress: a.MAC,
	}
	if a.NHMode == "static" {
		if m.JuniperHeader == nil {
			m.JuniperHeader = ptr(false)
		}
		m.StaticNhHeader = &contrail.StaticMirrorNhType{VtepDstIPAddress: a.VTEP, VtepDstMACAddress: a.VTEPMAC, VNI: a.VNI}
	}
	if a.NICVLAN != 0 {
		m.NicAssistedMirroring = ptr(true)
		m.NicAssistedMirroringVlan = a.NICVLAN
	}
	return m
}

func address(vn, cidr string) contrail.AddressType {
	if cidr != "" {
		p := netip.MustParsePrefix(cidr).Masked()
		return contrail.AddressType{Subnet: &contrail.SubnetType{IPPrefix: p.Addr().String(), IPPrefixLen: p.Bits()}}
	}
	return contrail.AddressType{VirtualNetwork: vn}
}

// rule builds the policy rule: pass, and mirror what matches.
func (s *Spec) rule() contrail.PolicyRuleType {
	m := s.Match
	sp, _ := parsePorts(m.SrcPorts)
	dp, _ := parsePorts(m.DstPorts)
	dst := address("any", m.DstCIDR)
	if m.OtherVN != "" {
		dst = address(m.OtherVN, "")
	}
	r := contrail.PolicyRuleType{
		Direction:    m.Direction,
		Protocol:     m.Protocol,
		SrcAddresses: []contrail.AddressType{address(s.VN, m.SrcCIDR)},
		SrcPorts:     []contrail.PortType{sp},
		DstAddresses: []contrail.AddressType{dst},
		DstPorts:     []contrail.PortType{dp},
		ActionList:   contrail.ActionListType{SimpleAction: "pass", MirrorTo: s.mirrorTo()},
	}
	for _, c := range []string{m.SrcCIDR, m.DstCIDR} {
		if c != "" {
			r.Ethertype = "IPv4"
			if netip.MustParsePrefix(c).Addr().Is6() {
				r.Ethertype = "IPv6"
			}
		}
	}
	return r
}

// annotations marks an object as part of the mirror.
func (s *Spec) annotations(target string) *contrail.KeyValuePairs {
	return &contrail.KeyValuePairs{KeyValuePair: []contrail.KeyValuePair{
		{Key: KeyMirror, Value: s.Name},
		{Key: KeyKind, Value: string(s.Kind)},
		{Key: KeyTarget, Value: target},
		{Key: KeyAnalyzer, Value: s.analyzerText()},
		{Key: KeySpec, Value: s.digest()},
	}}
}
