package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi"
)

// capture refuses a token file that other users can read and a token that
// is easy to guess, before it opens anything.
func TestCaptureTokenFile(t *testing.T) {
	dir := t.TempDir()
	tf := filepath.Join(dir, "token")
	missing := filepath.Join(dir, "missing.pcap") // reached only if the token is accepted
	for _, tc := range []struct {
		token string
		mode  os.FileMode
		want  string
	}{
		{"0123456789abcdef", 0o644, tf + " is open to every user (mode 0644): chmod 600 " + tf},
		{"0123456789abcdef", 0o606, "mode 0606"},
		{"short", 0o600, "token of 5 bytes, too easy to guess: want at least 16"},
		{"0123456789abcdef", 0o600, missing}, // accepted: the run gets as far as its input
	} {
		if err := os.WriteFile(tf, []byte(tc.token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tf, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := run(t, nil, "capture", "--read", missing, "--dir", filepath.Join(dir, "c"),
			"--http", "127.0.0.1:0", "--token-file", tf)
		if code != exitFailure || !strings.Contains(stderr, tc.want) {
			t.Errorf("token %q mode %04o: exit %d, stderr %q; want %q", tc.token, tc.mode, code, stderr, tc.want)
		}
	}
}

// A password in the config API URL is never printed: not by --dry-run, not
// in the help that shows the default from CONTRAIL_API.
func TestMirrorRedactsAPIURL(t *testing.T) {
	f := fakeapi.New(fakeapi.Options{})
	f.Seed("project", map[string]any{"fq_name": []string{"default-domain", "admin"}, "parent_type": "domain"}) // not in a fresh installation
	srv := httptest.NewServer(f)
	defer srv.Close()
	f.Seed("virtual-network", map[string]any{"fq_name": []string{"default-domain", "admin", "vn1"}, "parent_type": "project"})
	const user, pass = "apiuser", "apipa55-in-url"
	api := strings.Replace(srv.URL, "http://", "http://"+user+":"+pass+"@", 1)
	t.Setenv("CONTRAIL_API", api)
	t.Setenv("OS_AUTH_URL", "")
	t.Setenv("OS_CLOUD", "")

	stdout, stderr, code := run(t, nil, "mirror", "create", "--no-auth", "--dry-run", "--name", "m",
		"--vn", "default-domain:admin:vn1", "--analyzer-ip", "10.0.0.5")
	want := "POST http://[REDACTED]@" + strings.TrimPrefix(srv.URL, "http://") + "/network-policys\n"
	if code != exitOK || !strings.Contains(stdout, want) {
		t.Errorf("dry run: exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
	}
	help, _, _ := run(t, nil, "mirror", "create", "-h")
	for what, s := range map[string]string{"dry-run output": stdout + stderr, "help": help} {
		if strings.Contains(s, user) || strings.Contains(s, pass) {
			t.Errorf("%s shows the URL's userinfo:\n%s", what, s)
		}
	}
	if !strings.Contains(help, "default $CONTRAIL_API") {
		t.Errorf("help does not say where --api comes from:\n%s", help)
	}
}
