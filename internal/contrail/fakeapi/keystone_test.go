package fakeapi

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// ks sends one request to the fake Keystone and returns the status, the
// X-Subject-Token and the body.
func ks(t *testing.T, s *Server, method, body string, header ...string) (int, string, string) {
	t.Helper()
	req := httptest.NewRequest(method, "/v3/auth/tokens", strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w.Code, w.Header().Get("X-Subject-Token"), w.Body.String()
}

func auth(identity, scope string) string {
	if scope != "" {
		scope = `, "scope": ` + scope
	}
	return `{"auth": {"identity": ` + identity + scope + `}}`
}

func TestKeystoneMethods(t *testing.T) {
	s := New(Options{Keystone: true})
	s.SetIdentity(Identity{UserID: "u1", Username: "alice", Password: "pw", UserDomainID: "d1", UserDomainName: "eng",
		ProjectID: "p1", ProjectName: "web", ProjectDomainID: "d1", ProjectDomainName: "eng",
		AppCredentials: []AppCredential{{ID: "ac1", Name: "mirror", Secret: "s3"}}})
	pwByName := `{"methods": ["password"], "password": {"user": {"name": "alice", "domain": {"name": "eng"}, "password": "PW"}}}`
	webByName := `{"project": {"name": "web", "domain": {"id": "d1"}}}`
	for _, tc := range []struct {
		name, body string
		code       int
		project    string
	}{
		{"password, names", auth(strings.Replace(pwByName, "PW", "pw", 1), webByName), 201, "web"},
		{"password, IDs", auth(`{"methods": ["password"], "password": {"user": {"id": "u1", "password": "pw"}}}`, `{"project": {"id": "p1"}}`), 201, "web"},
		{"password, unscoped", auth(strings.Replace(pwByName, "PW", "pw", 1), ""), 201, ""},
		{"wrong password", auth(pwByName, webByName), 401, ""},
		{"wrong user domain", auth(strings.Replace(strings.Replace(pwByName, "PW", "pw", 1), "eng", "Default", 1), ""), 401, ""},
		{"wrong project domain", auth(strings.Replace(pwByName, "PW", "pw", 1), `{"project": {"name": "web", "domain": {"name": "Default"}}}`), 401, ""},
		{"application credential ID", auth(`{"methods": ["application_credential"], "application_credential": {"id": "ac1", "secret": "s3"}}`, ""), 201, "web"},
		{"application credential name", auth(`{"methods": ["application_credential"], "application_credential": {"name": "mirror", "secret": "s3", "user": {"id": "u1"}}}`, ""), 201, "web"},
		{"application credential, wrong secret", auth(`{"methods": ["application_credential"], "application_credential": {"id": "ac1", "secret": "s4"}}`, ""), 401, ""},
		{"application credential with a scope", auth(`{"methods": ["application_credential"], "application_credential": {"id": "ac1", "secret": "s3"}}`, webByName), 401, ""},
		{"unknown token", auth(`{"methods": ["token"], "token": {"id": "tok-x"}}`, webByName), 401, ""},
		{"no identity", `{"auth": {}}`, 400, ""},
	} {
		code, tok, body := ks(t, s, "POST", tc.body)
		var v struct {
			Token struct {
				Project *struct{ Name string } `json:"project"`
			} `json:"token"`
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Errorf("%s: answer is not JSON: %q", tc.name, body)
		}
		var project string
		if v.Token.Project != nil {
			project = v.Token.Project.Name
		}
		if code != tc.code || project != tc.project || (code == 201) != (tok != "") || code != 201 && v.Error.Code != code {
			t.Errorf("%s: %d, token %q, project %q: %s; want %d, project %q", tc.name, code, tok, project, body, tc.code, tc.project)
		}
	}

	// A token gets a scoped one, and is checked by GET.
	_, unscoped, _ := ks(t, s, "POST", auth(strings.Replace(pwByName, "PW", "pw", 1), ""))
	code, scoped, _ := ks(t, s, "POST", auth(`{"methods": ["token"], "token": {"id": "`+unscoped+`"}}`, webByName))
	if code != 201 || s.TokenMethod(scoped) != "token" || s.TokenMethod(unscoped) != "password" {
		t.Errorf("rescope: %d, methods %q %q", code, s.TokenMethod(scoped), s.TokenMethod(unscoped))
	}
	if code, tok, body := ks(t, s, "GET", "", "X-Auth-Token", scoped, "X-Subject-Token", scoped); code != 200 || tok != scoped || !strings.Contains(body, `"web"`) {
		t.Errorf("validate: %d %q %s", code, tok, body)
	}
	if code, _, body := ks(t, s, "GET", "", "X-Auth-Token", scoped, "X-Subject-Token", "tok-gone"); code != 404 || !strings.Contains(body, "Could not find token: tok-gone") {
		t.Errorf("validate unknown: %d %s", code, body)
	}
	s.ExpireTokens()
	if code, _, _ := ks(t, s, "GET", "", "X-Auth-Token", scoped, "X-Subject-Token", scoped); code != 401 {
		t.Errorf("validate expired: %d", code)
	}
	if got := s.Identity().Username; got != "alice" {
		t.Errorf("Identity = %q", got)
	}
}

// Without SetIdentity, Options give the user and project, in the default
// domain.
func TestKeystoneDefaultIdentity(t *testing.T) {
	s := New(Options{Keystone: true, Username: "admin", Password: "pw", Project: "admin"})
	id := s.Identity()
	if id.UserID != "user-admin" || id.ProjectID != "project-admin" || id.ProjectDomainID != "default" || id.UserDomainName != "Default" {
		t.Errorf("identity = %+v", id)
	}
	body := auth(`{"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "pw"}}}`,
		`{"project": {"name": "admin", "domain": {"name": "Default"}}}`)
	if code, _, _ := ks(t, s, "POST", body); code != 201 {
		t.Errorf("default domain: %d", code)
	}
}
