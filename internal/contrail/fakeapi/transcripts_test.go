package fakeapi

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi/transcript"
)

// TestTranscripts replays each recorded scenario and compares every
// compiled snapshot with the real schema transformer's ACLs: which ACLs
// each VN has, and their rules in order, by match, action and direction.
// A rule's rule_uuid must be the rule_uuid of the policy rule it came from
// (the implicit rules' fixed ones), and an ACL keeps its uuid, and its
// hash, between snapshots exactly when the real one did.
func TestTranscripts(t *testing.T) {
	for _, tr := range transcript.Load(t) {
		t.Run(tr.ID, func(t *testing.T) {
			s := New(Options{SvcMonitor: tr.Server.SvcMonitor, LogicalRoutersDisabled: !tr.Server.LogicalRouters})
			p := transcript.NewPlayer(s, tr)
			// (VN, ACL name) → recorded and fake uuid and hash, last snapshot.
			type seen struct{ ruuid, rhash, fuuid, fhash string }
			prev := map[string]seen{}
			for _, snap := range tr.Compiled {
				p.PlayTo(t, snap.After)
				cur := map[string]seen{}
				for vnName, vn := range snap.VNs {
					vnID := s.Lookup("virtual-network", "default-domain", "demo", vnName)
					got := s.aclObjects(vnID)
					if len(got) != len(vn.ACLs) {
						t.Errorf("%s: %s has ACLs %v, recorded %d", snap.Label, vnName, keysOf(got), len(vn.ACLs))
					}
					for _, want := range vn.ACLs {
						o := got[want.Name]
						if o == nil {
							t.Errorf("%s: %s has no ACL %q", snap.Label, vnName, want.Name)
							continue
						}
						entries := o["access_control_list_entries"].(map[string]any)
						if entries["dynamic"] != want.Dynamic {
							t.Errorf("%s: %s ACL %s: dynamic %v", snap.Label, vnName, want.Name, entries["dynamic"])
						}
						compareRules(t, s, fmt.Sprintf("%s: %s ACL %s", snap.Label, vnName, want.Name), entries["acl_rule"], want.Rules)
						k := vnName + "/" + want.Name
						now := seen{want.UUID, want.Hash.String(), o["uuid"].(string), fmt.Sprint(o["access_control_list_hash"])}
						if p, ok := prev[k]; ok {
							if (p.ruuid == now.ruuid) != (p.fuuid == now.fuuid) || (p.rhash == now.rhash) != (p.fhash == now.fhash) {
								t.Errorf("%s: %s ACL %s: uuid/hash kept %v/%v, the real ones %v/%v", snap.Label, vnName, want.Name,
									p.fuuid == now.fuuid, p.fhash == now.fhash, p.ruuid == now.ruuid, p.rhash == now.rhash)
							}
						}
						cur[k] = now
					}
				}
				prev = cur
				if snap.IIPs != nil {
					compareIIPs(t, s, snap.Label, snap.IIPs, p)
				}
			}
		})
	}
}

// aclObjects returns the API view of a VN's ACLs by name.
func (s *Server) aclObjects(vnID string) map[string]map[string]any {
	out := map[string]map[string]any{}
	vn := s.Object(vnID)
	l, _ := vn["access_control_lists"].([]any)
	for _, c := range l {
		id := c.(map[string]any)["uuid"].(string)
		o := s.Object(id)
		out[o["name"].(string)] = o
	}
	return out
}

func keysOf(m map[string]map[string]any) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// compareRules compares compiled rules with recorded ones, in order.
func compareRules(t *testing.T, s *Server, what string, gotv any, want []map[string]any) {
	t.Helper()
	got, _ := gotv.([]any)
	if len(got) != len(want) {
		t.Errorf("%s: %d rules, recorded %d:\n got  %s\n want %s", what, len(got), len(want), pyJSON(got), pyJSON(toAny(want)))
		return
	}
	for i, w := range want {
		g := got[i].(map[string]any)
		for _, k := range []string{"direction", "match_condition", "action_list"} {
			if !reflect.DeepEqual(g[k], w[k]) {
				t.Errorf("%s rule %d (%s) %s:\n got  %s\n want %s", what, i, w["rule_of"], k, pyJSON(g[k]), pyJSON(w[k]))
			}
		}
		if u := ruleUUIDOf(s, w["rule_of"].(string)); g["rule_uuid"] != u {
			t.Errorf("%s rule %d: rule_uuid %v, want %v (%s)", what, i, g["rule_uuid"], u, w["rule_of"])
		}
	}
}

func toAny(l []map[string]any) []any {
	out := make([]any, len(l))
	for i, m := range l {
		out[i] = m
	}
	return out
}

// ruleUUIDOf resolves a recorded rule_of ("policy#index", IMPLICIT_ALLOW,
// IMPLICIT_DENY) to the rule_uuid the fake must have used.
func ruleUUIDOf(s *Server, ruleOf string) string {
	switch ruleOf {
	case "IMPLICIT_ALLOW":
		return ImplicitAllow
	case "IMPLICIT_DENY":
		return ImplicitDeny
	}
	name, idx, _ := strings.Cut(ruleOf, "#")
	p := s.Object(s.Lookup("network-policy", "default-domain", "demo", name))
	var i int
	fmt.Sscan(idx, &i)
	rules := p["network_policy_entries"].(map[string]any)["policy_rule"].([]any)
	return rules[i].(map[string]any)["rule_uuid"].(string)
}

// compareIIPs compares the instance-ips on the sniffer port with the
// recorded ones (svc-monitor's shared service IPs, when it ran).
func compareIIPs(t *testing.T, s *Server, label string, want []map[string]any, p *transcript.Player) {
	t.Helper()
	port := s.Lookup("virtual-machine-interface", "default-domain", "demo", "sniffer-port")
	got := map[string]map[string]any{}
	for _, br := range asList(s.Object(port)["instance_ip_back_refs"]) {
		o := s.Object(br.(map[string]any)["uuid"].(string))
		got[o["name"].(string)] = o
	}
	if len(got) != len(want) {
		t.Errorf("%s: the sniffer port has instance-ips %v, recorded %d", label, keysOf(got), len(want))
	}
	for _, w := range want {
		name := p.Translate(w["name"].(string))
		o := got[name]
		if o == nil {
			t.Errorf("%s: no instance-ip %s on the sniffer port", label, name)
			continue
		}
		for _, k := range []string{"instance_ip_address", "instance_ip_family", "service_instance_ip", "instance_ip_secondary", "instance_ip_mode"} {
			if o[k] != w[k] {
				t.Errorf("%s: instance-ip %s %s = %v, recorded %v", label, name, k, o[k], w[k])
			}
		}
		var ipams []any
		for _, r := range asList(o["network_ipam_refs"]) {
			ipams = append(ipams, strings.Join(strList2(r.(map[string]any)["to"]), ":"))
		}
		if w["network_ipam_refs"] != nil && !reflect.DeepEqual(ipams, w["network_ipam_refs"]) {
			t.Errorf("%s: instance-ip %s IPAMs %v, recorded %v", label, name, ipams, w["network_ipam_refs"])
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func strList2(v any) []string {
	l, _ := strList(v)
	return l
}
