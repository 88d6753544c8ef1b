package provision

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestChooseKind(t *testing.T) {
	const vn = "default-domain:demo:vn-web"
	for _, tc := range []struct {
		s        Spec
		si, per  bool
		want     Kind
		errMatch string
	}{
		{s: Spec{VN: vn}, want: KindPolicy},
		{s: Spec{VN: vn}, si: true, want: KindServiceInstance},
		{s: Spec{VN: vn, AnalyzerSI: "d:p:si"}, want: KindServiceInstance},
		{s: Spec{VN: vn}, per: true, want: KindPerPort},
		{s: Spec{Port: "6c1f3a52-0d6e-4e0f-9d59-8f8e0f2a9b11"}, want: KindPort},
		{s: Spec{VM: "web-1"}, want: KindPort},
		{s: Spec{}, errMatch: "say what to mirror"},
		{s: Spec{}, si: true, errMatch: "need --vn"},
		{s: Spec{VN: vn}, si: true, per: true, errMatch: "not both"},
		{s: Spec{VN: vn, VM: "web-1"}, per: true, errMatch: "leave out --port/--vm"},
		{s: Spec{VN: vn, VM: "web-1"}, errMatch: "give --vn or --port/--vm"},
	} {
		s := tc.s
		err := s.ChooseKind(tc.si, tc.per)
		if tc.errMatch != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errMatch) {
				t.Errorf("%+v si=%v per-port=%v: error %v, want %q", tc.s, tc.si, tc.per, err, tc.errMatch)
			}
			continue
		}
		if err != nil || s.Kind != tc.want {
			t.Errorf("%+v si=%v per-port=%v: %q, %v; want %q", tc.s, tc.si, tc.per, s.Kind, err, tc.want)
		}
	}
}

func TestScopeProjects(t *testing.T) {
	ctx := context.Background()
	own := func(context.Context) ([]string, error) { return []string{"d", "own"}, nil }
	none := func(context.Context) ([]string, error) { return nil, nil }
	broken := errors.New("keystone down")
	failing := func(context.Context) ([]string, error) { return nil, broken }
	for _, tc := range []struct {
		s    Scope
		own  func(context.Context) ([]string, error)
		want [][]string
		err  bool
	}{
		{Scope{Project: "d:p"}, failing, [][]string{{"d", "p"}}, false},
		{Scope{All: true}, failing, nil, false},
		{Scope{}, own, [][]string{{"d", "own"}}, false},
		{Scope{}, none, nil, false},
		{Scope{}, failing, nil, true},
		{Scope{Project: "p"}, own, nil, true},
		{Scope{Project: "d:p", All: true}, own, nil, true},
	} {
		got, err := tc.s.Projects(ctx, tc.own)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: %v, %v; want %v (error %v)", tc.s, got, err, tc.want, tc.err)
		}
		if check := tc.s.Check(); check != nil && !tc.err {
			t.Errorf("%+v: Check: %v", tc.s, check)
		}
	}
}

func TestPrintCreated(t *testing.T) {
	res := Result{Mirror: Mirror{Project: "d:p", Mechanism: "policy", Target: "d:p:vn", Analyzer: "10.0.0.5 udp/8099", AnalyzerName: "d:p:vrsniff-web"},
		Created: true, Warnings: []string{"no route"}}
	var out, notes bytes.Buffer
	PrintCreated(&out, &notes, "web", res, []string{"d", "other"}, false)
	if out.String() != "created mirror web in project d:p: policy d:p:vn -> 10.0.0.5 udp/8099 (d:p:vrsniff-web)\n" {
		t.Errorf("out: %q", out.String())
	}
	if notes.String() != "note: the mirror is in project d:p, not the credentials' d:other: list and delete it with --project d:p\nwarning: no route\n" {
		t.Errorf("notes: %q", notes.String())
	}
	out.Reset()
	notes.Reset()
	res.Created = false
	PrintCreated(&out, &notes, "web", res, []string{"d", "p"}, false)
	if !strings.HasPrefix(out.String(), "mirror web already exists in project d:p:") || notes.String() != "warning: no route\n" {
		t.Errorf("again: %q, %q", out.String(), notes.String())
	}
	out.Reset()
	notes.Reset()
	PrintCreated(&out, &notes, "web", Result{}, []string{"d", "other"}, true)
	if out.Len() != 0 || notes.String() != "dry run: nothing was changed\n" {
		t.Errorf("dry run: %q, %q", out.String(), notes.String())
	}
}
