package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"encoding/json"

	"go.yaml.in/yaml/v3"

	"github.com/vrsniff/vrsniff/internal/contrail/fakeapi"
)

func TestMirrorCommand(t *testing.T) {
	f := fakeapi.New(fakeapi.Options{Keystone: true, Username: "admin", Password: "pw", Project: "admin"})
	f.Seed("project", map[string]any{"fq_name": []string{"default-domain", "admin"}, "parent_type": "domain"}) // not in a fresh installation
	srv := httptest.NewServer(f)
	defer srv.Close()
	f.Seed("virtual-network", map[string]any{"fq_name": []string{"default-domain", "admin", "vn1"}, "parent_type": "project"})
	before := f.Snapshot()
	for k, v := range map[string]string{"OS_AUTH_URL": srv.URL + "/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "pw",
		"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default", "OS_CLOUD": ""} {
		t.Setenv(k, v)
	}
	api := "--api=" + srv.URL
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{}, exitUsage},
		{[]string{"bogus"}, exitUsage},
		{[]string{"create", api, "--vn", "default-domain:admin:vn1", "--analyzer-ip", "10.0.0.5"}, exitUsage}, // no --name
		{[]string{"create", api, "--name", "m", "--vn", "default-domain:admin:vn1", "--port", "x", "--analyzer-ip", "10.0.0.5"}, exitUsage},
		{[]string{"create", api, "--name", "m", "--vn", "default-domain:admin:vn1", "--analyzer-ip", "10.0.0"}, exitUsage},
		{[]string{"create", api, "--name", "m", "--vn", "default-domain:admin:nope", "--analyzer-ip", "10.0.0.5"}, exitFailure},
		{[]string{"create", api, "--dry-run", "--name", "m", "--vn", "default-domain:admin:vn1", "--analyzer-ip", "10.0.0.5"}, exitOK},
		// Header-less with a dynamic next hop would program a discard.
		{[]string{"create", api, "--name", "m", "--vn", "default-domain:admin:vn1", "--analyzer-ip", "10.0.0.5", "--juniper-header=false"}, exitUsage},
		{[]string{"create", api, "--name", "m", "--vn", "default-domain:admin:vn1", "--per-port", "--protocol", "tcp", "--analyzer-ip", "10.0.0.5"}, exitUsage},
		{[]string{"create", api, "--name", "m", "--vn", "default-domain:admin:vn1", "--service-instance"}, exitUsage},
		{[]string{"create", api, "--name", "m", "--vn", "default-domain:admin:vn1", "--nh-mode", "static", "--vtep", "2001:db8::1", "--vni", "5"}, exitUsage},
		{[]string{"list", api, "-o", "yaml"}, exitUsage},
		{[]string{"list", api, "--all-projects", "--project", "default-domain:admin"}, exitUsage},
		// Flags after the name, as operators type them: not found, not a usage error.
		{[]string{"delete", api, "nosuch", "--project", "default-domain:admin"}, exitFailure},
		{[]string{"delete", api, "nosuch", "extra"}, exitUsage},
		// Match flags do not narrow port mirroring: refused, not ignored.
		{[]string{"create", api, "--name", "m", "--port", "6c1f3a52-0d6e-4e0f-9d59-8f8e0f2a9b11", "--protocol", "tcp", "--analyzer-ip", "10.0.0.5"}, exitUsage},
		{[]string{"create", api, "--name", "m", "--vn", "default-domain:admin:vn1"}, exitUsage},
	} {
		if got := runMirror(tc.args); got != tc.code {
			t.Errorf("mirror %q = %d, want %d", tc.args, got, tc.code)
		}
	}
	if f.Count("network-policy") != 0 {
		t.Fatal("dry run or failed create changed the server")
	}
	if got := runMirror([]string{"create", api, "--name", "m", "--vn", "default-domain:admin:vn1", "--analyzer-ip", "10.0.0.5",
		"--nh-mode", "static", "--vtep", "172.16.0.9", "--vni", "5000", "--protocol", "udp", "--dst-port", "53"}); got != exitOK {
		t.Fatalf("create = %d", got)
	}
	id := f.Lookup("network-policy", "default-domain", "admin", "vrsniff-m")
	if id == "" || !strings.Contains(jsonOf(f.Object(id)), `"juniper_header":false`) {
		t.Errorf("policy = %s", jsonOf(f.Object(id)))
	}
	for _, args := range [][]string{{"list", api}, {"list", api, "-o", "json"}, {"list", api, "--all-projects"}} {
		if got := runMirror(args); got != exitOK {
			t.Errorf("%q = %d", args, got)
		}
	}
	if got := runMirror([]string{"delete", api, "m"}); got != exitOK {
		t.Errorf("delete = %d", got)
	}
	if got := runMirror([]string{"delete", api, "m"}); got != exitFailure {
		t.Errorf("delete again = %d", got)
	}
	if jsonOf(before) != jsonOf(f.Snapshot()) {
		t.Error("server state differs after create and delete")
	}

	out := filepath.Join(t.TempDir(), "mirror.yaml")
	if got := runMirror([]string{"heat", "--mode", "service-instance", "-o", out}); got != exitOK {
		t.Fatalf("heat = %d", got)
	}
	b, err := os.ReadFile(out)
	var v map[string]any
	if err != nil || yaml.Unmarshal(b, &v) != nil || v["resources"] == nil {
		t.Errorf("heat output: %v\n%s", err, b)
	}
}

// TestMirrorHeatSHA256: --vrsniff-sha256 is the default of the template's
// vrsniff_sha256 parameter, and one that is no SHA-256 is a usage error.
func TestMirrorHeatSHA256(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	out := filepath.Join(t.TempDir(), "mirror.yaml")
	if got := runMirror([]string{"heat", "--vrsniff-sha256", sum, "-o", out}); got != exitOK {
		t.Fatalf("heat = %d", got)
	}
	b, err := os.ReadFile(out)
	var v struct {
		Parameters map[string]struct{ Default any } `yaml:"parameters"`
	}
	if err != nil || yaml.Unmarshal(b, &v) != nil || v.Parameters["vrsniff_sha256"].Default != sum {
		t.Errorf("vrsniff_sha256 parameter %+v (%v)", v.Parameters["vrsniff_sha256"], err)
	}
	if got := runMirror([]string{"heat", "--vrsniff-sha256", sum[:10], "-o", out}); got == exitOK {
		t.Error("heat accepted a short SHA-256")
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
