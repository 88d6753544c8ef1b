package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/vrsniff/vrsniff/internal/contrail"
)

type marked struct {
	contrail.Common
	Props      map[string]json.RawMessage `json:"virtual_machine_interface_properties"`
	VNBackRefs []contrail.Ref             `json:"virtual_network_back_refs"`
	TupleRefs  []contrail.Ref             `json:"port_tuple_refs"`
}

func (p *Provisioner) projectID(ctx context.Context, project []string) (string, error) {
	id, err := p.API.FQNameToID(ctx, "project", project)
	if err != nil {
		return "", fmt.Errorf("project %s: %w", colon(project), err)
	}
	return id, nil
}

// list returns the project's objects of type typ that carry a marker.
func (p *Provisioner) list(ctx context.Context, typ, parent string) ([]marked, error) {
	raws, err := p.API.List(ctx, typ, parent)
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

// List returns the mirrors vrsniff created in the project, with their
// state: "active", or what is missing or changed.
func (p *Provisioner) List(ctx context.Context, project []string) ([]Mirror, error) {
	pid, err := p.projectID(ctx, project)
	if err != nil {
		return nil, err
	}
	pols, err := p.list(ctx, "network-policy", pid)
	if err != nil {
		return nil, err
	}
	var out []Mirror
	for _, pol := range pols {
		a := pol.Annotations
		m := Mirror{Objects: []string{"network-policy " + colon(pol.FQName)}}
		m.Name, _ = a.Get(KeyMirror)
		k, _ := a.Get(KeyKind)
		m.Kind = Kind(k)
		m.Target, _ = a.Get(KeyTarget)
		m.Analyzer, _ = a.Get(KeyAnalyzer)
		var states []string
		attached := false
		for _, r := range pol.VNBackRefs {
			if colon(r.To) == m.Target {
				attached = true
			}
		}
		if !attached {
			states = append(states, "not attached to "+m.Target)
		}
		if m.Kind == KindServiceInstance {
			st, err := p.serviceState(ctx, project, m.Name)
			if err != nil {
				return nil, err
			}
			states = append(states, st...)
			s := Spec{Name: m.Name, Project: project, Kind: KindServiceInstance}
			m.Objects = s.describe().Objects
		}
		m.State = "active"
		if len(states) > 0 {
			m.State = strings.Join(states, "; ")
		}
		out = append(out, m)
	}
	ports, err := p.list(ctx, "virtual-machine-interface", pid)
	if err != nil {
		return nil, err
	}
	for _, port := range ports {
		a := port.Annotations
		if k, _ := a.Get(KeyKind); k != string(KindPort) {
			continue // a sniffer port of a service-instance mirror
		}
		m := Mirror{Kind: KindPort, Target: "port " + port.UUID, State: "active",
			Objects: []string{"virtual-machine-interface " + port.UUID + " (interface_mirror)"}}
		m.Name, _ = a.Get(KeyMirror)
		m.Analyzer, _ = a.Get(KeyAnalyzer)
		var im contrail.InterfaceMirrorType
		if raw, ok := port.Props["interface_mirror"]; !ok || json.Unmarshal(raw, &im) != nil {
			m.State = "interface_mirror removed"
		} else if im.MirrorTo.AnalyzerName != Prefix+m.Name {
			m.State = "interface_mirror changed by someone else (analyzer " + im.MirrorTo.AnalyzerName + ")"
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (p *Provisioner) serviceState(ctx context.Context, project []string, name string) ([]string, error) {
	s := Spec{Name: name, Project: project}
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
	var pt struct {
		Ports []contrail.Ref `json:"virtual_machine_interface_back_refs"`
	}
	if _, err := p.API.ReadByFQName(ctx, "port-tuple", s.tupleFQ(), &pt); err == nil && len(pt.Ports) == 0 {
		states = append(states, "no analyzer port linked to the port tuple (boot the sniffer VM)")
	}
	return states, nil
}

// Delete removes the mirror name from the project: it detaches and deletes
// the policy (and the service objects), or restores the port's properties.
// Objects already gone are skipped, so Delete also cleans up after a
// create that could not roll back.
func (p *Provisioner) Delete(ctx context.Context, project []string, name string) error {
	s := Spec{Name: name, Project: project}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("mirror name %q: %w", name, ErrNoMirror)
	}
	pid, err := p.projectID(ctx, project)
	if err != nil {
		return err
	}
	found := false
	var steps []step

	var pol marked
	polID, err := p.API.ReadByFQName(ctx, "network-policy", s.policyFQ(), &pol)
	switch {
	case err == nil:
		if n, _ := pol.Annotations.Get(KeyMirror); n != name {
			return fmt.Errorf("network-policy %s was not created by vrsniff: %w", colon(s.policyFQ()), ErrConflict)
		}
		found = true
		for _, r := range pol.VNBackRefs {
			vnID := r.UUID
			steps = append(steps, step{desc: "detach from virtual-network " + colon(r.To), do: func(ctx context.Context) error {
				return ignoreMissing(p.API.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefDelete, Type: "virtual-network",
					UUID: vnID, RefType: "network-policy", RefUUID: polID}), contrail.IsNotFound)
			}})
		}
		steps = append(steps, step{desc: "delete network-policy " + colon(s.policyFQ()), do: func(ctx context.Context) error {
			return ignoreMissing(p.API.Delete(ctx, "network-policy", polID), contrail.IsNotFound)
		}})
	case !contrail.IsNotFound(err):
		return err
	}

	ports, err := p.list(ctx, "virtual-machine-interface", pid)
	if err != nil {
		return err
	}
	for _, port := range ports {
		if n, _ := port.Annotations.Get(KeyMirror); n != name {
			continue
		}
		found = true
		id := port.UUID
		for _, r := range port.TupleRefs {
			if colon(r.To) == colon(s.tupleFQ()) {
				steps = append(steps, step{desc: "unlink port " + id + " from the port tuple", do: func(ctx context.Context) error {
					return ignoreMissing(p.API.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefDelete,
						Type: "virtual-machine-interface", UUID: id, RefType: "port-tuple", RefFQName: s.tupleFQ()}), contrail.IsNotFound)
				}})
			}
		}
		steps = append(steps, step{desc: "restore port " + id, do: func(ctx context.Context) error {
			return p.restorePort(ctx, id, name)
		}})
	}

	for _, o := range []struct {
		typ string
		fq  []string
	}{{"port-tuple", s.tupleFQ()}, {"service-instance", s.siFQ()}, {"service-template", s.stFQ()}} {
		var obj marked
		if _, err := p.API.ReadByFQName(ctx, o.typ, o.fq, &obj); contrail.IsNotFound(err) {
			continue
		} else if err != nil {
			return err
		}
		if n, _ := obj.Annotations.Get(KeyMirror); n != name {
			return fmt.Errorf("%s %s was not created by vrsniff: %w", o.typ, colon(o.fq), ErrConflict)
		}
		found = true
		steps = append(steps, step{desc: "delete " + o.typ + " " + colon(o.fq), do: func(ctx context.Context) error {
			return p.deleteByFQ(ctx, o.typ, o.fq)
		}})
	}
	if !found {
		return fmt.Errorf("mirror %q in project %s: %w", name, colon(project), ErrNoMirror)
	}
	// Deletion is not rolled back: each step is safe to repeat, so a
	// failed delete is finished by running it again.
	for _, st := range steps {
		p.log().Info("step", "do", st.desc)
		if err := st.do(ctx); err != nil {
			return fmt.Errorf("delete mirror %q: %s: %w (run delete again to finish)", name, st.desc, err)
		}
	}
	return nil
}
