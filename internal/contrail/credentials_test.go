package contrail

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestCredentialsFromEnv(t *testing.T) {
	c := CredentialsFromEnv(envOf(map[string]string{
		"OS_CLOUD": "lab", "OS_AUTH_TYPE": "v3password", "OS_AUTH_URL": "https://ks/v3", "OS_USERNAME": "u", "OS_USER_ID": "uid",
		"OS_PASSWORD": "p", "OS_USER_DOMAIN_NAME": "UD", "OS_USER_DOMAIN_ID": "udid", "OS_PROJECT_NAME": "proj",
		"OS_PROJECT_ID": "pid", "OS_PROJECT_DOMAIN_NAME": "PD", "OS_PROJECT_DOMAIN_ID": "pdid",
		"OS_APPLICATION_CREDENTIAL_ID": "acid", "OS_APPLICATION_CREDENTIAL_NAME": "acn", "OS_APPLICATION_CREDENTIAL_SECRET": "acs",
		"OS_TOKEN": "tok", "OS_IDENTITY_API_VERSION": "3", "OS_CACERT": "ca.pem", "OS_CERT": "c.pem", "OS_KEY": "k.pem",
		"OS_INSECURE": "true",
	}))
	yes := true
	want := Credentials{Cloud: "lab", AuthType: "v3password", AuthURL: "https://ks/v3", Username: "u", UserID: "uid", Password: "p",
		UserDomainName: "UD", UserDomainID: "udid", ProjectName: "proj", ProjectID: "pid", ProjectDomainName: "PD",
		ProjectDomainID: "pdid", ApplicationCredentialID: "acid", ApplicationCredentialName: "acn",
		ApplicationCredentialSecret: "acs", Token: "tok", IdentityAPIVersion: "3", CACert: "ca.pem", Cert: "c.pem",
		Key: "k.pem", Insecure: &yes}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("= %+v\nwant %+v", c, want)
	}
	// The older names, and OS_DOMAIN_* for both domains.
	c = CredentialsFromEnv(envOf(map[string]string{"OS_TENANT_NAME": "t", "OS_TENANT_ID": "tid",
		"OS_DOMAIN_NAME": "D", "OS_DOMAIN_ID": "did", "OS_INSECURE": "0"}))
	want = Credentials{ProjectName: "t", ProjectID: "tid", UserDomainName: "D", UserDomainID: "did",
		ProjectDomainName: "D", ProjectDomainID: "did"}
	if c.Insecure == nil || *c.Insecure {
		t.Errorf("OS_INSECURE=0: %v", c.Insecure)
	}
	c.Insecure = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("= %+v\nwant %+v", c, want)
	}
	if c := CredentialsFromEnv(envOf(nil)); c.Configured() || !reflect.DeepEqual(c, Credentials{}) {
		t.Errorf("empty environment: %+v", c)
	}
}

func TestOverride(t *testing.T) {
	base := Credentials{Cloud: "lab", AuthType: "v3applicationcredential", AuthURL: "http://a/v3", Username: "u",
		UserDomainID: "ud", ProjectID: "pid", ProjectDomainName: "PD", ApplicationCredentialName: "ac",
		ApplicationCredentialSecret: "s", CACert: "ca"}
	for _, tc := range []struct {
		name      string
		over, out Credentials
	}{
		{"nothing", Credentials{}, base},
		{"user ID replaces the name", Credentials{UserID: "uid"}, with(base, func(c *Credentials) { c.Username, c.UserID = "", "uid" })},
		{"project name replaces the ID", Credentials{ProjectName: "p"}, with(base, func(c *Credentials) { c.ProjectID, c.ProjectName = "", "p" })},
		{"domain ID replaces the name", Credentials{ProjectDomainID: "pd"}, with(base, func(c *Credentials) { c.ProjectDomainName, c.ProjectDomainID = "", "pd" })},
		{"user domain name replaces the ID", Credentials{UserDomainName: "UD"}, with(base, func(c *Credentials) { c.UserDomainID, c.UserDomainName = "", "UD" })},
		{"a password drops the auth type", Credentials{Password: "pw"}, with(base, func(c *Credentials) { c.AuthType, c.Password = "", "pw" })},
		{"a token drops the auth type", Credentials{Token: "t"}, with(base, func(c *Credentials) { c.AuthType, c.Token = "", "t" })},
		{"an auth type wins", Credentials{Token: "t", AuthType: "password"}, with(base, func(c *Credentials) { c.AuthType, c.Token = "password", "t" })},
		{"credential ID replaces the name", Credentials{ApplicationCredentialID: "acid"},
			with(base, func(c *Credentials) {
				c.AuthType, c.ApplicationCredentialName, c.ApplicationCredentialID = "", "", "acid"
			})},
		{"plain fields", Credentials{Cloud: "other", AuthURL: "http://b", CACert: "ca2", Cert: "c", Key: "k", IdentityAPIVersion: "2.0"},
			with(base, func(c *Credentials) {
				c.Cloud, c.AuthURL, c.CACert, c.Cert, c.Key, c.IdentityAPIVersion = "other", "http://b", "ca2", "c", "k", "2.0"
			})},
	} {
		if got := base.Override(tc.over); !reflect.DeepEqual(got, tc.out) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.out)
		}
	}
	no := false
	if got := base.Override(Credentials{Insecure: &no}); got.Insecure != &no {
		t.Errorf("insecure not overridden: %v", got.Insecure)
	}
}

func with(c Credentials, f func(*Credentials)) Credentials {
	f(&c)
	return c
}

// resolve picks the method from the fields given and builds exactly the
// options gophercloud accepts for it.
func TestResolve(t *testing.T) {
	const url = "http://ks:5000/v3"
	for _, tc := range []struct {
		name string
		c    Credentials
		want gophercloud.AuthOptions
		v2   bool
		err  string
	}{
		{"password, names, default domains", Credentials{AuthURL: url, Username: "u", Password: "p", ProjectName: "proj"},
			gophercloud.AuthOptions{Username: "u", Password: "p", DomainID: "default", AllowReauth: true,
				Scope: &gophercloud.AuthScope{ProjectName: "proj", DomainID: "default"}}, false, ""},
		{"password, domain names", Credentials{AuthURL: url, Username: "u", Password: "p", UserDomainName: "UD",
			ProjectName: "proj", ProjectDomainName: "PD"},
			gophercloud.AuthOptions{Username: "u", Password: "p", DomainName: "UD", AllowReauth: true,
				Scope: &gophercloud.AuthScope{ProjectName: "proj", DomainName: "PD"}}, false, ""},
		{"password, an ID wins over a name", Credentials{AuthURL: url, Username: "u", Password: "p", UserDomainName: "UD",
			UserDomainID: "ud", ProjectName: "proj", ProjectDomainName: "PD", ProjectDomainID: "pd"},
			gophercloud.AuthOptions{Username: "u", Password: "p", DomainID: "ud", AllowReauth: true,
				Scope: &gophercloud.AuthScope{ProjectName: "proj", DomainID: "pd"}}, false, ""},
		{"password, IDs", Credentials{AuthURL: url, UserID: "uid", Username: "ignored", Password: "p", ProjectID: "pid", ProjectName: "ignored"},
			gophercloud.AuthOptions{UserID: "uid", Password: "p", AllowReauth: true, Scope: &gophercloud.AuthScope{ProjectID: "pid"}}, false, ""},
		{"password, unscoped", Credentials{AuthURL: url, UserID: "uid", Password: "p"},
			gophercloud.AuthOptions{UserID: "uid", Password: "p", AllowReauth: true}, false, ""},
		{"application credential by ID, no scope", Credentials{AuthURL: url, ApplicationCredentialID: "acid",
			ApplicationCredentialSecret: "s", ProjectName: "proj", Username: "u", Password: "p"},
			gophercloud.AuthOptions{ApplicationCredentialID: "acid", ApplicationCredentialSecret: "s", AllowReauth: true}, false, ""},
		{"application credential by name", Credentials{AuthType: "v3applicationcredential", AuthURL: url,
			ApplicationCredentialName: "ac", ApplicationCredentialSecret: "s", Username: "u", UserDomainName: "UD"},
			gophercloud.AuthOptions{ApplicationCredentialName: "ac", ApplicationCredentialSecret: "s", Username: "u",
				DomainName: "UD", AllowReauth: true}, false, ""},
		{"token as it is", Credentials{AuthURL: url, Token: "t", Username: "u", Password: "p"},
			gophercloud.AuthOptions{TokenID: "t"}, false, ""},
		{"token rescoped", Credentials{AuthType: "v3token", AuthURL: url, Token: "t", ProjectID: "pid"},
			gophercloud.AuthOptions{TokenID: "t", AllowReauth: true, Scope: &gophercloud.AuthScope{ProjectID: "pid"}}, false, ""},
		{"v2.0 from the URL", Credentials{AuthURL: "http://ks:5000/v2.0/", Username: "u", Password: "p", ProjectName: "proj"},
			gophercloud.AuthOptions{Username: "u", Password: "p", TenantName: "proj", AllowReauth: true}, true, ""},
		{"v2.0 from the version", Credentials{AuthURL: "http://ks:5000", IdentityAPIVersion: "2", Username: "u", Password: "p"},
			gophercloud.AuthOptions{Username: "u", Password: "p", AllowReauth: true}, true, ""},
		{"v2token", Credentials{AuthType: "v2token", AuthURL: "http://ks:5000", Token: "t", ProjectID: "pid"},
			gophercloud.AuthOptions{TokenID: "t", TenantID: "pid", AllowReauth: true}, true, ""},
		{"version 3 wins over the URL", Credentials{AuthURL: "http://ks:5000/v2.0", IdentityAPIVersion: "v3", UserID: "u", Password: "p"},
			gophercloud.AuthOptions{UserID: "u", Password: "p", AllowReauth: true}, false, ""},
		{"no URL", Credentials{Username: "u", Password: "p"}, gophercloud.AuthOptions{}, false, "no Keystone auth URL"},
		{"no password", Credentials{AuthURL: url, Username: "u"}, gophercloud.AuthOptions{}, false, "no password"},
		{"no user", Credentials{AuthURL: url, Password: "p"}, gophercloud.AuthOptions{}, false, "no user"},
		{"no secret", Credentials{AuthURL: url, ApplicationCredentialID: "a"}, gophercloud.AuthOptions{}, false, "no application credential secret"},
		{"no user for a credential name", Credentials{AuthURL: url, ApplicationCredentialName: "a", ApplicationCredentialSecret: "s"},
			gophercloud.AuthOptions{}, false, "application credential by name: no user"},
		{"no token", Credentials{AuthType: "token", AuthURL: url}, gophercloud.AuthOptions{}, false, "no token"},
		{"bad type", Credentials{AuthType: "totp", AuthURL: url}, gophercloud.AuthOptions{}, false, `auth type "totp" is not supported`},
		{"bad version", Credentials{AuthURL: url, IdentityAPIVersion: "4", UserID: "u", Password: "p"}, gophercloud.AuthOptions{}, false, `identity API version "4"`},
		{"v2 type, v3 version", Credentials{AuthType: "v2password", AuthURL: url, IdentityAPIVersion: "3"}, gophercloud.AuthOptions{}, false, "needs Keystone v2.0"},
		{"v2 credential", Credentials{AuthURL: "http://ks/v2.0", ApplicationCredentialID: "a", ApplicationCredentialSecret: "s"},
			gophercloud.AuthOptions{}, false, "application credentials need Keystone v3"},
	} {
		r, err := tc.c.resolve(envOf(nil))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		tc.want.IdentityEndpoint = tc.c.AuthURL
		if !reflect.DeepEqual(r.opts, tc.want) || r.v2 != tc.v2 {
			t.Errorf("%s:\n got %+v %+v v2=%v\nwant %+v %+v v2=%v", tc.name, r.opts, r.opts.Scope, r.v2, tc.want, tc.want.Scope, tc.v2)
		}
	}
}

const cloudsYAML = `
clouds:
  lab:
    auth:
      auth_url: http://keystone:5000/v3
      username: admin
      project_name: admin
      domain_name: Lab
    region_name: RegionOne
    identity_api_version: 3
    verify: false
  old:
    auth_type: v2password
    auth:
      auth_url: http://keystone:5000/v2.0
      username: demo
      password: secret-2
      project_id: p-2
  app:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://keystone:5000
      application_credential_id: ac-1
  trust:
    auth:
      auth_url: http://keystone:5000
      trust_id: t
  noauth:
    region_name: x
`

const secureYAML = `
clouds:
  lab:
    auth:
      password: secret-1
  app:
    auth:
      application_credential_secret: ac-secret
`

func TestParseCloud(t *testing.T) {
	f := cloudFiles{clouds: []byte(cloudsYAML), secure: []byte(secureYAML), cloudsPath: "/x/clouds.yaml", securePath: "/x/secure.yaml"}
	c, tc, err := parseCloud(f, "lab", Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{Cloud: "lab", AuthURL: "http://keystone:5000/v3", Username: "admin", Password: "secret-1",
		UserDomainName: "Lab", ProjectName: "admin", ProjectDomainName: "Lab", IdentityAPIVersion: "3"}
	if !reflect.DeepEqual(c, want) || !tc.InsecureSkipVerify {
		t.Errorf("lab = %+v (insecure %v)\nwant %+v", c, tc.InsecureSkipVerify, want)
	}
	no := false
	if _, tc, _ := parseCloud(f, "lab", Credentials{Insecure: &no}); tc.InsecureSkipVerify {
		t.Error("--insecure=false does not override verify: false")
	}
	c, _, err = parseCloud(f, "old", Credentials{})
	if err != nil || c.AuthType != "v2password" || c.ProjectID != "p-2" || c.Password != "secret-2" {
		t.Errorf("old = %+v, %v", c, err)
	}
	c, _, err = parseCloud(f, "app", Credentials{})
	if err != nil || c.AuthType != "v3applicationcredential" || c.ApplicationCredentialID != "ac-1" || c.ApplicationCredentialSecret != "ac-secret" {
		t.Errorf("app = %+v, %v", c, err)
	}
	for name, msg := range map[string]string{
		"nope":   `cloud "nope" not in /x/clouds.yaml (has: app, lab, noauth, old, trust)`,
		"trust":  "trust and system scopes are not supported",
		"noauth": `cloud "noauth" in /x/clouds.yaml: no auth section`,
	} {
		if _, _, err := parseCloud(f, name, Credentials{}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", name, err, msg)
		}
	}
	if _, _, err := parseCloud(cloudFiles{clouds: []byte("clouds: [1, 2]"), cloudsPath: "c.yaml"}, "x", Credentials{}); err == nil ||
		!strings.Contains(err.Error(), "parse c.yaml") {
		t.Errorf("bad document: %v", err)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, "ac-secret") {
		t.Errorf("formatting leaks the secret: %s", s)
	}
	if b, _ := json.Marshal(c); strings.Contains(string(b), "ac-secret") {
		t.Errorf("JSON leaks the secret: %s", b)
	}
}

// The client key is a secret file too: one that other users can read is
// refused before gophercloud reads it.
func TestParseCloudRefusesOpenKey(t *testing.T) {
	key := filepath.Join(t.TempDir(), "client.key")
	if err := os.WriteFile(key, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := cloudFiles{clouds: []byte("clouds:\n  k:\n    key: " + key + "\n    cert: " + key + "\n    auth: {auth_url: http://ks}\n"), cloudsPath: "c"}
	for _, over := range []Credentials{{}, {Key: key}} {
		if _, _, err := parseCloud(f, "k", over); err == nil || !strings.Contains(err.Error(), "chmod 600 "+key) {
			t.Errorf("key %+v: %v", over, err)
		}
	}
}

func FuzzParseCloud(f *testing.F) {
	f.Add([]byte(cloudsYAML), []byte(secureYAML), "lab")
	f.Add([]byte(cloudsYAML), []byte(nil), "noauth")
	f.Add([]byte("clouds:\n  x:\n    identity_api_version: [1]\n    auth: {}\n"), []byte("clouds: {x: {auth: null}}"), "x")
	f.Add([]byte("clouds: {x: {auth: {auth_url: 5}, profile: p}}"), []byte("clouds: {x: 5}"), "x")
	f.Fuzz(func(t *testing.T, clouds, secure []byte, name string) {
		if name == "" {
			return
		}
		c, _, err := parseCloud(cloudFiles{clouds: clouds, secure: secure, cloudsPath: "c", securePath: "s"}, name, Credentials{})
		if err == nil && c.Cloud != name {
			t.Fatalf("parsed cloud %q as %q", name, c.Cloud)
		}
	})
}

func TestRedactText(t *testing.T) {
	for in, want := range map[string]string{
		`Post "http://u:p@ks:5000/v3/auth/tokens": refused`: `Post "http://[REDACTED]@ks:5000/v3/auth/tokens": refused`,
		"a https://tok@h/x and http://h/y then ftp://a:b@c": "a https://[REDACTED]@h/x and http://h/y then ftp://[REDACTED]@c",
		"Could not find token: tok-1234.":                   "Could not find token: [REDACTED].",
		"no url here":                                       "no url here",
		"://@":                                              "://[REDACTED]@",
	} {
		if got := redactText(in, "tok-1234"); got != want {
			t.Errorf("redactText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProjectFQName(t *testing.T) {
	for _, tc := range []struct {
		id, name string
		want     string
	}{
		{"default", "Default", "default-domain"},
		{"default", "renamed", "default-domain"},
		{"d-1", "Default", "default-domain"},
		{"d-1", "eng", "eng"},
		{"", "", "default-domain"},
	} {
		if got := ProjectFQName(tc.id, tc.name, "web"); !reflect.DeepEqual(got, []string{tc.want, "web"}) {
			t.Errorf("%s/%s: %v, want [%s web]", tc.id, tc.name, got, tc.want)
		}
	}
}

// The config API puts the refused value in the middle of a 400 and the
// reason, naming the field, at the end: both ends survive shortening.
func TestParseErrorBodyKeepsReason(t *testing.T) {
	body := "Bad property in create: Error validating property network_policy_entries value " +
		strings.Repeat("{'a': 1}, ", 100) + "juniper_header: bool value expected"
	got := ParseErrorBody([]byte(body))
	if !strings.HasPrefix(got, "Bad property in create: Error validating property network_policy_entries") ||
		!strings.HasSuffix(got, "juniper_header: bool value expected") || !strings.Contains(got, " ... ") || len(got) > maxMessage+5 {
		t.Errorf("ParseErrorBody = %q", got)
	}
}

func TestParseErrorBody(t *testing.T) {
	for in, want := range map[string]string{
		"Bad property udp_port\n": "Bad property udp_port",
		`{"error": {"message": "The request you have made requires authentication.", "code": 401}}`: "The request you have made requires authentication.",
		`{"message": "quota"}`:    "quota",
		"line1\r\n\tline2\x00":    "line1 line2",
		strings.Repeat("x", 1000): strings.Repeat("x", maxMessage/3) + " ... " + strings.Repeat("x", maxMessage-maxMessage/3),
		"":                        "",
	} {
		if got := ParseErrorBody([]byte(in)); got != want {
			t.Errorf("ParseErrorBody(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseErrorBody(f *testing.F) {
	f.Add([]byte("Bad property"))
	f.Add([]byte(`{"error": {"message": "x", "title": "y"}}`))
	f.Add([]byte(`{"message": 5}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := ParseErrorBody(b)
		if len(s) > maxMessage+8 {
			t.Fatalf("message too long: %d", len(s))
		}
		if strings.ContainsAny(s, "\n\r\t\x00") {
			t.Fatalf("message not one line: %q", s)
		}
	})
}
