package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vrsniff/vrsniff/internal/contrail"
)

// found is what belongs to one mirror in one project.
type found struct {
	prj   projectRef
	pol   *policy
	ports []string // marked ports to restore
	tuple []string // ports linked to the mirror's port tuple
	objs  []struct {
		typ string
		fq  []string
	}
	notes []string
}

func (f *found) any() bool { return f.pol != nil || len(f.ports) > 0 || len(f.objs) > 0 }

// Delete removes the mirror name: it detaches its policy and waits until
// the networks' ACLs no longer hold its rules, deletes the policy and the
// service objects, and restores the ports it changed. It looks in the
// projects given (nil: every readable project); a name found in more than
// one is refused. Objects already gone are skipped, so Delete also
// finishes a create that could not roll back, or a delete interrupted. It
// returns notes on what it found (a static ACL changed by others).
func (p *Provisioner) Delete(ctx context.Context, projects [][]string, name string) ([]string, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("mirror name %q: %w", name, ErrNoMirror)
	}
	prjs, err := p.projects(ctx, projects)
	if err != nil {
		return nil, err
	}
	var hits []*found
	for _, prj := range prjs {
		f, err := p.find(ctx, prj, name)
		if err != nil {
			return nil, err
		}
		if f.any() {
			hits = append(hits, f)
		}
	}
	switch len(hits) {
	case 0:
		var where []string
		for _, prj := range prjs {
			where = append(where, colon(prj.fq))
		}
		if projects == nil {
			where = []string{"any readable project"}
		}
		return nil, fmt.Errorf("mirror %q in %s: %w", name, strings.Join(where, ", "), ErrNoMirror)
	case 1:
	default:
		var where []string
		for _, h := range hits {
			where = append(where, colon(h.prj.fq))
		}
		return nil, fmt.Errorf("mirror %q exists in projects %s: say which with --project", name, strings.Join(where, ", "))
	}
	f := hits[0]
	s := Spec{Name: name, Project: f.prj.fq}
	notes := f.notes
	// Deletion is not rolled back: each step is safe to repeat, so a
	// failed delete is finished by running it again.
	if f.pol != nil {
		n, err := p.deletePolicy(ctx, &s, f.pol)
		notes = append(notes, n...)
		if err != nil {
			return notes, fmt.Errorf("delete mirror %q: %w", name, err)
		}
	}
	for _, id := range f.tuple {
		p.log().Info("step", "do", "unlink port "+id+" from the port tuple")
		err := p.API.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefDelete,
			Type: "virtual-machine-interface", UUID: id, RefType: "port-tuple", RefFQName: s.tupleFQ()})
		if err := ignoreMissing(err, contrail.IsNotFound); err != nil {
			return notes, fmt.Errorf("delete mirror %q: unlink port %s: %w (run delete again to finish)", name, id, err)
		}
	}
	for _, id := range f.ports {
		p.log().Info("step", "do", "restore port "+id)
		if err := p.restorePort(ctx, id, name); err != nil {
			return notes, fmt.Errorf("delete mirror %q: restore port %s: %w (run delete again to finish)", name, id, err)
		}
	}
	for _, o := range f.objs {
		p.log().Info("step", "do", "delete "+o.typ+" "+colon(o.fq))
		if err := p.deleteByFQ(ctx, o.typ, o.fq); err != nil {
			return notes, fmt.Errorf("delete mirror %q: delete %s %s: %w (run delete again to finish)", name, o.typ, colon(o.fq), err)
		}
	}
	return notes, nil
}

// find collects what belongs to mirror name in prj.
func (p *Provisioner) find(ctx context.Context, prj projectRef, name string) (*found, error) {
	s := Spec{Name: name, Project: prj.fq}
	f := &found{prj: prj}
	pol, err := p.readPolicy(ctx, s.policyFQ())
	switch {
	case err == nil:
		if n, _ := pol.Annotations.Get(KeyMirror); n != name {
			return nil, fmt.Errorf("network-policy %s was not created by vrsniff: %w", colon(s.policyFQ()), ErrConflict)
		}
		f.pol = pol
	case !contrail.IsNotFound(err):
		return nil, err
	}
	ports, err := p.list(ctx, "virtual-machine-interface", prj.id, "port_tuple_refs")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var sniffers []string
	for _, port := range ports {
		if n, _ := port.Annotations.Get(KeyMirror); n != name {
			continue
		}
		seen[port.UUID] = true
		f.ports = append(f.ports, port.UUID)
		if k, _ := port.Annotations.Get(KeyKind); k == string(KindServiceInstance) {
			sniffers = append(sniffers, port.UUID)
		}
		for _, r := range port.TupleRefs {
			if colon(r.To) == colon(s.tupleFQ()) {
				f.tuple = append(f.tuple, port.UUID)
			}
		}
		// The ports of a per-port mirror may belong to other projects
		// than the network's.
		if k, _ := port.Annotations.Get(KeyKind); k == string(KindPerPort) {
			vn, _ := port.Annotations.Get(KeyTarget)
			n, err := p.networkByFQ(ctx, vn)
			if err != nil {
				continue
			}
			for _, r := range n.Ports {
				if seen[r.UUID] {
					continue
				}
				v, err := p.readPort(ctx, r.UUID)
				if err != nil {
					continue
				}
				if m, _ := v.Annotation.Get(KeyMirror); m == name {
					seen[r.UUID] = true
					f.ports = append(f.ports, r.UUID)
				}
			}
		}
	}
	// An analyzer instance that other mirrors still send to stays, with
	// its port: deleting it would leave them mirroring to nowhere.
	if others, err := p.siUsers(ctx, &s); err != nil {
		return nil, err
	} else if len(others) > 0 {
		f.notes = append(f.notes, fmt.Sprintf("kept service instance %s and its port: %s still mirror to it", colon(s.siFQ()), strings.Join(others, ", ")))
		f.tuple = nil
		var keep []string
		for _, id := range f.ports {
			if !slices.Contains(sniffers, id) {
				keep = append(keep, id)
			}
		}
		f.ports = keep
		return f, nil
	}
	for _, o := range []struct {
		typ string
		fq  []string
	}{{"port-tuple", s.tupleFQ()}, {"service-instance", s.siFQ()}, {"service-template", s.stFQ()}} {
		// The template belongs to the domain: it is the mirror's only
		// with the project's other objects.
		if o.typ == "service-template" && f.pol == nil && len(f.objs) == 0 {
			continue
		}
		var obj marked
		id, err := p.API.FQNameToID(ctx, o.typ, o.fq)
		if contrail.IsNotFound(err) {
			continue
		} else if err != nil {
			return nil, err
		}
		if err := p.API.ReadFields(ctx, o.typ, id, []string{"annotations"}, &obj); err != nil {
			return nil, err
		}
		if n, _ := obj.Annotations.Get(KeyMirror); n != name {
			return nil, fmt.Errorf("%s %s was not created by vrsniff: %w", o.typ, colon(o.fq), ErrConflict)
		}
		f.objs = append(f.objs, struct {
			typ string
			fq  []string
		}{o.typ, o.fq})
	}
	return f, nil
}

// siUsers lists the policies other than the mirror's own that mirror to the
// service instance the mirror created.
func (p *Provisioner) siUsers(ctx context.Context, s *Spec) ([]string, error) {
	if _, err := p.API.FQNameToID(ctx, "service-instance", s.siFQ()); contrail.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	users, err := p.analyzerNameUsers(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range users[colon(s.siFQ())] {
		if u.what != "network-policy "+colon(s.policyFQ()) {
			out = append(out, u.what)
		}
	}
	return out, nil
}
