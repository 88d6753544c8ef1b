package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// step is one change of a plan, with what undoes it.
type step struct {
	desc string
	do   func(context.Context) error
	undo func(context.Context) error // nil: nothing to undo
}

// RollbackError reports a create that failed half way.
type RollbackError struct {
	Step       string   // the step that failed
	Err        error    // why
	RolledBack []string // steps undone
	Left       []string // steps that could not be undone: clean these up by hand
}

func (e *RollbackError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.Step, e.Err)
	if len(e.RolledBack) > 0 {
		fmt.Fprintf(&b, "; rolled back: %s", strings.Join(e.RolledBack, ", "))
	}
	if len(e.Left) > 0 {
		fmt.Fprintf(&b, "; COULD NOT ROLL BACK (clean up by hand): %s", strings.Join(e.Left, "; "))
	}
	return b.String()
}

func (e *RollbackError) Unwrap() error { return e.Err }

// run performs steps in order; when one fails it undoes the ones done, in
// reverse order. Undo runs on a context that is not cancelled with ctx, so
// that an interrupted create still cleans up after itself.
func run(ctx context.Context, log *slog.Logger, steps []step) error {
	for i, s := range steps {
		log.Info("step", "do", s.desc)
		err := s.do(ctx)
		if err == nil {
			continue
		}
		re := &RollbackError{Step: s.desc, Err: err}
		uctx := context.WithoutCancel(ctx)
		for j := i - 1; j >= 0; j-- {
			u := steps[j]
			if u.undo == nil {
				continue
			}
			log.Info("rollback", "undo", u.desc)
			if uerr := u.undo(uctx); uerr != nil {
				re.Left = append(re.Left, fmt.Sprintf("%s (%v)", u.desc, uerr))
			} else {
				re.RolledBack = append(re.RolledBack, u.desc)
			}
		}
		return re
	}
	return nil
}

// ignoreMissing turns "not found" into success, for undo and delete steps
// that may find their object already gone.
func ignoreMissing(err error, notFound func(error) bool) error {
	if err != nil && notFound(err) {
		return nil
	}
	return err
}

var errNoMirror = errors.New("no such mirror")
