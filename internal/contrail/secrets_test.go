package contrail_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/contrail"
)

// A config API URL with userinfo is used as given (Go sends it as basic
// authentication) but never printed: not in dry-run output, not in errors.
func TestEndpointUserinfoRedacted(t *testing.T) {
	const user, pass = "apiuser", "apipass-5ecret"
	var gotUser, gotPass string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, _ = r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"virtual-networks": []}`))
	}))
	defer srv.Close()
	withInfo := strings.Replace(srv.URL, "http://", "http://"+user+":"+pass+"@", 1)
	leaks := func(s string) bool { return strings.Contains(s, user) || strings.Contains(s, pass) }

	var out bytes.Buffer
	c, err := contrail.New(contrail.Config{Endpoint: withInfo, DryRun: &out})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), "network-policy", map[string]any{"fq_name": []string{"d", "p", "x"}}); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if want := "POST http://[REDACTED]@" + host + "/network-policys\n"; !strings.HasPrefix(out.String(), want) || leaks(out.String()) {
		t.Errorf("dry run printed %q, want it to start with %q", out.String(), want)
	}
	if _, err := c.List(context.Background(), "virtual-network", ""); err != nil {
		t.Fatal(err)
	}
	if gotUser != user || gotPass != pass {
		t.Errorf("server saw basic auth %q:%q", gotUser, gotPass)
	}

	srv.Close() // connection errors quote the URL
	c, _ = contrail.New(contrail.Config{Endpoint: withInfo, Retries: -1})
	if err := c.Delete(context.Background(), "network-policy", "x"); err == nil || leaks(err.Error()) {
		t.Errorf("connection error: %v", err)
	}
	k, err := contrail.NewKeystone(contrail.Credentials{AuthURL: withInfo + "/v3", Username: "admin", Password: "pw"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Token(context.Background(), false); err == nil || leaks(err.Error()) {
		t.Errorf("keystone connection error: %v", err)
	}
	if _, err := contrail.New(contrail.Config{Endpoint: "http://" + user + ":" + pass + "@host:port"}); err == nil || leaks(err.Error()) {
		t.Errorf("bad endpoint: %v", err)
	}
}
