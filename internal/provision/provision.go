package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

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
	// Wait bounds how long Create waits for the schema transformer to
	// compile a policy mirror, and Delete for it to remove one; 0 means
	// DefaultWait.
	Wait time.Duration
	// Poll is the interval between two looks at the compiled ACLs; 0
	// means 1 s.
	Poll time.Duration
}

func (p *Provisioner) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Result is what Create did.
type Result struct {
	Mirror   Mirror
	Created  bool     // false: the same mirror already existed
	Warnings []string // what may keep the mirror from delivering
}

// Create sets up the mirror s. Creating the same mirror twice is not an
// error (Result.Created is false); a different mirror under the same name
// is (ErrConflict). If a step fails, the steps already done are rolled back
// and the error is a *RollbackError.
func (p *Provisioner) Create(ctx context.Context, s Spec) (Result, error) {
	if err := s.Check(); err != nil {
		return Result{}, err
	}
	if s.Kind != KindPort && isUUID(s.VN) {
		// Names, annotations and the default project follow the
		// network's fq_name.
		n, err := p.readNetwork(ctx, s.VN)
		if err != nil {
			return Result{}, err
		}
		s.VN = colon(n.FQName)
		if err := s.Check(); err != nil {
			return Result{}, err
		}
	}
	switch s.Kind {
	case KindPort:
		return p.createPort(ctx, &s)
	case KindPerPort:
		return p.createPerPort(ctx, &s)
	default:
		return p.createPolicy(ctx, &s)
	}
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
