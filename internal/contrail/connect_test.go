package contrail_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/contrail"
)

// The endpoint comes from Connection, else $CONTRAIL_API; without
// credentials no token is sent and there is no credentials' project.
func TestConnectEndpointAndNoAuth(t *testing.T) {
	var token string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token = r.Header.Get("X-Auth-Token")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"virtual-networks": []}`))
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"CONTRAIL_API": srv.URL, "OS_AUTH_URL": "http://127.0.0.1:1/v3", "OS_USERNAME": "u"}
	for _, c := range []contrail.Connection{
		{NoAuth: true, Timeout: 5 * time.Second, Getenv: func(k string) string { return env[k] }},
		{Endpoint: srv.URL, NoAuth: true, Timeout: 5 * time.Second, Getenv: func(string) string { return "" }},
		{Endpoint: srv.URL, Timeout: 5 * time.Second, Getenv: func(string) string { return "" }},
	} {
		s, err := contrail.Connect(c)
		if err != nil {
			t.Fatal(err)
		}
		if s.Keystone != nil {
			t.Errorf("%+v: a Keystone without credentials", c)
		}
		if _, err := s.API.List(context.Background(), "virtual-network", ""); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if token != "" {
			t.Errorf("%+v: token %q sent", c, token)
		}
		if p, err := s.Project(context.Background()); p != nil || err != nil {
			t.Errorf("%+v: project %v, %v", c, p, err)
		}
	}
}

// What the Connection gives wins over the OS_* variables; Insecure sets
// the credentials' flag.
func TestResolvedCredentials(t *testing.T) {
	env := map[string]string{"OS_AUTH_URL": "https://env:5000/v3", "OS_USERNAME": "env-user", "OS_PROJECT_NAME": "env-project"}
	c := contrail.Connection{Credentials: contrail.Credentials{Username: "flag-user"}, Insecure: true,
		Getenv: func(k string) string { return env[k] }}
	r := c.ResolvedCredentials()
	if r.AuthURL != "https://env:5000/v3" || r.Username != "flag-user" || r.ProjectName != "env-project" || r.Insecure == nil || !*r.Insecure {
		t.Errorf("resolved %+v", r)
	}
	c.Insecure = false
	if r := c.ResolvedCredentials(); r.Insecure != nil {
		t.Errorf("Insecure unset gives %v", *r.Insecure)
	}
}
