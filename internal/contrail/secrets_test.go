package contrail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// Passwords, application credential secrets and tokens appear in no error
// and no log line, whatever the method, even when Keystone quotes the
// request back (as a broken proxy or a debug build may) and names the
// token it could not find (as Keystone does).
func TestSecretsNeverShown(t *testing.T) {
	isolate(t)
	_, good := eng(t)
	tok := aliceToken(t, good)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		msg := string(b) + " X-Auth-Token: " + r.Header.Get("X-Auth-Token") + " Could not find token: " + r.Header.Get("X-Subject-Token")
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 401, "message": msg}})
	}))
	defer echo.Close()
	secrets := []string{alicePW, acSecret, string(tok)}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, c := range []contrail.Credentials{
		{UserID: "u-alice", Password: alicePW, ProjectID: "p-web"},
		{Username: "alice", UserDomainName: "eng", Password: alicePW},
		{ApplicationCredentialID: "ac-1", ApplicationCredentialSecret: acSecret},
		{ApplicationCredentialName: "mirror", UserID: "u-alice", ApplicationCredentialSecret: acSecret},
		{Token: tok},
		{Token: tok, ProjectName: "web", ProjectDomainID: "d-eng"},
	} {
		for _, srv := range []*httptest.Server{good, echo} {
			c.AuthURL = srv.URL + "/v3"
			k, err := contrail.NewKeystone(c, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			api, _ := contrail.New(contrail.Config{Endpoint: good.URL, Auth: k, Logger: log, Retries: -1})
			_, err = api.List(context.Background(), "virtual-network", "")
			if srv == good && err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			if srv == echo && !errors.Is(err, contrail.ErrUnauthorized) {
				t.Errorf("%+v against the echo: %v, want 401", c, err)
			}
			var out string
			if err != nil {
				out = err.Error()
			}
			b, _ := json.Marshal(c)
			out += fmt.Sprintf(" %v %+v %#v %s", c, c, c, b)
			log.Info("credentials", "creds", c)
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%+v: secret %q shown: %s", c, s, out)
				}
			}
		}
	}
	if !strings.Contains(logs.String(), "[REDACTED]") {
		t.Errorf("the log does not show the placeholder: %s", logs.String())
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("secret %q logged:\n%s", s, logs.String())
		}
	}
}
