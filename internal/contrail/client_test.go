package contrail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/contrail"
	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi"
)

const pw = "pa55-w0rd-XYZ"

func newFake(t *testing.T, opts fakeapi.Options) (*fakeapi.Server, *httptest.Server) {
	t.Helper()
	opts.Keystone, opts.Username, opts.Password, opts.Project = true, "admin", pw, "admin"
	f := fakeapi.New(opts)
	f.Seed("project", map[string]any{"fq_name": []string{"default-domain", "admin"}, "parent_type": "domain"}) // not in a fresh installation
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func newClient(t *testing.T, url, version string, log *slog.Logger) *contrail.Client {
	t.Helper()
	authURL := url + "/v3"
	if version == "2.0" {
		authURL = url + "/v2.0"
	}
	c, err := contrail.New(contrail.Config{Endpoint: url, Retries: 2, Backoff: time.Millisecond, Logger: log,
		Auth: newKeystone(t, contrail.Credentials{AuthURL: authURL, Username: "admin", Password: pw,
			ProjectName: "admin", UserDomainName: "Default", ProjectDomainName: "Default"})})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKeystone(t *testing.T, c contrail.Credentials) *contrail.Keystone {
	t.Helper()
	k, err := contrail.NewKeystone(c, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCRUD(t *testing.T) {
	for _, v := range []string{"3", "2.0"} {
		t.Run("keystone-v"+v, func(t *testing.T) {
			f, srv := newFake(t, fakeapi.Options{})
			c := newClient(t, srv.URL, v, nil)
			ctx := context.Background()
			fq := []string{"default-domain", "admin", "vn1"}
			id, err := c.Create(ctx, "virtual-network", map[string]any{"fq_name": fq, "parent_type": "project", "display_name": "one"})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := c.FQNameToID(ctx, "virtual-network", fq); err != nil || got != id {
				t.Fatalf("FQNameToID = %q, %v; want %q", got, err, id)
			}
			var vn struct {
				contrail.Common
			}
			if _, err := c.ReadByFQName(ctx, "virtual-network", fq, &vn); err != nil || vn.DisplayName != "one" || vn.UUID != id {
				t.Fatalf("read = %+v, %v", vn, err)
			}
			if err := c.Update(ctx, "virtual-network", id, map[string]any{"display_name": "two"}); err != nil {
				t.Fatal(err)
			}
			if err := c.Read(ctx, "virtual-network", id, &vn); err != nil || vn.DisplayName != "two" {
				t.Fatalf("after update: %+v, %v", vn, err)
			}
			l, err := c.List(ctx, "virtual-network", f.Lookup("project", "default-domain", "admin"))
			if err != nil || len(l) != 1 {
				t.Fatalf("List = %d objects, %v", len(l), err)
			}
			if _, err := c.Create(ctx, "virtual-network", map[string]any{"fq_name": fq, "parent_type": "project"}); !errors.Is(err, contrail.ErrExists) {
				t.Errorf("duplicate create: %v, want ErrExists", err)
			}
			if err := c.UpdateByFQName(ctx, "virtual-network", fq, map[string]any{"display_name": "three"}); err != nil {
				t.Fatal(err)
			}
			if err := c.Read(ctx, "virtual-network", id, &vn); err != nil || vn.DisplayName != "three" {
				t.Fatalf("after update by fq_name: %+v, %v", vn, err)
			}
			if err := c.DeleteByFQName(ctx, "virtual-network", fq); err != nil {
				t.Fatal(err)
			}
			if err := c.Read(ctx, "virtual-network", id, &vn); !errors.Is(err, contrail.ErrNotFound) {
				t.Errorf("read deleted: %v, want ErrNotFound", err)
			}
			if _, err := c.FQNameToID(ctx, "virtual-network", fq); !contrail.IsNotFound(err) {
				t.Errorf("FQNameToID deleted: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestRefUpdateKeepsOtherRefs(t *testing.T) {
	f, srv := newFake(t, fakeapi.Options{})
	c := newClient(t, srv.URL, "3", nil)
	ctx := context.Background()
	for _, n := range []string{"p1", "p2", "p3"} {
		if _, err := c.Create(ctx, "network-policy", map[string]any{"fq_name": []string{"default-domain", "admin", n}, "parent_type": "project"}); err != nil {
			t.Fatal(err)
		}
	}
	seq := func(m int) contrail.VirtualNetworkPolicyType {
		return contrail.VirtualNetworkPolicyType{Sequence: &contrail.SequenceType{Major: m}}
	}
	vn, err := c.Create(ctx, "virtual-network", map[string]any{"fq_name": []string{"default-domain", "admin", "vn"}, "parent_type": "project",
		"network_policy_refs": []any{map[string]any{"to": []string{"default-domain", "admin", "p1"}, "attr": seq(0)},
			map[string]any{"to": []string{"default-domain", "admin", "p2"}, "attr": seq(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefAdd, Type: "virtual-network", UUID: vn, RefType: "network-policy",
		RefFQName: []string{"default-domain", "admin", "p3"}, Attr: seq(2)}); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateRef(ctx, contrail.RefUpdate{Operation: contrail.RefDelete, Type: "virtual-network", UUID: vn, RefType: "network-policy",
		RefFQName: []string{"default-domain", "admin", "p1"}}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Refs []contrail.Ref `json:"network_policy_refs"`
	}
	if err := c.Read(ctx, "virtual-network", vn, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Refs) != 2 || got.Refs[0].To[2] != "p2" || got.Refs[1].To[2] != "p3" || !sameJSON(got.Refs[1].Attr, `{"sequence":{"major":2,"minor":0}}`) {
		t.Errorf("refs = %+v", got.Refs)
	}
	// The referenced policy cannot go while attached.
	if err := c.Delete(ctx, "network-policy", f.Lookup("network-policy", "default-domain", "admin", "p2")); !errors.Is(err, contrail.ErrExists) {
		t.Errorf("delete referenced policy: %v, want 409", err)
	}
}

func TestRetries(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1, 2:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte(`{"uuid": "u-1"}`))
		}
	}))
	defer srv.Close()
	c, _ := contrail.New(contrail.Config{Endpoint: srv.URL, Retries: 3, Backoff: time.Millisecond})
	if id, err := c.FQNameToID(context.Background(), "project", []string{"d", "p"}); err != nil || id != "u-1" {
		t.Fatalf("= %q, %v", id, err)
	}
	if n.Load() != 3 {
		t.Errorf("%d requests, want 3", n.Load())
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "Bad property udp_port: want an integer", http.StatusBadRequest)
	}))
	defer srv.Close()
	c, _ := contrail.New(contrail.Config{Endpoint: srv.URL, Retries: 3, Backoff: time.Millisecond})
	err := c.Delete(context.Background(), "network-policy", "x")
	var ae *contrail.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Message != "Bad property udp_port: want an integer" {
		t.Fatalf("err = %#v", err)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}
}

func TestConnectionErrorsRetryThenFail(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	c, _ := contrail.New(contrail.Config{Endpoint: url, Retries: 2, Backoff: time.Millisecond})
	if err := c.Delete(context.Background(), "network-policy", "x"); err == nil || !strings.Contains(err.Error(), "DELETE /network-policy/x") {
		t.Errorf("err = %v", err)
	}
}

func TestReauthOnExpiry(t *testing.T) {
	f, srv := newFake(t, fakeapi.Options{})
	c := newClient(t, srv.URL, "3", nil)
	ctx := context.Background()
	if _, err := c.FQNameToID(ctx, "project", []string{"default-domain", "admin"}); err != nil {
		t.Fatal(err)
	}
	f.ExpireTokens()
	if _, err := c.FQNameToID(ctx, "project", []string{"default-domain", "admin"}); err != nil {
		t.Fatal(err)
	}
	if f.TokensIssued() != 2 {
		t.Errorf("tokens issued = %d, want 2", f.TokensIssued())
	}
}

func TestBadCredentials(t *testing.T) {
	_, srv := newFake(t, fakeapi.Options{})
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	creds := contrail.Credentials{AuthURL: srv.URL, Username: "admin", Password: "not-" + pw, ProjectName: "admin"}
	c, _ := contrail.New(contrail.Config{Endpoint: srv.URL, Logger: log, Auth: newKeystone(t, creds)})
	_, err := c.FQNameToID(context.Background(), "project", []string{"default-domain", "admin"})
	if !errors.Is(err, contrail.ErrUnauthorized) || !strings.Contains(err.Error(), "check the credentials") {
		t.Fatalf("err = %v", err)
	}
	log.Info("credentials", "creds", creds, "password", creds.Password)
	for _, s := range []string{err.Error(), logs.String()} {
		if strings.Contains(s, pw) {
			t.Errorf("password leaked: %s", s)
		}
	}
	if !strings.Contains(logs.String(), "[REDACTED]") {
		t.Errorf("log does not show the placeholder: %s", logs.String())
	}
}

func TestNoAuthServerAndAPIToken(t *testing.T) {
	f := fakeapi.New(fakeapi.Options{})
	f.Seed("project", map[string]any{"fq_name": []string{"default-domain", "admin"}, "parent_type": "domain"}) // not in a fresh installation
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, _ := contrail.New(contrail.Config{Endpoint: srv.URL})
	if _, err := c.FQNameToID(context.Background(), "project", []string{"default-domain", "admin"}); err != nil {
		t.Fatal(err)
	}
	// A Keystone server refuses a client without a token.
	_, ks := newFake(t, fakeapi.Options{})
	c, _ = contrail.New(contrail.Config{Endpoint: ks.URL})
	if _, err := c.FQNameToID(context.Background(), "project", []string{"default-domain", "admin"}); !errors.Is(err, contrail.ErrUnauthorized) {
		t.Errorf("no token: %v", err)
	}
}

func TestTLS(t *testing.T) {
	f := fakeapi.New(fakeapi.Options{})
	f.Seed("project", map[string]any{"fq_name": []string{"default-domain", "admin"}, "parent_type": "domain"}) // not in a fresh installation
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	ctx := context.Background()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ca       string
		insecure bool
		ok       bool
	}{{"", false, false}, {ca, false, true}, {"", true, true}} {
		hc, err := contrail.HTTPClient(tc.ca, tc.insecure, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := contrail.New(contrail.Config{Endpoint: srv.URL, HTTP: hc, Retries: -1})
		_, err = c.FQNameToID(ctx, "project", []string{"default-domain", "admin"})
		if (err == nil) != tc.ok {
			t.Errorf("ca=%q insecure=%v: err = %v", tc.ca, tc.insecure, err)
		}
	}
	if _, err := contrail.HTTPClient(filepath.Join(t.TempDir(), "missing.pem"), false, time.Second); err == nil {
		t.Error("missing CA file accepted")
	}
}

func TestNewRejectsBadEndpoint(t *testing.T) {
	for _, e := range []string{"", "10.0.0.1:8082", "ftp://x", "http://"} {
		if _, err := contrail.New(contrail.Config{Endpoint: e}); err == nil {
			t.Errorf("endpoint %q accepted", e)
		}
	}
}

// sameJSON compares JSON by value: the real server writes Python's spacing.
func sameJSON(a json.RawMessage, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}
