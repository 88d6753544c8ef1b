package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi"
)

// clearOSEnv empties every OS_* variable and gives the test an empty HOME,
// so that no credentials of the machine are used.
func clearOSEnv(t *testing.T) string {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OS_") || k == "CONTRAIL_API" || k == "XDG_CONFIG_HOME" {
			t.Setenv(k, "")
		}
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	return home
}

func parseAPIFlags(t *testing.T, args ...string) *apiFlags {
	t.Helper()
	var a apiFlags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	a.register(fs, true)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &a
}

// Every --os-* flag is the OS_* variable of the same name, as in the
// OpenStack command line tools, and wins over it.
func TestOSFlagsAreTheVariables(t *testing.T) {
	clearOSEnv(t)
	var names []string
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	(&apiFlags{}).register(fs, true)
	fs.VisitAll(func(f *pflag.Flag) {
		if strings.HasPrefix(f.Name, "os-") {
			names = append(names, f.Name)
		}
	})
	if len(names) < 20 {
		t.Fatalf("only %d --os-* flags: %v", len(names), names)
	}
	for _, name := range names {
		fromFlag := parseAPIFlags(t, "--"+name+"=v-"+name).credentials()
		t.Setenv(envName(name), "v-"+name)
		fromEnv := parseAPIFlags(t).credentials()
		if !reflect.DeepEqual(fromFlag, fromEnv) {
			t.Errorf("--%s gives %+v, $%s gives %+v", name, fromFlag, envName(name), fromEnv)
		}
		if c := parseAPIFlags(t, "--"+name+"=flag").credentials(); reflect.DeepEqual(c, fromEnv) {
			t.Errorf("--%s does not override $%s", name, envName(name))
		}
		t.Setenv(envName(name), "")
	}
	t.Setenv("OS_INSECURE", "true")
	fromEnv := parseAPIFlags(t).credentials()
	t.Setenv("OS_INSECURE", "")
	if fromFlag := parseAPIFlags(t, "--insecure").credentials(); !reflect.DeepEqual(fromFlag, fromEnv) || fromFlag.Insecure == nil || !*fromFlag.Insecure {
		t.Errorf("--insecure gives %+v, OS_INSECURE=true %+v", fromFlag, fromEnv)
	}
}

func engKeystone(t *testing.T) (*fakeapi.Server, *httptest.Server) {
	f := fakeapi.New(fakeapi.Options{Keystone: true})
	f.SetIdentity(fakeapi.Identity{UserID: "u-alice", Username: "alice", Password: "pw-alice-cmd",
		UserDomainID: "d-eng", UserDomainName: "eng", ProjectID: "p-web", ProjectName: "web",
		ProjectDomainID: "d-eng", ProjectDomainName: "eng"})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// The credentials' project is what the token is scoped to, in Contrail's
// names; the config API client and the project share one token.
func TestCredentialsProject(t *testing.T) {
	clearOSEnv(t)
	f, srv := engKeystone(t)
	t.Setenv("OS_AUTH_URL", srv.URL+"/v3")
	t.Setenv("OS_USER_ID", "u-alice")
	t.Setenv("OS_PASSWORD", "wrong")
	t.Setenv("OS_PROJECT_ID", "p-web")
	ctx := context.Background()
	a := parseAPIFlags(t, "--api", srv.URL, "--os-password", "pw-alice-cmd")
	p, err := a.credentialsProject(ctx)
	if err != nil || !reflect.DeepEqual(p, []string{"eng", "web"}) {
		t.Fatalf("project %v, %v", p, err)
	}
	if _, err := a.provisioner(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.api.List(ctx, "virtual-network", ""); err != nil {
		t.Fatal(err)
	}
	if f.TokensIssued() != 1 {
		t.Errorf("%d tokens issued, want 1", f.TokensIssued())
	}
	if p, err := parseAPIFlags(t, "--api", srv.URL, "--no-auth").credentialsProject(ctx); p != nil || err != nil {
		t.Errorf("--no-auth: %v, %v", p, err)
	}
	t.Setenv("OS_AUTH_URL", "")
	if p, err := parseAPIFlags(t, "--api", srv.URL).credentialsProject(ctx); p != nil || err != nil {
		t.Errorf("no credentials: %v, %v", p, err)
	}
}

// No secret from the variables or the flags shows in -h, in errors or in
// --dry-run output; a clouds.yaml open to other users is refused with the
// fix.
func TestMirrorHidesCredentials(t *testing.T) {
	home := clearOSEnv(t)
	_, srv := engKeystone(t)
	secrets := map[string]string{"OS_PASSWORD": "env-pw-S1", "OS_APPLICATION_CREDENTIAL_SECRET": "env-ac-S2", "OS_TOKEN": "env-tok-S3"}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	shows := func(s string) string {
		for _, v := range []string{"env-pw-S1", "env-ac-S2", "env-tok-S3", "flag-pw-S4", "pw-alice-cmd"} {
			if strings.Contains(s, v) {
				return v
			}
		}
		return ""
	}
	for _, sub := range []string{"create", "list", "delete"} {
		help, _, _ := run(t, nil, "mirror", sub, "--os-password", "flag-pw-S4", "-h")
		if s := shows(help); s != "" {
			t.Errorf("mirror %s -h shows %s:\n%s", sub, s, help)
		}
		for _, want := range []string{"-os-password password", "(default $OS_PASSWORD)", "-os-application-credential-secret", "(default $OS_TOKEN)"} {
			if !strings.Contains(help, want) {
				t.Errorf("mirror %s -h lacks %q:\n%s", sub, want, help)
			}
		}
	}
	t.Setenv("OS_TOKEN", "")
	t.Setenv("OS_APPLICATION_CREDENTIAL_SECRET", "")
	t.Setenv("OS_AUTH_URL", srv.URL+"/v3")
	t.Setenv("OS_USER_ID", "u-alice")
	t.Setenv("OS_PROJECT_ID", "p-web")
	stdout, stderr, code := run(t, nil, "mirror", "list", "--api", srv.URL, "--os-password", "flag-pw-S4")
	if code != exitFailure || !strings.Contains(stderr, "401") || shows(stdout+stderr) != "" {
		t.Errorf("wrong password: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, nil, "mirror", "delete", "--dry-run", "-v", "--api", srv.URL, "--os-password", "pw-alice-cmd", "nothing")
	if code == exitUsage || strings.Contains(stderr, "401") || shows(stdout+stderr) != "" {
		t.Errorf("dry run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	clouds := filepath.Join(home, ".config", "openstack", "clouds.yaml")
	if err := os.MkdirAll(filepath.Dir(clouds), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(clouds, []byte("clouds:\n  lab:\n    auth:\n      auth_url: "+srv.URL+"\n      password: pw-alice-cmd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = run(t, nil, "mirror", "list", "--api", srv.URL, "--os-cloud", "lab")
	if code != exitFailure || !strings.Contains(stderr, "chmod 600 "+clouds) || shows(stdout+stderr) != "" {
		t.Errorf("open clouds.yaml: exit %d, stderr %q", code, stderr)
	}
}
