package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ChooseKind sets s.Kind from what s names and the two choices of
// "vrsniff mirror create": a network (VN) alone is KindPolicy, with
// serviceInstance (implied by AnalyzerSI) KindServiceInstance, with perPort
// KindPerPort; a port or a VM is KindPort. The errors name the flags.
func (s *Spec) ChooseKind(serviceInstance, perPort bool) error {
	serviceInstance = serviceInstance || s.AnalyzerSI != ""
	port := s.Port != "" || s.VM != ""
	switch {
	case (serviceInstance || perPort) && s.VN == "":
		return errors.New("--service-instance and --per-port need --vn")
	case serviceInstance && perPort:
		return errors.New("give --service-instance or --per-port, not both")
	case serviceInstance:
		s.Kind = KindServiceInstance
	case perPort && port:
		return errors.New("--per-port mirrors the ports of --vn: leave out --port/--vm")
	case perPort:
		s.Kind = KindPerPort
	case s.VN != "" && port:
		return errors.New("give --vn or --port/--vm, not both")
	case s.VN != "":
		s.Kind = KindPolicy
	case port:
		s.Kind = KindPort
	default:
		return errors.New("say what to mirror: --vn, --port or --vm")
	}
	return nil
}

// PrintCreated reports what Create did, as "vrsniff mirror create" does:
// the mirror on w, and on notes a reminder when it went into another
// project than own (the credentials' project; nil if unknown) and the
// result's warnings. A dry run changed nothing and says only that.
func PrintCreated(w, notes io.Writer, name string, res Result, own []string, dryRun bool) {
	mr := res.Mirror
	switch {
	case dryRun:
		fmt.Fprintf(notes, "dry run: nothing was changed\n")
	case res.Created:
		fmt.Fprintf(w, "created mirror %s in project %s: %s %s -> %s (%s)\n", name, mr.Project, mr.Mechanism, mr.Target, mr.Analyzer, mr.AnalyzerName)
	default:
		fmt.Fprintf(w, "mirror %s already exists in project %s: %s %s -> %s (%s)\n", name, mr.Project, mr.Mechanism, mr.Target, mr.Analyzer, mr.AnalyzerName)
	}
	if own != nil && colon(own) != mr.Project && !dryRun {
		fmt.Fprintf(notes, "note: the mirror is in project %s, not the credentials' %s: list and delete it with --project %s\n",
			mr.Project, strings.Join(own, ":"), mr.Project)
	}
	for _, m := range res.Warnings {
		fmt.Fprintf(notes, "warning: %s\n", m)
	}
}

// Scope says which projects List and Delete look in: Project
// (domain:project), every project the credentials can read (All), or
// else the project the credentials are scoped to.
type Scope struct {
	Project string
	All     bool
}

// Check checks the scope as the command line gives it.
func (s Scope) Check() error {
	if _, err := ParseProject(s.Project); err != nil {
		return err
	}
	if s.All && s.Project != "" {
		return errors.New("give --project or --all-projects, not both")
	}
	return nil
}

// Projects resolves the scope into List's and Delete's projects; nil means
// every readable project. own returns the credentials' project, nil when
// none is known (contrail.Session.Project).
func (s Scope) Projects(ctx context.Context, own func(context.Context) ([]string, error)) ([][]string, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	if s.All {
		return nil, nil
	}
	if s.Project != "" {
		p, err := ParseProject(s.Project)
		return [][]string{p}, err
	}
	p, err := own(ctx)
	if err != nil || p == nil {
		return nil, err
	}
	return [][]string{p}, nil
}
