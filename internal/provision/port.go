package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/vrsniff/vrsniff/internal/contrail"
)

// vmi is a port read for a read-modify-write: the properties stay raw so
// that fields this client does not model survive.
type vmi struct {
	contrail.Common
	Props      map[string]json.RawMessage `json:"virtual_machine_interface_properties"`
	TupleRefs  []contrail.Ref             `json:"port_tuple_refs"`
	Annotation *contrail.KeyValuePairs    `json:"annotations"`
	IIPs       []contrail.Ref             `json:"instance_ip_back_refs"`
	VNRefs     []contrail.Ref             `json:"virtual_network_refs"`
}

var vmiFields = []string{"fq_name", "display_name", "parent_type", "annotations", "virtual_machine_interface_properties",
	"port_tuple_refs", "instance_ip_back_refs", "virtual_network_refs"}

func (p *Provisioner) readPort(ctx context.Context, id string) (*vmi, error) {
	var v vmi
	if err := p.API.ReadFields(ctx, "virtual-machine-interface", id, vmiFields, &v); err != nil {
		return nil, fmt.Errorf("port %s: %w", id, err)
	}
	v.UUID = id
	return &v, nil
}

// addresses returns the port's instance IP addresses.
func (p *Provisioner) addresses(ctx context.Context, v *vmi) ([]string, error) {
	var out []string
	for _, r := range v.IIPs {
		var iip struct {
			Addr string `json:"instance_ip_address"`
		}
		if err := p.API.ReadFields(ctx, "instance-ip", r.UUID, []string{"instance_ip_address"}, &iip); err != nil {
			if contrail.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("instance-ip %s: %w", r.UUID, err)
		}
		out = append(out, iip.Addr)
	}
	return out, nil
}

// isAnalyzerPort reports whether the port holds the analyzer's address:
// mirroring it would send every mirrored copy back into the mirror.
func (p *Provisioner) isAnalyzerPort(ctx context.Context, s *Spec, v *vmi) (bool, error) {
	addrs, err := p.addresses(ctx, v)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a == s.Analyzer.IP {
			return true, nil
		}
	}
	return false, nil
}

// saved is what a changed port had before, kept in its KeySaved annotation.
type saved struct {
	HadProps       bool   `json:"had_props"`
	HadAnnotations bool   `json:"had_annotations"`
	HadIfType      bool   `json:"had_if_type,omitempty"`
	IfType         string `json:"if_type,omitempty"`
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
	// A detail list carries back references only when asked for.
	vms, err := p.API.List(ctx, "virtual-machine", "", "display_name", "virtual_machine_interface_back_refs")
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
		if err := p.API.ReadFields(ctx, "virtual-machine-interface", r.UUID, []string{"id_perms"}, &v); err != nil {
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

// portStep sets interface_mirror on the port v, with the marker in the same
// PUT: the port is never mirrored without a record of how to undo it.
func (p *Provisioner) portStep(s *Spec, v *vmi, target string) (step, error) {
	sv := saved{HadProps: v.Props != nil, HadAnnotations: v.Annotation != nil}
	props := map[string]json.RawMessage{}
	for k, val := range v.Props {
		props[k] = val
	}
	im, err := json.Marshal(contrail.InterfaceMirrorType{TrafficDirection: s.TrafficDirection, MirrorTo: *s.mirrorTo()})
	if err != nil {
		return step{}, err
	}
	props["interface_mirror"] = im
	id, name := v.UUID, s.Name
	return step{
		desc: "set interface_mirror on port " + id,
		do: func(ctx context.Context) error {
			return p.API.Update(ctx, "virtual-machine-interface", id, map[string]any{
				"virtual_machine_interface_properties": props,
				"annotations":                          withMarker(v.Annotation, s, target, sv),
			})
		},
		undo: func(ctx context.Context) error { return p.restorePort(ctx, id, name) },
	}, nil
}

func (p *Provisioner) createPort(ctx context.Context, s *Spec) (Result, error) {
	id, err := p.resolvePort(ctx, s)
	if err != nil {
		return Result{}, err
	}
	v, err := p.readPort(ctx, id)
	if err != nil {
		return Result{}, err
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
	if own, err := p.isAnalyzerPort(ctx, s, v); err != nil {
		return Result{}, err
	} else if own {
		return Result{}, fmt.Errorf("port %s holds the analyzer's address %s: mirroring it would mirror the mirrored copies: %w", id, s.Analyzer.IP, ErrUnsafe)
	}
	if err := p.checkAnalyzerName(ctx, s); err != nil {
		return Result{}, err
	}
	if res.Warnings, err = p.headerlessCheck(ctx, s); err != nil {
		return Result{}, err
	}
	st, err := p.portStep(s, v, id)
	if err != nil {
		return Result{}, err
	}
	if err := run(ctx, p.log(), []step{st}); err != nil {
		return Result{}, err
	}
	res.Created = true
	return res, nil
}

// createPerPort mirrors every port of s.VN, except the analyzer's own and
// ports someone else already mirrors (reported as warnings). Ports added to
// the network later are not covered; List reports them.
func (p *Provisioner) createPerPort(ctx context.Context, s *Spec) (Result, error) {
	n, err := p.networkByFQ(ctx, s.VN)
	if err != nil {
		return Result{}, err
	}
	res := Result{Mirror: s.describe()}
	if err := p.checkAnalyzerName(ctx, s); err != nil {
		return Result{}, err
	}
	if res.Warnings, err = p.headerlessCheck(ctx, s); err != nil {
		return Result{}, err
	}
	var steps []step
	mine := 0
	for _, r := range n.Ports {
		v, err := p.readPort(ctx, r.UUID)
		if contrail.IsNotFound(err) {
			continue
		} else if err != nil {
			return Result{}, err
		}
		if name, ok := v.Annotation.Get(KeyMirror); ok {
			if name != s.Name {
				res.Warnings = append(res.Warnings, fmt.Sprintf("port %s is used by vrsniff mirror %q: not mirrored", v.UUID, name))
				continue
			}
			if _, err := p.checkOwned(v.Annotation, "port "+v.UUID+" mirror", s); err != nil {
				return Result{}, err
			}
			mine++
			continue
		}
		if _, ok := v.Props["interface_mirror"]; ok {
			res.Warnings = append(res.Warnings, fmt.Sprintf("port %s already has an interface mirror that vrsniff did not set: not mirrored", v.UUID))
			continue
		}
		if own, err := p.isAnalyzerPort(ctx, s, v); err != nil {
			return Result{}, err
		} else if own {
			res.Warnings = append(res.Warnings, fmt.Sprintf("port %s is the analyzer's own: not mirrored", v.UUID))
			continue
		}
		st, err := p.portStep(s, v, s.VN)
		if err != nil {
			return Result{}, err
		}
		steps = append(steps, st)
	}
	if len(steps) == 0 && mine == 0 {
		return Result{}, fmt.Errorf("network %s has no port to mirror", s.VN)
	}
	if err := run(ctx, p.log(), steps); err != nil {
		return Result{}, err
	}
	res.Created = len(steps) > 0
	return res, nil
}

// restorePort removes what a mirror added to a port (interface_mirror or
// the service interface type, and the marker), keeping every other
// property, including ones changed since.
func (p *Provisioner) restorePort(ctx context.Context, id, name string) error {
	v, err := p.readPort(ctx, id)
	if err != nil {
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
	if kind == string(KindPort) || kind == string(KindPerPort) {
		delete(props, "interface_mirror")
	} else if sv.HadIfType {
		b, _ := json.Marshal(sv.IfType)
		props["service_interface_type"] = b
	} else {
		delete(props, "service_interface_type")
	}
	// annotations is a map property: the real server answers a null with
	// a 500 and changes nothing, so an empty list clears it.
	ann := contrail.KeyValuePairs{KeyValuePair: []contrail.KeyValuePair{}}
	if v.Annotation != nil {
		for _, kv := range v.Annotation.KeyValuePair {
			if !isMarkerKey(kv.Key) {
				ann.KeyValuePair = append(ann.KeyValuePair, kv)
			}
		}
	}
	upd := map[string]any{"virtual_machine_interface_properties": props, "annotations": ann}
	if len(props) == 0 && !sv.HadProps {
		upd["virtual_machine_interface_properties"] = nil
	}
	return p.API.Update(ctx, "virtual-machine-interface", id, upd)
}
