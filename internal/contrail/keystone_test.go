package contrail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/contrail"
	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi"
)

// Secrets of the fake Keystone's user; no output may show them.
const (
	alicePW  = "pw-alice-7Qx2"
	acSecret = "ac-secret-9Zk4"
)

// credentialVars are every variable the credentials are read from.
var credentialVars = []string{"OS_CLOUD", "OS_AUTH_TYPE", "OS_AUTH_URL", "OS_USERNAME", "OS_USER_ID", "OS_PASSWORD",
	"OS_USER_DOMAIN_NAME", "OS_USER_DOMAIN_ID", "OS_PROJECT_NAME", "OS_PROJECT_ID", "OS_TENANT_NAME", "OS_TENANT_ID",
	"OS_PROJECT_DOMAIN_NAME", "OS_PROJECT_DOMAIN_ID", "OS_DOMAIN_NAME", "OS_DOMAIN_ID", "OS_APPLICATION_CREDENTIAL_ID",
	"OS_APPLICATION_CREDENTIAL_NAME", "OS_APPLICATION_CREDENTIAL_SECRET", "OS_TOKEN", "OS_IDENTITY_API_VERSION",
	"OS_CACERT", "OS_CERT", "OS_KEY", "OS_INSECURE", "OS_CLIENT_CONFIG_FILE", "OS_CLIENT_SECURE_FILE", "XDG_CONFIG_HOME",
	"OS_REGION_NAME", "OS_INTERFACE"}

// isolate clears the credential variables and gives the test an empty
// HOME and working directory, so that no clouds.yaml of the machine is
// found. It returns HOME.
func isolate(t *testing.T) string {
	for _, k := range credentialVars {
		t.Setenv(k, "")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Chdir(t.TempDir())
	return home
}

// eng is a fake Keystone whose user alice (ID u-alice) is in domain eng
// (ID d-eng), as is her project web (ID p-web); she has the application
// credential mirror (ID ac-1).
func eng(t *testing.T) (*fakeapi.Server, *httptest.Server) {
	f := fakeapi.New(fakeapi.Options{Keystone: true})
	f.SetIdentity(fakeapi.Identity{UserID: "u-alice", Username: "alice", Password: alicePW,
		UserDomainID: "d-eng", UserDomainName: "eng", ProjectID: "p-web", ProjectName: "web",
		ProjectDomainID: "d-eng", ProjectDomainName: "eng",
		AppCredentials: []fakeapi.AppCredential{{ID: "ac-1", Name: "mirror", Secret: acSecret}}})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// writeFiles writes each file (HOME/ and CWD/ prefixes, URL in the
// content replaced with url) with mode 0600.
func writeFiles(t *testing.T, home, url string, files map[string]string) {
	t.Helper()
	cwd, _ := os.Getwd()
	for name, content := range files {
		p := strings.Replace(strings.Replace(name, "HOME", home, 1), "CWD", cwd, 1)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "URL", url)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// setenv sets the variables, with URL replaced and HOME expanded.
func setenv(t *testing.T, home, url string, env map[string]string) {
	for k, v := range env {
		t.Setenv(k, strings.ReplaceAll(strings.ReplaceAll(v, "URL", url), "HOME", home))
	}
}

// use resolves the credentials as vrsniff does (flags over variables),
// lists networks through the config API with the token, and returns the
// token and the project.
func use(t *testing.T, srv *httptest.Server, flags contrail.Credentials) (contrail.Secret, []string, error) {
	t.Helper()
	k, err := contrail.NewKeystone(contrail.CredentialsFromEnv(os.Getenv).Override(flags), 5*time.Second)
	if err != nil {
		return "", nil, err
	}
	api, err := contrail.New(contrail.Config{Endpoint: srv.URL, Auth: k, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := api.List(ctx, "virtual-network", ""); err != nil {
		return "", nil, err
	}
	tok, err := k.Token(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.Project(ctx)
	return tok, p, err
}

const cloudsLab = `clouds:
  lab:
    auth:
      auth_url: URL/v3
      username: alice
      user_domain_name: eng
      project_name: web
      project_domain_name: eng
    region_name: RegionOne
    identity_api_version: 3
`

const secureLab = "clouds:\n  lab:\n    auth:\n      password: " + alicePW + "\n"

// Each source of credentials, end to end against the fake Keystone: the
// token it gets is accepted by the config API, was issued with the
// method expected, and names the project.
func TestCredentialSources(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    map[string]string
		files  map[string]string
		flags  contrail.Credentials
		method string
	}{
		{name: "variables, names", env: map[string]string{"OS_AUTH_URL": "URL/v3", "OS_USERNAME": "alice", "OS_PASSWORD": alicePW,
			"OS_USER_DOMAIN_NAME": "eng", "OS_PROJECT_NAME": "web", "OS_PROJECT_DOMAIN_NAME": "eng"}, method: "password"},
		{name: "variables, IDs, URL without version", env: map[string]string{"OS_AUTH_URL": "URL", "OS_USER_ID": "u-alice",
			"OS_PASSWORD": alicePW, "OS_PROJECT_ID": "p-web"}, method: "password"},
		{name: "variables, domain IDs", env: map[string]string{"OS_AUTH_URL": "URL/v3/", "OS_USERNAME": "alice", "OS_PASSWORD": alicePW,
			"OS_USER_DOMAIN_ID": "d-eng", "OS_PROJECT_NAME": "web", "OS_PROJECT_DOMAIN_ID": "d-eng"}, method: "password"},
		{name: "variables, OS_DOMAIN_NAME and OS_TENANT_NAME", env: map[string]string{"OS_AUTH_URL": "URL/v3", "OS_USERNAME": "alice",
			"OS_PASSWORD": alicePW, "OS_DOMAIN_NAME": "eng", "OS_TENANT_NAME": "web"}, method: "password"},
		{name: "variables, application credential ID", env: map[string]string{"OS_AUTH_URL": "URL/v3",
			"OS_APPLICATION_CREDENTIAL_ID": "ac-1", "OS_APPLICATION_CREDENTIAL_SECRET": acSecret,
			"OS_PROJECT_NAME": "other"}, method: "application_credential"},
		{name: "variables, application credential name", env: map[string]string{"OS_AUTH_URL": "URL/v3",
			"OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_NAME": "mirror",
			"OS_APPLICATION_CREDENTIAL_SECRET": acSecret, "OS_USERNAME": "alice", "OS_USER_DOMAIN_NAME": "eng",
			"OS_PASSWORD": "not-" + alicePW}, method: "application_credential"},
		{name: "~/.config/openstack/clouds.yaml and secure.yaml, OS_CLOUD", env: map[string]string{"OS_CLOUD": "lab"},
			files:  map[string]string{"HOME/.config/openstack/clouds.yaml": cloudsLab, "HOME/.config/openstack/secure.yaml": secureLab},
			method: "password"},
		{name: "$XDG_CONFIG_HOME/openstack, --os-cloud", env: map[string]string{"XDG_CONFIG_HOME": "HOME/xdg", "OS_CLOUD": "other"},
			files: map[string]string{"HOME/xdg/openstack/clouds.yaml": cloudsLab, "HOME/xdg/openstack/secure.yaml": secureLab,
				"HOME/.config/openstack/clouds.yaml": "clouds: {}"},
			flags: contrail.Credentials{Cloud: "lab"}, method: "password"},
		{name: "./clouds.yaml first, application credential",
			env: map[string]string{"OS_CLOUD": "ci"},
			files: map[string]string{
				"CWD/clouds.yaml": "clouds:\n  ci:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: URL\n" +
					"      application_credential_id: ac-1\n      application_credential_secret: " + acSecret + "\n",
				"HOME/.config/openstack/clouds.yaml": cloudsLab},
			method: "application_credential"},
		{name: "OS_CLIENT_CONFIG_FILE, secure.yaml beside it",
			env:    map[string]string{"OS_CLOUD": "lab", "OS_CLIENT_CONFIG_FILE": "HOME/etc/mine.yaml"},
			files:  map[string]string{"HOME/etc/mine.yaml": cloudsLab, "HOME/etc/secure.yaml": secureLab, "CWD/clouds.yaml": "clouds: {}"},
			method: "password"},
		{name: "OS_CLIENT_SECURE_FILE",
			env: map[string]string{"OS_CLOUD": "lab", "OS_CLIENT_SECURE_FILE": "HOME/s.yaml"},
			files: map[string]string{"HOME/.config/openstack/clouds.yaml": cloudsLab, "HOME/s.yaml": secureLab,
				"HOME/.config/openstack/secure.yaml": "clouds: {lab: {auth: {password: wrong}}}"},
			method: "password"},
		{name: "flags only", flags: contrail.Credentials{AuthURL: "URL/v3", UserID: "u-alice", Password: alicePW,
			ProjectName: "web", ProjectDomainName: "eng"}, method: "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := isolate(t)
			_, srv := eng(t)
			setenv(t, home, srv.URL, tc.env)
			writeFiles(t, home, srv.URL, tc.files)
			tc.flags.AuthURL = strings.ReplaceAll(tc.flags.AuthURL, "URL", srv.URL)
			f := srv.Config.Handler.(*fakeapi.Server)
			tok, project, err := use(t, srv, tc.flags)
			if err != nil {
				t.Fatal(err)
			}
			if m := f.TokenMethod(string(tok)); m != tc.method {
				t.Errorf("token issued with %q, want %q", m, tc.method)
			}
			if want := []string{"eng", "web"}; !reflect.DeepEqual(project, want) {
				t.Errorf("project = %v, want %v", project, want)
			}
		})
	}
}

// Flags override variables, which override clouds.yaml, field by field: a
// wrong password at one level is fixed by the right one above it, and
// spoils a right one below it.
func TestCredentialPrecedence(t *testing.T) {
	cloud := strings.Replace(cloudsLab, "project_name: web", "project_name: nope\n      password: PW", 1)
	for _, tc := range []struct {
		name     string
		cloudPW  string
		env      map[string]string
		flags    contrail.Credentials
		accepted bool
	}{
		{"clouds.yaml alone", alicePW, nil, contrail.Credentials{}, false}, // project nope
		{"variables over clouds.yaml", "wrong-pw", map[string]string{"OS_PASSWORD": alicePW, "OS_PROJECT_NAME": "web"},
			contrail.Credentials{}, true},
		{"variables spoil clouds.yaml", alicePW, map[string]string{"OS_PASSWORD": "wrong-pw", "OS_PROJECT_NAME": "web"},
			contrail.Credentials{}, false},
		{"flags over variables", "wrong-pw", map[string]string{"OS_PASSWORD": "wrong-pw", "OS_PROJECT_ID": "nope"},
			contrail.Credentials{Password: alicePW, ProjectID: "p-web"}, true},
		{"flags spoil variables", alicePW, map[string]string{"OS_PASSWORD": alicePW, "OS_PROJECT_NAME": "web"},
			contrail.Credentials{Password: "wrong-pw"}, false},
		{"a user ID flag replaces the user name", alicePW, map[string]string{"OS_USERNAME": "bob", "OS_PROJECT_NAME": "web"},
			contrail.Credentials{UserID: "u-alice"}, true},
		{"a flag token replaces the cloud's password", "wrong-pw", map[string]string{"OS_PROJECT_NAME": "web"},
			contrail.Credentials{Token: "TOKEN"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := isolate(t)
			f, srv := eng(t)
			if tc.flags.Token == "TOKEN" {
				tc.flags.Token = aliceToken(t, srv)
			}
			t.Setenv("OS_CLOUD", "lab")
			setenv(t, home, srv.URL, tc.env)
			writeFiles(t, home, srv.URL, map[string]string{"HOME/.config/openstack/clouds.yaml": strings.Replace(cloud, "PW", tc.cloudPW, 1)})
			_, project, err := use(t, srv, tc.flags)
			if tc.accepted && (err != nil || !reflect.DeepEqual(project, []string{"eng", "web"})) {
				t.Errorf("project %v, %v; want accepted", project, err)
			}
			if !tc.accepted && !errors.Is(err, contrail.ErrUnauthorized) {
				t.Errorf("err = %v, want 401", err)
			}
			if !tc.accepted && f.TokensIssued() != 0 {
				t.Errorf("%d tokens issued", f.TokensIssued())
			}
		})
	}
}

// aliceToken returns a token of alice's, scoped to web.
func aliceToken(t *testing.T, srv *httptest.Server) contrail.Secret {
	t.Helper()
	k, err := contrail.NewKeystone(contrail.Credentials{AuthURL: srv.URL + "/v3", UserID: "u-alice", Password: alicePW,
		ProjectID: "p-web"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.Token(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A token is used as it is (checked with Keystone), or, with a project, to
// get a token scoped to it; from the variables, the flags or clouds.yaml.
func TestTokenAuth(t *testing.T) {
	home := isolate(t)
	f, srv := eng(t)
	tok := aliceToken(t, srv)
	t.Setenv("OS_AUTH_URL", srv.URL+"/v3")
	t.Setenv("OS_TOKEN", string(tok))
	got, project, err := use(t, srv, contrail.Credentials{})
	if err != nil || got != tok || !reflect.DeepEqual(project, []string{"eng", "web"}) {
		t.Errorf("OS_TOKEN as it is: token same %v, project %v, %v", got == tok, project, err)
	}
	t.Setenv("OS_TOKEN", "")
	got, project, err = use(t, srv, contrail.Credentials{Token: tok, ProjectName: "web", ProjectDomainName: "eng"})
	if err != nil || got == tok || f.TokenMethod(string(got)) != "token" || !reflect.DeepEqual(project, []string{"eng", "web"}) {
		t.Errorf("--os-token, rescoped: token same %v, method %q, project %v, %v", got == tok, f.TokenMethod(string(got)), project, err)
	}
	t.Setenv("OS_AUTH_URL", "")
	writeFiles(t, home, srv.URL, map[string]string{"HOME/.config/openstack/clouds.yaml": "clouds:\n  tok:\n    auth_type: v3token\n" +
		"    auth:\n      auth_url: URL\n      token: " + string(tok) + "\n      project_id: p-web\n"})
	got, _, err = use(t, srv, contrail.Credentials{Cloud: "tok"})
	if err != nil || f.TokenMethod(string(got)) != "token" {
		t.Errorf("clouds.yaml v3token: method %q, %v", f.TokenMethod(string(got)), err)
	}

	// An expired token cannot be renewed: the error says so.
	t.Setenv("OS_AUTH_URL", srv.URL+"/v3")
	k, err := contrail.NewKeystone(contrail.Credentials{AuthURL: srv.URL, Token: tok}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	api, _ := contrail.New(contrail.Config{Endpoint: srv.URL, Auth: k, Retries: -1})
	ctx := context.Background()
	if _, err := api.List(ctx, "virtual-network", ""); err != nil {
		t.Fatal(err)
	}
	f.ExpireTokens()
	_, err = api.List(ctx, "virtual-network", "")
	if !errors.Is(err, contrail.ErrUnauthorized) || !strings.Contains(err.Error(), "cannot be renewed") || strings.Contains(err.Error(), string(tok)) {
		t.Errorf("expired token: %v", err)
	}
}

// When the config API refuses a token that expired, a new one is obtained
// once and the request succeeds, for every method that can renew.
func TestReauthAfterExpiry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		creds  contrail.Credentials
		renews bool
	}{
		{"password", contrail.Credentials{AuthURL: "URL/v3", Username: "alice", UserDomainName: "eng", Password: alicePW,
			ProjectName: "web", ProjectDomainName: "eng"}, true},
		{"application credential", contrail.Credentials{AuthURL: "URL", ApplicationCredentialID: "ac-1", ApplicationCredentialSecret: acSecret}, true},
		// Renewing a rescoped token takes the token it came from, which
		// expired with it.
		{"token, rescoped", contrail.Credentials{AuthURL: "URL", Token: "TOKEN", ProjectID: "p-web"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			f, srv := eng(t)
			c := tc.creds
			c.AuthURL = strings.Replace(c.AuthURL, "URL", srv.URL, 1)
			if c.Token == "TOKEN" {
				c.Token = aliceToken(t, srv)
			}
			k, err := contrail.NewKeystone(c, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			api, _ := contrail.New(contrail.Config{Endpoint: srv.URL, Auth: k, Retries: -1})
			ctx := context.Background()
			if _, err := api.FQNameToID(ctx, "project", []string{"default-domain", "default-project"}); err != nil {
				t.Fatal(err)
			}
			issued := f.TokensIssued()
			f.ExpireTokensAfter(1) // the next request finds its token expired
			_, err = api.FQNameToID(ctx, "project", []string{"default-domain", "default-project"})
			if !tc.renews {
				if !errors.Is(err, contrail.ErrUnauthorized) || strings.Contains(err.Error(), string(c.Token)) {
					t.Errorf("renewed with an expired token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.TokensIssued() != issued+1 {
				t.Errorf("tokens issued: %d, want %d", f.TokensIssued(), issued+1)
			}
		})
	}
}

// Keystone v2.0: the tenant is a project of Contrail's default domain.
func TestKeystoneV2Project(t *testing.T) {
	isolate(t)
	f := fakeapi.New(fakeapi.Options{Keystone: true, Username: "admin", Password: pw, Project: "admin"})
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Setenv("OS_AUTH_URL", srv.URL+"/v2.0")
	t.Setenv("OS_USERNAME", "admin")
	t.Setenv("OS_PASSWORD", pw)
	t.Setenv("OS_TENANT_NAME", "admin")
	if _, project, err := use(t, srv, contrail.Credentials{}); err != nil || !reflect.DeepEqual(project, []string{"default-domain", "admin"}) {
		t.Errorf("project %v, %v", project, err)
	}
}

// Without a project the token is unscoped: Project says what to set.
func TestProjectUnscoped(t *testing.T) {
	isolate(t)
	_, srv := eng(t)
	k, err := contrail.NewKeystone(contrail.Credentials{AuthURL: srv.URL, UserID: "u-alice", Password: alicePW}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := k.Project(context.Background()); err == nil || !strings.Contains(err.Error(), "OS_PROJECT_NAME") {
		t.Errorf("project %v, %v", p, err)
	}
}

// A clouds.yaml or secure.yaml that other users can read holds secrets
// they can read: it is refused, naming the file and the fix, before
// anything is parsed or sent.
func TestCloudFilesRefused(t *testing.T) {
	for _, tc := range []struct {
		file string
		mode os.FileMode
	}{
		{"clouds.yaml", 0o644}, {"clouds.yaml", 0o604}, {"secure.yaml", 0o644}, {"secure.yaml", 0o606},
	} {
		home := isolate(t)
		f, srv := eng(t)
		dir := filepath.Join(home, ".config", "openstack")
		writeFiles(t, home, srv.URL, map[string]string{"HOME/.config/openstack/clouds.yaml": cloudsLab,
			"HOME/.config/openstack/secure.yaml": secureLab})
		name := filepath.Join(dir, tc.file)
		if err := os.Chmod(name, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := contrail.NewKeystone(contrail.Credentials{Cloud: "lab"}, time.Second)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+name) || strings.Contains(err.Error(), alicePW) {
			t.Errorf("%s mode %04o: %v", tc.file, tc.mode, err)
		}
		if err := os.Chmod(name, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := use(t, srv, contrail.Credentials{Cloud: "lab"}); err != nil {
			t.Errorf("%s mode 0600: %v", tc.file, err)
		}
		if f.TokensIssued() != 1 {
			t.Errorf("%s: %d tokens issued, want 1 (after the fix)", tc.file, f.TokensIssued())
		}
		// Files are created in the process's group, which may read them.
		if err := os.Chmod(name, 0o640); err != nil {
			t.Fatal(err)
		}
		if _, _, err := use(t, srv, contrail.Credentials{Cloud: "lab"}); err != nil {
			t.Errorf("%s mode 0640, own group: %v", tc.file, err)
		}
	}
}

func TestCloudNotFound(t *testing.T) {
	home := isolate(t)
	_, err := contrail.NewKeystone(contrail.Credentials{Cloud: "lab"}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "no clouds.yaml found") || !strings.Contains(err.Error(), home) {
		t.Errorf("no file: %v", err)
	}
	writeFiles(t, home, "http://ks", map[string]string{"HOME/.config/openstack/clouds.yaml": cloudsLab})
	if _, err := contrail.NewKeystone(contrail.Credentials{Cloud: "prod"}, time.Second); err == nil ||
		!strings.Contains(err.Error(), `cloud "prod" not in `+filepath.Join(home, ".config/openstack/clouds.yaml")+" (has: lab)") {
		t.Errorf("no entry: %v", err)
	}
	if _, err := contrail.NewKeystone(contrail.Credentials{Cloud: "lab"}, time.Second); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Errorf("no password anywhere: %v", err)
	}
}

// TLS settings reach Keystone and, through TLSConfig, the config API: a CA
// file (--os-cacert, or cacert in clouds.yaml), verification off, and a
// client certificate for a Keystone that demands one.
func TestKeystoneTLS(t *testing.T) {
	home := isolate(t)
	f := fakeapi.New(fakeapi.Options{Keystone: true, Username: "admin", Password: pw, Project: "admin"})
	srv := httptest.NewUnstartedServer(f)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	certPEM, keyPEM := clientCert(t)
	for name, b := range map[string][]byte{ca: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
		cert: certPEM, key: keyPEM} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	base := contrail.Credentials{AuthURL: srv.URL + "/v3", Username: "admin", Password: pw, ProjectName: "admin"}
	for _, tc := range []struct {
		name  string
		c     contrail.Credentials
		cloud string
		ok    bool
	}{
		{"no CA", with(base, func(c *contrail.Credentials) { c.Cert, c.Key = cert, key }), "", false},
		{"no client certificate", with(base, func(c *contrail.Credentials) { c.CACert = ca }), "", false},
		{"CA and client certificate", with(base, func(c *contrail.Credentials) { c.CACert, c.Cert, c.Key = ca, cert, key }), "", true},
		{"insecure", with(base, func(c *contrail.Credentials) { c.Insecure, c.Cert, c.Key = &yes, cert, key }), "", true},
		{"clouds.yaml", contrail.Credentials{Cloud: "tls"}, "clouds:\n  tls:\n    cacert: " + ca + "\n    cert: " + cert + "\n    key: " + key +
			"\n    auth:\n      auth_url: " + srv.URL + "\n      username: admin\n      password: " + pw + "\n      project_name: admin\n", true},
	} {
		writeFiles(t, home, "", map[string]string{"HOME/.config/openstack/clouds.yaml": tc.cloud})
		k, err := contrail.NewKeystone(tc.c, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: k.TLSConfig()}}
		api, _ := contrail.New(contrail.Config{Endpoint: srv.URL, Auth: k, HTTP: hc, Retries: -1})
		_, err = api.List(context.Background(), "virtual-network", "")
		if (err == nil) != tc.ok || err != nil && strings.Contains(err.Error(), pw) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := contrail.NewKeystone(with(base, func(c *contrail.Credentials) { c.Cert, c.Key = cert, key }), time.Second); err == nil ||
		!strings.Contains(err.Error(), "chmod 600 "+key) {
		t.Errorf("key open to every user: %v", err)
	}
}

func with(c contrail.Credentials, f func(*contrail.Credentials)) contrail.Credentials {
	f(&c)
	return c
}

// clientCert returns a self-signed client certificate and its key, in PEM.
func clientCert(t *testing.T) (cert, key []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vrsniff"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
