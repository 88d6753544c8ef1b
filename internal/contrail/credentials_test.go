package contrail

import (
	"fmt"
	"strings"
	"testing"
)

const cloudsYAML = `
clouds:
  lab:
    auth:
      auth_url: http://keystone:5000/v3
      username: admin
      password: secret-1
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    verify: false
  old:
    auth_type: v2password
    auth:
      auth_url: http://keystone:5000/v2.0
      username: demo
      password: secret-2
      tenant_name: demo
    cacert: /etc/ssl/ca.pem
`

func TestParseClouds(t *testing.T) {
	c, err := ParseClouds([]byte(cloudsYAML), "lab")
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{AuthURL: "http://keystone:5000/v3", Username: "admin", Password: "secret-1", ProjectName: "admin",
		UserDomainName: "Default", ProjectDomainName: "Default", IdentityAPIVersion: "3", Insecure: true}
	if c != want {
		t.Errorf("lab = %+v\nwant %+v", c, want)
	}
	c, err = ParseClouds([]byte(cloudsYAML), "old")
	if err != nil {
		t.Fatal(err)
	}
	if c.Version() != "2.0" || c.ProjectName != "demo" || c.CACert != "/etc/ssl/ca.pem" || c.Insecure {
		t.Errorf("old = %+v", c)
	}
	if _, err := ParseClouds([]byte(cloudsYAML), "nope"); err == nil || !strings.Contains(err.Error(), "lab") {
		t.Errorf("missing cloud: %v", err)
	}
	if _, err := ParseClouds([]byte("clouds: [1, 2]"), "x"); err == nil {
		t.Error("bad document accepted")
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, "secret-2") {
		t.Errorf("formatting leaks the password: %s", s)
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	env := map[string]string{"OS_AUTH_URL": "https://ks/v3", "OS_USERNAME": "u", "OS_PASSWORD": "p",
		"OS_PROJECT_NAME": "proj", "OS_USER_DOMAIN_NAME": "UD", "OS_PROJECT_DOMAIN_NAME": "PD", "OS_INSECURE": "true"}
	c, ok := CredentialsFromEnv(func(k string) string { return env[k] })
	want := Credentials{AuthURL: "https://ks/v3", Username: "u", Password: "p", ProjectName: "proj",
		UserDomainName: "UD", ProjectDomainName: "PD", Insecure: true}
	if !ok || c != want {
		t.Errorf("= %+v, %v", c, ok)
	}
	if _, ok := CredentialsFromEnv(func(string) string { return "" }); ok {
		t.Error("no OS_AUTH_URL: ok")
	}
}

func TestVersion(t *testing.T) {
	for _, tc := range []struct{ url, v, want string }{
		{"http://k:5000/v3", "", "3"}, {"http://k:5000/v2.0/", "", "2.0"}, {"http://k:5000", "2", "2.0"},
		{"http://k:5000/v2.0", "3", "3"}, {"http://k:5000", "v3", "3"},
	} {
		c := Credentials{AuthURL: tc.url, IdentityAPIVersion: tc.v}
		if got := c.Version(); got != tc.want {
			t.Errorf("%s %q: %s, want %s", tc.url, tc.v, got, tc.want)
		}
	}
}

func TestParseErrorBody(t *testing.T) {
	for in, want := range map[string]string{
		"Bad property udp_port\n": "Bad property udp_port",
		`{"error": {"message": "The request you have made requires authentication.", "code": 401}}`: "The request you have made requires authentication.",
		`{"message": "quota"}`:    "quota",
		"line1\r\n\tline2\x00":    "line1 line2",
		strings.Repeat("x", 1000): strings.Repeat("x", maxMessage) + "...",
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

func FuzzParseClouds(f *testing.F) {
	f.Add([]byte(cloudsYAML), "lab")
	f.Add([]byte("clouds:\n  x:\n    identity_api_version: [1]\n"), "x")
	f.Add([]byte("clouds: {x: {auth: {auth_url: 5}}}"), "x")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		c, err := ParseClouds(b, name)
		if err == nil && c.AuthURL == "" {
			t.Fatal("accepted a cloud without auth_url")
		}
	})
}
