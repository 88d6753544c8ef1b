package provision

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/contrail"
	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi"
)

func siSpec(e *env, name string) Spec {
	return Spec{Name: name, Kind: KindServiceInstance, VN: vnWeb, AnalyzerVN: vnSniff, SnifferPort: e.sniff}
}

func TestFailureRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name, method, path string
		si                 bool
		undone             int
	}{
		{"si-port-tuple", "POST", "/port-tuples", true, 2},
		{"si-mark-port", "PUT", "/virtual-machine-interface/", true, 3},
		{"si-link-port", "POST", "/ref-update", true, 4},
		{"si-policy", "POST", "/network-policys", true, 5},
		{"policy-attach", "POST", "/ref-update", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fakeapi.Options{SvcMonitor: true})
			before := e.fake.Snapshot()
			e.fake.FailWhen(func(method, path string) int {
				if method == tc.method && strings.HasPrefix(path, tc.path) {
					return http.StatusServiceUnavailable
				}
				return 0
			})
			s := policySpec("rb")
			if tc.si {
				s = siSpec(e, "rb")
			}
			_, err := e.p.Create(context.Background(), s)
			var re *RollbackError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RollbackError", err)
			}
			if len(re.Left) != 0 || len(re.RolledBack) != tc.undone {
				t.Errorf("rolled back %q, left %q; want %d undone", re.RolledBack, re.Left, tc.undone)
			}
			if !strings.Contains(err.Error(), "503") {
				t.Errorf("error does not say what failed: %v", err)
			}
			e.fake.FailWhen(nil)
			snapshotEqual(t, before, e.fake.Snapshot())
		})
	}
}

func TestOldServerRejectsNewFieldsAndRollsBack(t *testing.T) {
	e := newEnv(t, fakeapi.Options{Version: "3.0"})
	ctx := context.Background()
	before := e.fake.Snapshot()
	// The defaults send only fields a 3.0 server knows.
	if _, err := e.p.Create(ctx, policySpec("old")); err != nil {
		t.Fatalf("3.0 server: %v", err)
	}
	if _, err := e.p.Delete(ctx, scope, "old"); err != nil {
		t.Fatal(err)
	}
	s := policySpec("new")
	s.Analyzer = Analyzer{NHMode: "static", VTEP: "172.16.0.9", VNI: 5000}
	_, err := e.p.Create(ctx, s)
	if !errors.Is(err, contrail.ErrBadRequest) || !strings.Contains(err.Error(), "juniper_header") {
		t.Errorf("juniper_header on 3.0: err = %v", err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
}

func TestTokenExpiryReauthenticates(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	if _, err := e.p.Create(ctx, policySpec("t")); err != nil {
		t.Fatal(err)
	}
	e.fake.ExpireTokens()
	if _, err := e.p.List(ctx, scope); err != nil {
		t.Fatalf("list after expiry: %v", err)
	}
	if _, err := e.p.Delete(ctx, scope, "t"); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d, want 2 (one reused all along, one after the expiry)", n)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	ctx := context.Background()
	if _, err := e.p.Create(ctx, policySpec("s")); err != nil {
		t.Fatal(err)
	}
	e.fake.ExpireTokens()
	if _, err := e.p.Delete(ctx, scope, "s"); err != nil {
		t.Fatal(err)
	}
	tokens := e.fake.Tokens()
	if len(tokens) == 0 || e.logs.Len() == 0 {
		t.Fatal("nothing to check")
	}
	for _, secret := range append(tokens, password) {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("log output contains a secret %q", secret)
		}
	}
	// A wrong password: the error names the failure, never the password.
	bad := keystone(t, e.url, "wrong-"+password)
	_, err := bad.Token(ctx, false)
	if !errors.Is(err, contrail.ErrUnauthorized) || strings.Contains(err.Error(), password) {
		t.Errorf("bad password: err = %v", err)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	e := newEnv(t, fakeapi.Options{})
	before := e.fake.Snapshot()
	var out bytes.Buffer
	api, err := contrail.New(contrail.Config{Endpoint: e.url, DryRun: &out, Retries: -1, Auth: keystone(t, e.url, password)})
	if err != nil {
		t.Fatal(err)
	}
	p := &Provisioner{API: api}
	if _, err := p.Create(context.Background(), siSpec(e, "dry")); err != nil {
		t.Fatal(err)
	}
	snapshotEqual(t, before, e.fake.Snapshot())
	got := out.String()
	for _, w := range []string{"POST " + e.url + "/service-templates", "POST " + e.url + "/service-instances",
		"POST " + e.url + "/port-tuples", "POST " + e.url + "/network-policys",
		"POST " + e.url + "/ref-update", `"analyzer_name": "default-domain:admin:vrsniff-dry"`, `"major": 0`, `"timer": {}`} {
		if !strings.Contains(got, w) {
			t.Errorf("dry-run output lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "simple_action") {
		t.Errorf("dry-run output has a simple_action:\n%s", got)
	}
}

func TestTokenExpiresMidCreate(t *testing.T) {
	e := newEnv(t, fakeapi.Options{SvcMonitor: true})
	e.fake.ExpireTokensAfter(4) // after the lookups, before the writes are done
	if _, err := e.p.Create(context.Background(), siSpec(e, "mid")); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
	}
}

// The wait for the schema transformer is bounded: with it down, a delete
// detaches, waits Wait, and says what it saw.
func TestDeleteWaitsForTheTransformer(t *testing.T) {
	e := newEnv(t, fakeapi.Options{ManualCompile: true})
	ctx := context.Background()
	e.fake.Compile()
	done := make(chan error, 1)
	go func() {
		_, err := e.p.Create(ctx, policySpec("w"))
		done <- err
	}()
	// The create waits for the compile that the test runs meanwhile.
	for e.fake.Lookup("network-policy", "default-domain", "admin", "vrsniff-w") == "" || len(e.refs(t, e.web)) == 0 {
		time.Sleep(time.Millisecond)
	}
	e.fake.Compile()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.p.Wait = 20 * time.Millisecond
	_, err := e.p.Delete(ctx, scope, "w")
	if !errors.Is(err, ErrNotCompiled) || !strings.Contains(err.Error(), "still holds the mirror rule") {
		t.Fatalf("delete with the transformer down: %v", err)
	}
	e.fake.Compile()
	if _, err := e.p.Delete(ctx, scope, "w"); err != nil {
		t.Fatalf("delete again: %v", err)
	}
	if static, dynamic := e.fake.ACLs(e.web); static != nil || dynamic != nil {
		t.Errorf("ACLs left: %v %v", static, dynamic)
	}
}
