package objstore

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vrsniff/vrsniff/internal/secret"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		in             string
		bucket, prefix string
	}{
		{"s3://captures", "captures", ""},
		{"s3://captures/", "captures", ""},
		{"s3://cap.tures-1/fleet", "cap.tures-1", "fleet/"},
		{"s3://abc/fleet/", "abc", "fleet/"},
		{"s3://abc/a/b/c", "abc", "a/b/c/"},
	} {
		l, err := ParseURL(c.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", c.in, err)
			continue
		}
		if l.Bucket != c.bucket || l.Prefix != c.prefix {
			t.Errorf("ParseURL(%q) = %+v, want bucket %q prefix %q", c.in, l, c.bucket, c.prefix)
		}
	}
	for _, in := range []string{
		"", "captures", "http://captures/x", "s3://", "s3://ab", "s3://" + strings.Repeat("a", 64),
		"s3://Captures", "s3://cap_tures", "s3://-cap", "s3://cap-", "s3://ca..p", "s3://ca.-p",
		"s3://192.168.1.1", "s3://cap//x", "s3://cap/a//b", "s3://cap/./b", "s3://cap/a/..", "s3://cap/a\nb",
		"s3://cap/" + strings.Repeat("a", 513),
	} {
		if l, err := ParseURL(in); err == nil {
			t.Errorf("ParseURL(%q) = %+v, want an error", in, l)
		}
	}
}

// FuzzParseURL checks that what ParseURL accepts is a valid location that
// reads back the same from its String.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://captures/fleet", "s3://abc", "s3://a.b-c/x/y/", "s3://ab", "s3://abc//", "s3://abc/x/../y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseURL(s)
		if err != nil {
			return
		}
		if err := checkBucket(l.Bucket); err != nil {
			t.Fatalf("ParseURL(%q) = %+v: %v", s, l, err)
		}
		if l.Prefix != "" && (!strings.HasSuffix(l.Prefix, "/") || strings.HasPrefix(l.Prefix, "/") || strings.Contains(l.Prefix, "//")) {
			t.Fatalf("ParseURL(%q) = %+v: prefix not normalised", s, l)
		}
		if !strings.HasPrefix(s, l.String()[:len(l.String())-1]) {
			t.Fatalf("ParseURL(%q) = %+v: not what was given", s, l)
		}
		l2, err := ParseURL(l.String())
		if err != nil || l2 != l {
			t.Fatalf("ParseURL(%q) = %+v, but its String %q reads back as %+v, %v", s, l, l.String(), l2, err)
		}
	})
}

func writeCredentials(t *testing.T, dir, content string, mode os.FileMode) string {
	t.Helper()
	name := filepath.Join(dir, "credentials")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
	return name
}

const credentialsINI = `# shared credentials
[default]
aws_access_key_id = FILEDEFAULT
aws_secret_access_key = filedefaultsecret

[lab]
; the lab's RGW
aws_access_key_id=FILELAB
aws_secret_access_key=filelabsecret
aws_session_token = labtoken
`

// TestCredentialsPrecedence checks where the keys, the endpoint and the
// region come from when several sources give them: the Config, then the
// environment, then the credentials file.
func TestCredentialsPrecedence(t *testing.T) {
	home := t.TempDir()
	homeFile := writeCredentials(t, filepath.Join(home, ".aws"), credentialsINI, 0o600)
	otherFile := writeCredentials(t, t.TempDir(), "[default]\naws_access_key_id = OTHER\naws_secret_access_key = othersecret\n", 0o600)
	envKeys := map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "envtoken"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{"HOME": home}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for _, c := range []struct {
		name          string
		cfg           Config
		env           map[string]string
		access, token string
		from          string
		host          string
		secure, aws   bool
		region        string
	}{
		{name: "config keys win over everything", cfg: Config{AccessKey: "CFG", SecretKey: "cfgsecret", CredentialsFile: otherFile},
			env: with(envKeys), access: "CFG", from: "config", host: "s3.amazonaws.com", secure: true, aws: true, region: DefaultRegion},
		{name: "environment keys win over the default file", env: with(envKeys),
			access: "ENVKEY", token: "envtoken", from: "environment", host: "s3.amazonaws.com", secure: true, aws: true, region: DefaultRegion},
		{name: "a file named in the config wins over environment keys", cfg: Config{CredentialsFile: otherFile},
			env: with(envKeys), access: "OTHER", from: otherFile, host: "s3.amazonaws.com", secure: true, aws: true, region: DefaultRegion},
		{name: "a profile named in the config wins over environment keys", cfg: Config{Profile: "lab"},
			env: with(envKeys), access: "FILELAB", token: "labtoken", from: homeFile, host: "s3.amazonaws.com", secure: true, aws: true, region: DefaultRegion},
		{name: "default file, default profile", env: with(nil),
			access: "FILEDEFAULT", from: homeFile, host: "s3.amazonaws.com", secure: true, aws: true, region: DefaultRegion},
		{name: "AWS_PROFILE and AWS_SHARED_CREDENTIALS_FILE", env: with(nil, "AWS_PROFILE", "lab", "AWS_SHARED_CREDENTIALS_FILE", homeFile, "HOME", "/nonexistent"),
			access: "FILELAB", token: "labtoken", from: homeFile, host: "s3.amazonaws.com", secure: true, aws: true, region: DefaultRegion},
		{name: "config profile wins over AWS_PROFILE", cfg: Config{Profile: "default"}, env: with(nil, "AWS_PROFILE", "lab"),
			access: "FILEDEFAULT", from: homeFile, host: "s3.amazonaws.com", secure: true, aws: true, region: DefaultRegion},
		{name: "endpoint and region from the environment", env: with(envKeys, "AWS_ENDPOINT_URL", "http://10.0.0.1:7480", "AWS_ENDPOINT_URL_S3", "http://rgw:7480", "AWS_DEFAULT_REGION", "default-1", "AWS_REGION", "region-1"),
			access: "ENVKEY", token: "envtoken", from: "environment", host: "rgw:7480", region: "region-1"},
		{name: "AWS_ENDPOINT_URL and AWS_DEFAULT_REGION", env: with(envKeys, "AWS_ENDPOINT_URL", "10.0.0.1:7480", "AWS_DEFAULT_REGION", "default-1"),
			access: "ENVKEY", token: "envtoken", from: "environment", host: "10.0.0.1:7480", secure: true, region: "default-1"},
		{name: "config endpoint and region win", cfg: Config{Endpoint: "https://s3.cloud:443", Region: "cfg-1"}, env: with(envKeys, "AWS_ENDPOINT_URL_S3", "http://rgw:7480", "AWS_REGION", "region-1"),
			access: "ENVKEY", token: "envtoken", from: "environment", host: "s3.cloud:443", secure: true, region: "cfg-1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.URL = "s3://captures/fleet"
			r, err := c.cfg.resolve(func(k string) string { return c.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if r.access != c.access || r.sessionToken != c.token || r.keysFrom != c.from {
				t.Errorf("keys %q token %q from %q, want %q %q from %q", r.access, r.sessionToken, r.keysFrom, c.access, c.token, c.from)
			}
			if r.secretKey == "" {
				t.Errorf("no secret key")
			}
			if r.host != c.host || r.secure != c.secure || r.aws != c.aws || r.region != c.region {
				t.Errorf("endpoint %s secure %v aws %v region %s, want %s %v %v %s", r.host, r.secure, r.aws, r.region, c.host, c.secure, c.aws, c.region)
			}
			if r.partSize != DefaultPartSize || r.loc != (Location{"captures", "fleet/"}) {
				t.Errorf("part size %d location %+v", r.partSize, r.loc)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	home := t.TempDir()
	open := writeCredentials(t, t.TempDir(), credentialsINI, 0o644)
	good := writeCredentials(t, t.TempDir(), credentialsINI, 0o600)
	keys := Config{URL: "s3://captures", AccessKey: "A", SecretKey: "secretvalue"}
	for _, c := range []struct {
		name string
		cfg  Config
		env  map[string]string
		want string
	}{
		{"no keys anywhere", Config{URL: "s3://captures"}, map[string]string{"HOME": home}, "none given"},
		{"half the keys in the config", Config{URL: "s3://captures", AccessKey: "A"}, nil, "both"},
		{"half the keys in the environment", Config{URL: "s3://captures"}, map[string]string{"AWS_ACCESS_KEY_ID": "A"}, "together"},
		{"no such profile", Config{URL: "s3://captures", CredentialsFile: good, Profile: "nope"}, nil, `no profile "nope"`},
		{"missing named file", Config{URL: "s3://captures"}, map[string]string{"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none")}, "no such file"},
		{"bad URL", Config{URL: "s3://Captures", AccessKey: "A", SecretKey: "B"}, nil, "bucket"},
		{"small parts", Config{URL: keys.URL, AccessKey: "A", SecretKey: "B", PartSize: 1 << 20}, nil, "part size"},
		{"endpoint scheme", Config{URL: keys.URL, AccessKey: "A", SecretKey: "B", Endpoint: "ftp://rgw:21"}, nil, "want https://"},
		{"endpoint path", Config{URL: keys.URL, AccessKey: "A", SecretKey: "B", Endpoint: "https://rgw/swift"}, nil, "only a scheme"},
		{"keys in the endpoint", Config{URL: keys.URL, AccessKey: "A", SecretKey: "B", Endpoint: "https://k:topsecret@rgw"}, nil, "[REDACTED]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.cfg.resolve(func(k string) string { return c.env[k] })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
	// A credentials file others can read is refused, named or found.
	for _, cfg := range []Config{{URL: "s3://captures", CredentialsFile: open}, {URL: "s3://captures"}} {
		_, err := cfg.resolve(func(k string) string { return map[string]string{"AWS_SHARED_CREDENTIALS_FILE": open}[k] })
		var exposed *secret.ExposedError
		if !errors.As(err, &exposed) || exposed.Name != open {
			t.Errorf("%+v with a 0644 credentials file: error %v, want a *secret.ExposedError for it", cfg, err)
		}
	}
}

// TestTLS checks that TLS is verified by default and that CACert adds a
// CA: an HTTPS server whose certificate no system CA signed answers every
// request (the bucket check included) with 200.
func TestTLS(t *testing.T) {
	var heads atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && r.URL.Path == "/captures/" {
			heads.Add(1)
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hostPort := strings.TrimPrefix(srv.URL, "https://")
	cfg := func(endpoint, caCert string) Config {
		return Config{URL: "s3://captures/fleet", Endpoint: endpoint, CACert: caCert, AccessKey: "A", SecretKey: "secretvalue"}
	}
	for _, ep := range []string{srv.URL, hostPort} {
		s, err := Open(ctx, cfg(ep, ca))
		if err != nil {
			t.Fatalf("Open(%s) with its CA: %v", ep, err)
		}
		if s.Endpoint() != srv.URL || s.Location() != (Location{"captures", "fleet/"}) {
			t.Errorf("store at %s %+v", s.Endpoint(), s.Location())
		}
	}
	if n := heads.Load(); n != 2 {
		t.Errorf("%d path-style HEAD /captures/ requests, want 2", n)
	}
	if _, err := Open(ctx, cfg(srv.URL, "")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Open without the CA: %v, want a certificate error", err)
	}
	if _, err := Open(ctx, cfg(srv.URL, notPEM)); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("Open with a CA file that holds none: %v", err)
	}
	if n := heads.Load(); n != 2 {
		t.Errorf("requests reached the server unverified")
	}
}
