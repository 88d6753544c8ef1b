package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/vrsniff/vrsniff/internal/contrail"
)

// ErrNoMirror is returned by Delete when nothing carries the mirror's name.
var ErrNoMirror = errNoMirror

// ErrConflict is returned by Create when the name is taken by a different
// mirror or an object that vrsniff did not create.
var ErrConflict = errors.New("conflict")

// Provisioner creates, lists and deletes mirrors.
type Provisioner struct {
	API *contrail.Client
	Log *slog.Logger // nil discards
}

func (p *Provisioner) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Mirror describes one mirror that vrsniff created.
type Mirror struct {
	Name     string
	Kind     Kind
	Target   string   // what is mirrored
	Analyzer string   // where it goes
	State    string   // "active", or what is wrong
	Objects  []string // "type fq_name-or-uuid" of what belongs to it
}

// Result is what Create did.
type Result struct {
	Mirror  Mirror
	Created bool // false: the same mirror already existed
}

// Create sets up the mirror s. Creating the same mirror twice is not an
// error (Result.Created is false); a different mirror under the same name
// is (ErrConflict). If a step fails, the steps already done are rolled back
// and the error is a *RollbackError.
func (p *Provisioner) Create(ctx context.Context, s Spec) (Result, error) {
	if err := s.Check(); err != nil {
		return Result{}, err
	}
	switch s.Kind {
	case KindPort:
		return p.createPort(ctx, &s)
	default:
		return p.createPolicy(ctx, &s)
	}
}

// policy is the part of a network-policy read back.
type policy struct {
	contrail.Common
	Entries *contrail.PolicyEntriesType `json:"network_policy_entries"`
}

type vnRefs struct {
	contrail.Common
	PolicyRefs []contrail.Ref `json:"network_policy_refs"`
}

func (p *Provisioner) checkOwned(ann *contrail.KeyValuePairs, what string, s *Spec) (same bool, err error) {
	name, ok := ann.Get(KeyMirror)
	if !ok || name != s.Name {
		return false, fmt.Errorf("%s exists and was not created by vrsniff mirror %q: %w", what, s.Name, ErrConflict)
	}
	if d, _ := ann.Get(KeySpec); d != s.digest() {
		return false, fmt.Errorf("mirror %q exists with different settings; delete it first: %w", s.Name, ErrConflict)
	}
	return true, nil
}

func nextSequence(refs []contrail.Ref) contrail.SequenceType {
	major := -1
	for _, r := range refs {
		var a contrail.VirtualNetworkPolicyType
		if json.Unmarshal(r.Attr, &a) == nil && a.Sequence != nil && a.Sequence.Major > major {
			major = a.Sequence.Major
		}
	}
	// After every policy already there: the existing order is kept and
	// their rules keep precedence.
	return contrail.SequenceType{Major: major + 1, Minor: 0}
}

func hasRef(refs []contrail.Ref, fq []string) bool {
	return slices.ContainsFunc(refs, func(r contrail.Ref) bool { return slices.Equal(r.To, fq) })
}

func (p *Provisioner) createPolicy(ctx context.Context, s *Spec) (Result, error) {
	api := p.API
	var vn vnRefs
	vnID, err := api.ReadByFQName(ctx, "virtual-network", split(s.VN), &vn)
	if err != nil {
		return Result{}, fmt.Errorf("network %s: %w", s.VN, err)
	}
	res := Result{Mirror: s.describe()}
	attach := step{
		desc: fmt.Sprintf("attach network-policy %s to virtual-network %s", colon(s.policyFQ()), s.VN),
		do: func(ctx context.Context) error {
			return api.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefAdd, Type: "virtual-network", UUID: vnID,
				RefType: "network-policy", RefFQName: s.policyFQ(),
				Attr: contrail.VirtualNetworkPolicyType{Sequence: ptr(nextSequence(vn.PolicyRefs))}})
		},
		undo: func(ctx context.Context) error {
			return api.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefDelete, Type: "virtual-network", UUID: vnID,
				RefType: "network-policy", RefFQName: s.policyFQ()})
		},
	}

	// A repeated create finds its policy; it only re-attaches it if
	// someone detached it meanwhile.
	var old policy
	if _, err := api.ReadByFQName(ctx, "network-policy", s.policyFQ(), &old); err == nil {
		if _, err := p.checkOwned(old.Annotations, "network-policy "+colon(s.policyFQ()), s); err != nil {
			return Result{}, err
		}
		if !hasRef(vn.PolicyRefs, s.policyFQ()) {
			if err := run(ctx, p.log(), []step{attach}); err != nil {
				return Result{}, err
			}
		}
		return res, nil
	} else if !contrail.IsNotFound(err) {
		return Result{}, err
	}

	var steps []step
	if s.Kind == KindServiceInstance {
		steps = append(steps, p.serviceSteps(s)...)
	}
	steps = append(steps, step{
		desc: "create network-policy " + colon(s.policyFQ()),
		do: func(ctx context.Context) error {
			return p.create(ctx, s, "network-policy", s.policyFQ(), struct {
				contrail.Common
				Entries contrail.PolicyEntriesType `json:"network_policy_entries"`
			}{
				Common: contrail.Common{FQName: s.policyFQ(), ParentType: "project", Annotations: s.annotations(s.VN),
					DisplayName: s.objName()},
				Entries: contrail.PolicyEntriesType{PolicyRule: []contrail.PolicyRuleType{s.rule()}},
			})
		},
		undo: func(ctx context.Context) error { return p.deleteByFQ(ctx, "network-policy", s.policyFQ()) },
	}, attach)
	if err := run(ctx, p.log(), steps); err != nil {
		return Result{}, err
	}
	res.Created = true
	return res, nil
}

// create posts a new object of the mirror. If the name is taken by an
// object of this very mirror — a create retried after a lost answer, or
// left behind by an interrupted run — that object is adopted.
func (p *Provisioner) create(ctx context.Context, s *Spec, typ string, fq []string, obj any) error {
	_, err := p.API.Create(ctx, typ, obj)
	if !errors.Is(err, contrail.ErrExists) {
		return err
	}
	var old contrail.Common
	if _, rerr := p.API.ReadByFQName(ctx, typ, fq, &old); rerr != nil {
		return err
	}
	if n, _ := old.Annotations.Get(KeyMirror); n != s.Name {
		return err
	}
	if d, _ := old.Annotations.Get(KeySpec); d != s.digest() {
		return err
	}
	p.log().Info("adopting existing object of this mirror", "type", typ, "fq_name", colon(fq))
	return nil
}

func (p *Provisioner) deleteByFQ(ctx context.Context, typ string, fq []string) error {
	return ignoreMissing(p.API.DeleteByFQName(ctx, typ, fq), contrail.IsNotFound)
}

// serviceSteps creates the analyzer service template (v2), the service
// instance and its port tuple, and links the sniffer's port if given.
func (p *Provisioner) serviceSteps(s *Spec) []step {
	ann := s.annotations(s.VN)
	steps := []step{{
		desc: "create service-template " + colon(s.stFQ()),
		do: func(ctx context.Context) error {
			return p.create(ctx, s, "service-template", s.stFQ(), struct {
				contrail.Common
				Props contrail.ServiceTemplateType `json:"service_template_properties"`
			}{
				Common: contrail.Common{FQName: s.stFQ(), ParentType: "domain", Annotations: ann},
				Props: contrail.ServiceTemplateType{Version: 2, ServiceMode: "transparent", ServiceType: "analyzer",
					ServiceVirtualizationType: "virtual-machine",
					InterfaceType:             []contrail.ServiceTemplateInterfaceType{{ServiceInterfaceType: "left"}}},
			})
		},
		undo: func(ctx context.Context) error { return p.deleteByFQ(ctx, "service-template", s.stFQ()) },
	}, {
		desc: "create service-instance " + colon(s.siFQ()),
		do: func(ctx context.Context) error {
			return p.create(ctx, s, "service-instance", s.siFQ(), struct {
				contrail.Common
				Props  contrail.ServiceInstanceType `json:"service_instance_properties"`
				STRefs []contrail.Ref               `json:"service_template_refs"`
			}{
				Common: contrail.Common{FQName: s.siFQ(), ParentType: "project", Annotations: ann},
				Props: contrail.ServiceInstanceType{
					InterfaceList: []contrail.ServiceInstanceInterfaceType{{VirtualNetwork: s.AnalyzerVN}}},
				STRefs: []contrail.Ref{{To: s.stFQ()}},
			})
		},
		undo: func(ctx context.Context) error { return p.deleteByFQ(ctx, "service-instance", s.siFQ()) },
	}, {
		desc: "create port-tuple " + colon(s.tupleFQ()),
		do: func(ctx context.Context) error {
			return p.create(ctx, s, "port-tuple", s.tupleFQ(), contrail.Common{FQName: s.tupleFQ(), ParentType: "service-instance", Annotations: ann})
		},
		undo: func(ctx context.Context) error { return p.deleteByFQ(ctx, "port-tuple", s.tupleFQ()) },
	}}
	if s.SnifferPort != "" {
		steps = append(steps, p.linkSnifferSteps(s)...)
	}
	return steps
}

// vmi is a port read for a read-modify-write: the properties stay raw so
// that fields this client does not model survive.
type vmi struct {
	contrail.Common
	Props      map[string]json.RawMessage `json:"virtual_machine_interface_properties"`
	TupleRefs  []contrail.Ref             `json:"port_tuple_refs"`
	Annotation *contrail.KeyValuePairs    `json:"annotations"`
}

// saved is what a changed port had before, kept in its KeySaved annotation.
type saved struct {
	HadProps       bool   `json:"had_props"`
	HadAnnotations bool   `json:"had_annotations"`
	HadIfType      bool   `json:"had_if_type,omitempty"`
	IfType         string `json:"if_type,omitempty"`
}

func (p *Provisioner) linkSnifferSteps(s *Spec) []step {
	api := p.API
	return []step{{
		desc: "mark port " + s.SnifferPort + " as the analyzer's left interface",
		do: func(ctx context.Context) error {
			var v vmi
			if err := api.Read(ctx, "virtual-machine-interface", s.SnifferPort, &v); err != nil {
				return err
			}
			if _, ok := v.Annotation.Get(KeyMirror); ok {
				return fmt.Errorf("port %s is already used by a vrsniff mirror: %w", s.SnifferPort, ErrConflict)
			}
			sv := saved{HadProps: v.Props != nil, HadAnnotations: v.Annotation != nil}
			props := v.Props
			if props == nil {
				props = map[string]json.RawMessage{}
			}
			if old, ok := props["service_interface_type"]; ok {
				sv.HadIfType = true
				_ = json.Unmarshal(old, &sv.IfType)
			}
			props["service_interface_type"] = json.RawMessage(`"left"`)
			return api.Update(ctx, "virtual-machine-interface", s.SnifferPort, map[string]any{
				"virtual_machine_interface_properties": props,
				"annotations":                          withMarker(v.Annotation, s, "sniffer-port", sv),
			})
		},
		undo: func(ctx context.Context) error { return p.restorePort(ctx, s.SnifferPort, s.Name) },
	}, {
		desc: "link port " + s.SnifferPort + " to port-tuple " + colon(s.tupleFQ()),
		do: func(ctx context.Context) error {
			return api.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefAdd, Type: "virtual-machine-interface",
				UUID: s.SnifferPort, RefType: "port-tuple", RefFQName: s.tupleFQ()})
		},
		undo: func(ctx context.Context) error {
			return ignoreMissing(api.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefDelete, Type: "virtual-machine-interface",
				UUID: s.SnifferPort, RefType: "port-tuple", RefFQName: s.tupleFQ()}), contrail.IsNotFound)
		},
	}}
}

// withMarker returns ann plus the mirror's marker keys.
func withMarker(ann *contrail.KeyValuePairs, s *Spec, target string, sv saved) *contrail.KeyValuePairs {
	out := &contrail.KeyValuePairs{KeyValuePair: []contrail.KeyValuePair{}}
	if ann != nil {
		out.KeyValuePair = append(out.KeyValuePair, ann.KeyValuePair...)
	}
	b, _ := json.Marshal(sv)
	out.KeyValuePair = append(out.KeyValuePair, s.annotations(target).KeyValuePair...)
	out.KeyValuePair = append(out.KeyValuePair, contrail.KeyValuePair{Key: KeySaved, Value: string(b)})
	return out
}

func isMarkerKey(k string) bool { return strings.HasPrefix(k, "vrsniff.") }

// resolvePort finds the port to mirror: by UUID, or the VM's n-th port in
// the order Nova attached them.
func (p *Provisioner) resolvePort(ctx context.Context, s *Spec) (string, error) {
	if s.Port != "" {
		return s.Port, nil
	}
	vms, err := p.API.List(ctx, "virtual-machine", "")
	if err != nil {
		return "", fmt.Errorf("list virtual machines: %w", err)
	}
	type vmView struct {
		contrail.Common
		VMIs []contrail.Ref `json:"virtual_machine_interface_back_refs"`
	}
	var found []vmView
	for _, raw := range vms {
		var v vmView
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("decode virtual machine: %w", err)
		}
		if v.DisplayName == s.VM || v.UUID == s.VM || (len(v.FQName) == 1 && v.FQName[0] == s.VM) {
			found = append(found, v)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("virtual machine %q: %w", s.VM, contrail.ErrNotFound)
	case 1:
	default:
		return "", fmt.Errorf("virtual machine name %q is ambiguous (%d machines): give the port UUID", s.VM, len(found))
	}
	type port struct{ uuid, created string }
	var ports []port
	for _, r := range found[0].VMIs {
		var v struct {
			IDPerms struct {
				Created string `json:"created"`
			} `json:"id_perms"`
		}
		if err := p.API.Read(ctx, "virtual-machine-interface", r.UUID, &v); err != nil {
			return "", err
		}
		ports = append(ports, port{r.UUID, v.IDPerms.Created})
	}
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].created != ports[j].created {
			return ports[i].created < ports[j].created
		}
		return ports[i].uuid < ports[j].uuid
	})
	if s.Interface < 0 || s.Interface >= len(ports) {
		return "", fmt.Errorf("virtual machine %q has %d ports; interface %d does not exist", s.VM, len(ports), s.Interface)
	}
	return ports[s.Interface].uuid, nil
}

func (p *Provisioner) createPort(ctx context.Context, s *Spec) (Result, error) {
	api := p.API
	id, err := p.resolvePort(ctx, s)
	if err != nil {
		return Result{}, err
	}
	var v vmi
	if err := api.Read(ctx, "virtual-machine-interface", id, &v); err != nil {
		return Result{}, fmt.Errorf("port %s: %w", id, err)
	}
	if s.Project == nil {
		if len(v.FQName) != 3 {
			return Result{}, fmt.Errorf("port %s: unexpected fq_name %v", id, v.FQName)
		}
		s.Project = clone(v.FQName[:2])
	}
	res := Result{Mirror: s.describe()}
	res.Mirror.Target = "port " + id
	if _, ok := v.Annotation.Get(KeyMirror); ok {
		if _, err := p.checkOwned(v.Annotation, "port "+id+" mirror", s); err != nil {
			return Result{}, err
		}
		return res, nil
	}
	if _, ok := v.Props["interface_mirror"]; ok {
		return Result{}, fmt.Errorf("port %s already has an interface mirror that vrsniff did not set; refusing to replace it: %w", id, ErrConflict)
	}
	sv := saved{HadProps: v.Props != nil, HadAnnotations: v.Annotation != nil}
	props := v.Props
	if props == nil {
		props = map[string]json.RawMessage{}
	}
	im, err := json.Marshal(contrail.InterfaceMirrorType{TrafficDirection: s.TrafficDirection, MirrorTo: *s.mirrorTo()})
	if err != nil {
		return Result{}, err
	}
	props["interface_mirror"] = im
	err = run(ctx, p.log(), []step{{
		desc: "set interface_mirror on port " + id,
		do: func(ctx context.Context) error {
			// One PUT carries both the mirror and the marker: the port is
			// never mirrored without a record of how to undo it.
			return api.Update(ctx, "virtual-machine-interface", id, map[string]any{
				"virtual_machine_interface_properties": props,
				"annotations":                          withMarker(v.Annotation, s, id, sv),
			})
		},
	}})
	if err != nil {
		return Result{}, err
	}
	res.Created = true
	return res, nil
}

// restorePort removes what a mirror added to a port (interface_mirror or
// the service interface type, and the marker), keeping every other
// property, including ones changed since.
func (p *Provisioner) restorePort(ctx context.Context, id, name string) error {
	var v vmi
	if err := p.API.Read(ctx, "virtual-machine-interface", id, &v); err != nil {
		return ignoreMissing(err, contrail.IsNotFound)
	}
	if n, _ := v.Annotation.Get(KeyMirror); n != name {
		return nil
	}
	var sv saved
	if raw, ok := v.Annotation.Get(KeySaved); ok {
		if err := json.Unmarshal([]byte(raw), &sv); err != nil {
			return fmt.Errorf("port %s: bad %s annotation: %w", id, KeySaved, err)
		}
	}
	kind, _ := v.Annotation.Get(KeyKind)
	props := v.Props
	if props == nil {
		props = map[string]json.RawMessage{}
	}
	if kind == string(KindPort) {
		delete(props, "interface_mirror")
	} else if sv.HadIfType {
		b, _ := json.Marshal(sv.IfType)
		props["service_interface_type"] = b
	} else {
		delete(props, "service_interface_type")
	}
	var ann []contrail.KeyValuePair
	if v.Annotation != nil {
		for _, kv := range v.Annotation.KeyValuePair {
			if !isMarkerKey(kv.Key) {
				ann = append(ann, kv)
			}
		}
	}
	upd := map[string]any{"virtual_machine_interface_properties": props}
	if len(props) == 0 && !sv.HadProps {
		upd["virtual_machine_interface_properties"] = nil
	}
	if len(ann) == 0 && !sv.HadAnnotations {
		upd["annotations"] = nil
	} else {
		upd["annotations"] = contrail.KeyValuePairs{KeyValuePair: append([]contrail.KeyValuePair{}, ann...)}
	}
	return p.API.Update(ctx, "virtual-machine-interface", id, upd)
}

// describe is the listing entry of a spec.
func (s *Spec) describe() Mirror {
	m := Mirror{Name: s.Name, Kind: s.Kind, Target: s.VN, Analyzer: s.analyzerText(), State: "active"}
	switch s.Kind {
	case KindPolicy:
		m.Objects = []string{"network-policy " + colon(s.policyFQ())}
	case KindServiceInstance:
		m.Objects = []string{"service-template " + colon(s.stFQ()), "service-instance " + colon(s.siFQ()),
			"port-tuple " + colon(s.tupleFQ()), "network-policy " + colon(s.policyFQ())}
	}
	return m
}

// Print writes mirrors as a table.
func Print(w io.Writer, ms []Mirror) error {
	if _, err := fmt.Fprintf(w, "%-20s %-17s %-40s %-40s %s\n", "NAME", "KIND", "TARGET", "ANALYZER", "STATE"); err != nil {
		return err
	}
	for _, m := range ms {
		if _, err := fmt.Fprintf(w, "%-20s %-17s %-40s %-40s %s\n", m.Name, m.Kind, m.Target, m.Analyzer, m.State); err != nil {
			return err
		}
	}
	return nil
}
