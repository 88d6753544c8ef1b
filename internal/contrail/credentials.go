package contrail

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vrsniff/vrsniff/internal/secret"
)

// Credentials are what is needed to obtain a Keystone token, as OpenStack
// command line tools find them in clouds.yaml or in OS_* variables.
type Credentials struct {
	AuthURL           string // Keystone endpoint, e.g. https://keystone:5000/v3; empty means no authentication
	Username          string
	Password          Secret
	ProjectName       string
	ProjectID         string
	UserDomainName    string
	ProjectDomainName string
	// IdentityAPIVersion is "3" or "2.0"; empty means derive it from AuthURL
	// (a URL ending in /v2.0 selects v2.0, anything else v3).
	IdentityAPIVersion string
	CACert             string // PEM file with the CA that signed the servers' certificates
	Insecure           bool   // skip TLS certificate verification
}

// Version returns the Keystone API version to use: "3" or "2.0".
func (c *Credentials) Version() string {
	v := strings.TrimPrefix(c.IdentityAPIVersion, "v")
	switch {
	case v == "2" || v == "2.0":
		return "2.0"
	case v != "":
		return "3"
	case strings.HasSuffix(strings.TrimRight(c.AuthURL, "/"), "/v2.0"):
		return "2.0"
	}
	return "3"
}

// CredentialsFromEnv reads the usual OS_* variables through getenv (pass
// os.Getenv). It returns ok=false when OS_AUTH_URL is not set.
func CredentialsFromEnv(getenv func(string) string) (c Credentials, ok bool) {
	c = Credentials{
		AuthURL:            getenv("OS_AUTH_URL"),
		Username:           getenv("OS_USERNAME"),
		Password:           Secret(getenv("OS_PASSWORD")),
		ProjectName:        first(getenv("OS_PROJECT_NAME"), getenv("OS_TENANT_NAME")),
		ProjectID:          first(getenv("OS_PROJECT_ID"), getenv("OS_TENANT_ID")),
		UserDomainName:     first(getenv("OS_USER_DOMAIN_NAME"), getenv("OS_DOMAIN_NAME")),
		ProjectDomainName:  first(getenv("OS_PROJECT_DOMAIN_NAME"), getenv("OS_DOMAIN_NAME")),
		IdentityAPIVersion: getenv("OS_IDENTITY_API_VERSION"),
		CACert:             getenv("OS_CACERT"),
	}
	if b, err := strconv.ParseBool(getenv("OS_INSECURE")); err == nil {
		c.Insecure = b
	}
	return c, c.AuthURL != ""
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// cloudsFile mirrors the part of clouds.yaml that vrsniff reads.
type cloudsFile struct {
	Clouds map[string]struct {
		Auth struct {
			AuthURL           string `yaml:"auth_url"`
			Username          string `yaml:"username"`
			Password          string `yaml:"password"`
			ProjectName       string `yaml:"project_name"`
			ProjectID         string `yaml:"project_id"`
			TenantName        string `yaml:"tenant_name"`
			UserDomainName    string `yaml:"user_domain_name"`
			ProjectDomainName string `yaml:"project_domain_name"`
			DomainName        string `yaml:"domain_name"`
		} `yaml:"auth"`
		AuthType           string `yaml:"auth_type"`
		IdentityAPIVersion any    `yaml:"identity_api_version"`
		CACert             string `yaml:"cacert"`
		Verify             *bool  `yaml:"verify"`
		Insecure           *bool  `yaml:"insecure"`
	} `yaml:"clouds"`
}

// ParseClouds returns the credentials of the named cloud in a clouds.yaml
// document.
func ParseClouds(data []byte, cloud string) (Credentials, error) {
	var f cloudsFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return Credentials{}, fmt.Errorf("parse clouds.yaml: %w", err)
	}
	cl, ok := f.Clouds[cloud]
	if !ok {
		names := make([]string, 0, len(f.Clouds))
		for n := range f.Clouds {
			names = append(names, n)
		}
		return Credentials{}, fmt.Errorf("cloud %q not in clouds.yaml (has: %s)", cloud, strings.Join(names, ", "))
	}
	switch cl.AuthType {
	case "", "password", "v3password", "v2password":
	default:
		return Credentials{}, fmt.Errorf("cloud %q: auth_type %q is not supported (use password)", cloud, cl.AuthType)
	}
	a := cl.Auth
	c := Credentials{
		AuthURL:           a.AuthURL,
		Username:          a.Username,
		Password:          Secret(a.Password),
		ProjectName:       first(a.ProjectName, a.TenantName),
		ProjectID:         a.ProjectID,
		UserDomainName:    first(a.UserDomainName, a.DomainName),
		ProjectDomainName: first(a.ProjectDomainName, a.DomainName),
		CACert:            cl.CACert,
	}
	switch v := cl.IdentityAPIVersion.(type) {
	case nil:
	case string:
		c.IdentityAPIVersion = v
	case int:
		c.IdentityAPIVersion = strconv.Itoa(v)
	case float64:
		c.IdentityAPIVersion = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return Credentials{}, fmt.Errorf("cloud %q: identity_api_version: want a number or string, got %T", cloud, v)
	}
	if cl.AuthType == "v2password" {
		c.IdentityAPIVersion = "2.0"
	}
	if cl.Verify != nil && !*cl.Verify {
		c.Insecure = true
	}
	if cl.Insecure != nil && *cl.Insecure {
		c.Insecure = true
	}
	if c.AuthURL == "" {
		return Credentials{}, fmt.Errorf("cloud %q: auth.auth_url is missing", cloud)
	}
	return c, nil
}

// CloudsPaths lists where clouds.yaml is looked for, in order, as the
// OpenStack client libraries do.
func CloudsPaths(getenv func(string) string) []string {
	var p []string
	if f := getenv("OS_CLIENT_CONFIG_FILE"); f != "" {
		p = append(p, f)
	}
	p = append(p, "clouds.yaml")
	if home := getenv("HOME"); home != "" {
		p = append(p, filepath.Join(home, ".config", "openstack", "clouds.yaml"))
	}
	return append(p, "/etc/openstack/clouds.yaml")
}

// LoadCloud reads the named cloud from the first clouds.yaml found in
// CloudsPaths. A clouds.yaml that other users can read is refused (see
// secret.ReadFile): it holds passwords.
func LoadCloud(cloud string, getenv func(string) string) (Credentials, error) {
	for _, p := range CloudsPaths(getenv) {
		data, err := secret.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		var ee *secret.ExposedError
		if errors.As(err, &ee) {
			return Credentials{}, fmt.Errorf("clouds.yaml holds passwords: %w", err)
		}
		if err != nil {
			return Credentials{}, fmt.Errorf("read %s: %w", p, err)
		}
		c, err := ParseClouds(data, cloud)
		if err != nil {
			return Credentials{}, fmt.Errorf("%s: %w", p, err)
		}
		return c, nil
	}
	return Credentials{}, fmt.Errorf("cloud %q: no clouds.yaml found (looked in %s)", cloud, strings.Join(CloudsPaths(getenv), ", "))
}
