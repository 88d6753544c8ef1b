package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vrsniff/vrsniff/internal/contrail"
)

// policy is the part of a network-policy that mirroring reads.
type policy struct {
	contrail.Common
	Entries    *contrail.PolicyEntriesType `json:"network_policy_entries"`
	VNBackRefs []contrail.Ref              `json:"virtual_network_back_refs"`
}

var policyFields = []string{"fq_name", "display_name", "annotations", "network_policy_entries", "virtual_network_back_refs"}

func (p *Provisioner) readPolicy(ctx context.Context, fq []string) (*policy, error) {
	id, err := p.API.FQNameToID(ctx, "network-policy", fq)
	if err != nil {
		return nil, err
	}
	var pol policy
	if err := p.API.ReadFields(ctx, "network-policy", id, policyFields, &pol); err != nil {
		return nil, err
	}
	pol.UUID = id
	return &pol, nil
}

// ruleUUIDs are the rule_uuid of the policy's rules, which the server fills
// in and the compiled ACL rules keep.
func (pol *policy) ruleUUIDs() []string {
	var out []string
	if pol.Entries != nil {
		for _, r := range pol.Entries.PolicyRule {
			out = append(out, r.RuleUUID)
		}
	}
	return out
}

func (pol *policy) mirrorOnly() bool {
	if pol.Entries == nil {
		return true
	}
	for _, r := range pol.Entries.PolicyRule {
		if r.ActionList.MirrorTo == nil || r.ActionList.SimpleAction != "" {
			return false
		}
	}
	return true
}

func nextSequence(refs []contrail.Ref) contrail.SequenceType {
	major := -1
	for _, r := range refs {
		if a := refAttr(r); a.Sequence != nil && a.Sequence.Major > major {
			major = a.Sequence.Major
		}
	}
	// After every policy already there: a dynamic policy's place does not
	// change what it does, and the existing order stays as it is.
	return contrail.SequenceType{Major: major + 1, Minor: 0}
}

func hasRef(refs []contrail.Ref, fq []string) bool {
	return slices.ContainsFunc(refs, func(r contrail.Ref) bool { return slices.Equal(r.To, fq) })
}

// preflight refuses a policy mirror where a dynamic policy would change
// behaviour or could not work, and returns warnings about what may keep it
// from delivering.
func (p *Provisioner) preflight(ctx context.Context, s *Spec, n *network, c compiled) ([]string, error) {
	var warn []string
	static := 0
	for _, r := range n.PolicyRefs {
		if !dynamicRef(r) {
			static++
			continue
		}
		if slices.Equal(r.To, s.policyFQ()) {
			continue
		}
		pol, err := p.readPolicy(ctx, r.To)
		if err != nil {
			return nil, fmt.Errorf("network %s: dynamic policy %s: %w", s.VN, colon(r.To), err)
		}
		if !pol.mirrorOnly() {
			return nil, fmt.Errorf("network %s already has the dynamic policy %s, whose rules are not mirror-only: "+
				"vrsniff does not add to a dynamic ACL that decides traffic; mirror the ports instead (--per-port): %w",
				s.VN, colon(r.To), ErrUnsafe)
		}
	}
	if n.provider() && static == 0 {
		return nil, fmt.Errorf("network %s is a provider or fabric-SNAT network without a policy: attaching any policy, "+
			"even a mirror-only one, removes its built-in deny ACL; mirror its ports instead (--vn %s --per-port): %w",
			s.VN, s.VN, ErrUnsafe)
	}
	if k := c.Dynamic.mirrorRules(nil); k >= 2 {
		warn = append(warn, fmt.Sprintf("network %s already has %d mirror rules: a flow that more than two analyzers match is mirrored to two only", s.VN, k))
	}
	if s.Kind == KindPolicy && s.Analyzer.NHMode != "static" {
		ok, err := p.routable(ctx, s.Analyzer.IP, n)
		if err != nil {
			return nil, err
		}
		if !ok {
			warn = append(warn, fmt.Sprintf("analyzer %s is in no subnet of %s nor of a network its policies connect: "+
				"the mirrored copies are routed in %s's routing instance and may go nowhere", s.Analyzer.IP, s.VN, s.VN))
		}
	}
	w, err := p.headerlessCheck(ctx, s)
	return append(warn, w...), err
}

// headerlessCheck warns when the analyzer network of a mirror without the
// Juniper header does not accept mirrored traffic.
func (p *Provisioner) headerlessCheck(ctx context.Context, s *Spec) ([]string, error) {
	a := s.Analyzer
	if a.NHMode == "static" || a.JuniperHeader == nil || *a.JuniperHeader || s.AnalyzerVN == "" {
		return nil, nil
	}
	an, err := p.networkByFQ(ctx, s.AnalyzerVN)
	if err != nil {
		return nil, fmt.Errorf("analyzer network: %w", err)
	}
	if !an.MirrorDestination {
		return []string{fmt.Sprintf("analyzer network %s does not have mirror_destination set: the vRouter forwards "+
			"header-less mirrored frames only into a network marked so (set it in the network's advanced options)", s.AnalyzerVN)}, nil
	}
	return nil, nil
}

// routable reports whether ip is in a subnet of n or of a network that n's
// static policies name, the networks whose routes n's routing instance
// may hold.
func (p *Provisioner) routable(ctx context.Context, ip string, n *network) (bool, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false, err
	}
	in := func(n *network) bool {
		return slices.ContainsFunc(n.subnets(), func(pr netip.Prefix) bool { return pr.Contains(addr) })
	}
	if in(n) {
		return true, nil
	}
	seen := map[string]bool{colon(n.FQName): true}
	for _, r := range n.PolicyRefs {
		if dynamicRef(r) {
			continue
		}
		pol, err := p.readPolicy(ctx, r.To)
		if err != nil {
			return false, fmt.Errorf("policy %s: %w", colon(r.To), err)
		}
		if pol.Entries == nil {
			continue
		}
		for _, pr := range pol.Entries.PolicyRule {
			for _, ad := range slices.Concat(pr.SrcAddresses, pr.DstAddresses) {
				vn := ad.VirtualNetwork
				if vn == "" || vn == "any" || vn == "local" || seen[vn] || strings.Count(vn, ":") != 2 {
					continue
				}
				seen[vn] = true
				other, err := p.networkByFQ(ctx, vn)
				if contrail.IsNotFound(err) {
					continue
				} else if err != nil {
					return false, err
				}
				if in(other) {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// createPolicy sets up a dynamic mirror-only policy on s.VN (KindPolicy and
// KindServiceInstance), then waits until the schema transformer has
// compiled it into the network's dynamic ACL with the static ACL untouched;
// otherwise everything is rolled back.
func (p *Provisioner) createPolicy(ctx context.Context, s *Spec) (Result, error) {
	api := p.API
	n, err := p.networkByFQ(ctx, s.VN)
	if err != nil {
		return Result{}, err
	}
	res := Result{Mirror: s.describe()}
	old, err := p.readPolicy(ctx, s.policyFQ())
	switch {
	case err == nil:
		// A repeated create finds its policy; it only re-attaches it if
		// someone detached it meanwhile.
		if _, err := p.checkOwned(old.Annotations, "network-policy "+colon(s.policyFQ()), s); err != nil {
			return Result{}, err
		}
		if hasRef(n.PolicyRefs, s.policyFQ()) {
			return res, nil
		}
	case !contrail.IsNotFound(err):
		return Result{}, err
	}
	c, err := p.readACLs(ctx, n)
	if err != nil {
		return Result{}, err
	}
	if res.Warnings, err = p.preflight(ctx, s, n, c); err != nil {
		return Result{}, err
	}
	if err := p.checkAnalyzerName(ctx, s); err != nil {
		return Result{}, err
	}
	if s.AnalyzerSI != "" {
		if _, err := api.FQNameToID(ctx, "service-instance", s.siFQ()); err != nil {
			return Result{}, fmt.Errorf("analyzer service instance %s: %w", s.AnalyzerSI, err)
		}
	}
	snap := c.snapshot()
	attach := step{
		desc: fmt.Sprintf("attach network-policy %s to virtual-network %s (dynamic)", colon(s.policyFQ()), s.VN),
		do: func(ctx context.Context) error {
			return api.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefAdd, Type: "virtual-network", UUID: n.UUID,
				RefType: "network-policy", RefFQName: s.policyFQ(),
				Attr: contrail.VirtualNetworkPolicyType{Sequence: ptr(nextSequence(n.PolicyRefs)), Timer: json.RawMessage(`{}`)}})
		},
		undo: func(ctx context.Context) error {
			return ignoreMissing(api.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefDelete, Type: "virtual-network", UUID: n.UUID,
				RefType: "network-policy", RefFQName: s.policyFQ()}), contrail.IsNotFound)
		},
	}
	verify := step{
		desc: "check that virtual-network " + s.VN + " mirrors through its dynamic ACL",
		do: func(ctx context.Context) error {
			if api.DryRun() {
				return nil
			}
			return p.waitCompiled(ctx, s, n.UUID, snap)
		},
	}
	var steps []step
	if old == nil {
		if s.Kind == KindServiceInstance && s.AnalyzerSI == "" {
			steps = append(steps, p.serviceSteps(s)...)
		}
		ann := s.annotations(s.VN)
		ann.KeyValuePair = append(ann.KeyValuePair, contrail.KeyValuePair{Key: KeyStaticACL, Value: snap})
		steps = append(steps, step{
			desc: "create network-policy " + colon(s.policyFQ()),
			do: func(ctx context.Context) error {
				return p.create(ctx, s, "network-policy", s.policyFQ(), struct {
					contrail.Common
					Entries contrail.PolicyEntriesType `json:"network_policy_entries"`
				}{
					Common: contrail.Common{FQName: s.policyFQ(), ParentType: "project", Annotations: ann,
						DisplayName: s.objName()},
					Entries: contrail.PolicyEntriesType{PolicyRule: []contrail.PolicyRuleType{s.rule()}},
				})
			},
			undo: func(ctx context.Context) error { return p.deleteByFQ(ctx, "network-policy", s.policyFQ()) },
		})
	} else if v, ok := old.Annotations.Get(KeyStaticACL); ok && v != snap {
		return Result{}, fmt.Errorf("network %s: its static ACL changed since mirror %q was created; delete the mirror and create it again", s.VN, s.Name)
	}
	steps = append(steps, attach, verify)
	if err := run(ctx, p.log(), steps); err != nil {
		return Result{}, err
	}
	res.Created = old == nil
	return res, nil
}

// ErrNotCompiled is returned (wrapped in a *RollbackError) when the
// schema transformer did not compile a new mirror as a dynamic,
// allow-neutral rule within Provisioner.Wait.
var ErrNotCompiled = errors.New("mirror not compiled as expected")

// ErrUnsafe is returned when a mirror would change what traffic is
// allowed, or could not work, on the network asked for.
var ErrUnsafe = errors.New("refused")

// waitCompiled polls the network's ACLs until the policy's rules are in its
// dynamic ACL with their destination and its static ACL equals snap.
func (p *Provisioner) waitCompiled(ctx context.Context, s *Spec, vnID, snap string) error {
	pol, err := p.readPolicy(ctx, s.policyFQ())
	if err != nil {
		return err
	}
	rules := pol.ruleUUIDs()
	return p.poll(ctx, func(ctx context.Context) (bool, string, error) {
		n, err := p.readNetwork(ctx, vnID)
		if err != nil {
			return false, "", err
		}
		c, err := p.readACLs(ctx, n)
		if err != nil {
			return false, "", err
		}
		for _, id := range rules {
			if r, _ := c.Static.find(id); r != nil {
				return false, "", fmt.Errorf("the mirror rule was compiled into the static ACL of %s: this server does not support "+
					"dynamic policies (the timer of the reference); mirror the ports instead (--per-port): %w", s.VN, ErrNotCompiled)
			}
		}
		if got := c.snapshot(); got != snap {
			return false, "", fmt.Errorf("the static ACL of %s changed when the mirror was attached: %w", s.VN, ErrNotCompiled)
		}
		for _, id := range rules {
			r, _ := c.Dynamic.find(id)
			if r == nil {
				return false, "the dynamic ACL of " + s.VN + " does not hold the mirror rule (is the schema transformer running? " +
					"does this release know dynamic policies, the timer of a reference?)", nil
			}
			if why := destinationProblem(s, r.ActionList.MirrorTo); why != "" {
				return false, why, nil
			}
		}
		return true, "", nil
	})
}

// destinationProblem says what keeps a compiled mirror_to from reaching the
// analyzer, or "".
func destinationProblem(s *Spec, m *contrail.MirrorActionType) string {
	switch {
	case m == nil:
		return "the compiled rule has no mirror_to"
	case m.AnalyzerName != s.analyzerName():
		return "the compiled rule mirrors to " + m.AnalyzerName
	case s.Kind == KindServiceInstance && m.AnalyzerIPAddress == "":
		return "service instance " + colon(s.siFQ()) + " has no address yet (is svc-monitor running, and the sniffer port linked to the port tuple?)"
	case s.Kind != KindServiceInstance && m.AnalyzerIPAddress != s.Analyzer.IP:
		return "the compiled rule mirrors to " + m.AnalyzerIPAddress
	}
	return ""
}

// poll calls check every Poll until it says done, fails, or Wait passes;
// then the error carries check's last reason.
func (p *Provisioner) poll(ctx context.Context, check func(context.Context) (bool, string, error)) error {
	wait, every := p.Wait, p.Poll
	if wait == 0 {
		wait = DefaultWait
	}
	if every == 0 {
		every = time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		done, why, err := check(ctx)
		if err != nil || done {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("after %v: %s: %w", wait, why, ErrNotCompiled)
		}
		select {
		case <-time.After(every):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", why, ctx.Err())
		}
	}
}

// DefaultWait is how long Create and Delete wait for the schema transformer
// by default.
const DefaultWait = 60 * time.Second

// deletePolicy detaches the mirror's policy from every network, waits until
// their ACLs no longer hold its rules, and deletes it. It returns notes on
// what it found (a static ACL that is no longer the snapshot).
func (p *Provisioner) deletePolicy(ctx context.Context, s *Spec, pol *policy) ([]string, error) {
	var notes []string
	rules := pol.ruleUUIDs()
	snap, haveSnap := pol.Annotations.Get(KeyStaticACL)
	for _, r := range pol.VNBackRefs {
		vnID, vn := r.UUID, colon(r.To)
		p.log().Info("step", "do", "detach from virtual-network "+vn)
		err := p.API.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefDelete, Type: "virtual-network",
			UUID: vnID, RefType: "network-policy", RefUUID: pol.UUID})
		if err = ignoreMissing(err, contrail.IsNotFound); err != nil {
			return notes, fmt.Errorf("detach from virtual-network %s: %w", vn, err)
		}
		if p.API.DryRun() {
			continue
		}
		var last compiled
		err = p.poll(ctx, func(ctx context.Context) (bool, string, error) {
			n, err := p.readNetwork(ctx, vnID)
			if contrail.IsNotFound(err) {
				return true, "", nil
			} else if err != nil {
				return false, "", err
			}
			if last, err = p.readACLs(ctx, n); err != nil {
				return false, "", err
			}
			for _, id := range rules {
				if r, _ := last.Dynamic.find(id); r != nil {
					return false, "the dynamic ACL of " + vn + " still holds the mirror rule (is the schema transformer running?)", nil
				}
				if r, _ := last.Static.find(id); r != nil {
					return false, "the static ACL of " + vn + " still holds the mirror rule (is the schema transformer running?)", nil
				}
			}
			return true, "", nil
		})
		if err != nil {
			return notes, fmt.Errorf("detached from %s, but %w; run delete again to check", vn, err)
		}
		if haveSnap && last.snapshot() != snap {
			notes = append(notes, fmt.Sprintf("the static ACL of %s is not what it was when the mirror was created: "+
				"its policies changed meanwhile (the mirror did not change it)", vn))
		}
	}
	p.log().Info("step", "do", "delete network-policy "+colon(s.policyFQ()))
	if err := ignoreMissing(p.API.Delete(ctx, "network-policy", pol.UUID), contrail.IsNotFound); err != nil {
		return notes, fmt.Errorf("delete network-policy %s: %w", colon(s.policyFQ()), err)
	}
	return notes, nil
}
