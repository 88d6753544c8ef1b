package contrail

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"go.yaml.in/yaml/v3"

	"github.com/vrsniff/vrsniff/internal/secret"
)

// Credentials are what is needed to obtain a Keystone token, with the names
// the OpenStack command line tools give them: the auth section and keys of
// a clouds.yaml entry, the OS_* variables, the --os-* flags. An empty field
// is unset. Resolve them with NewKeystone.
type Credentials struct {
	Cloud string // clouds.yaml entry to start from (OS_CLOUD, --os-cloud); "" means none

	// AuthType is password, v3password, v2password, token, v3token,
	// v2token or v3applicationcredential; "" means: from the fields set
	// (a token, else an application credential, else a password).
	AuthType string
	AuthURL  string // Keystone, e.g. https://keystone:5000/v3; without a version path /v3 is added

	Username       string
	UserID         string
	Password       Secret
	UserDomainName string // with Username; neither this nor UserDomainID means the default domain
	UserDomainID   string

	ProjectName       string // the token's scope; none means an unscoped token
	ProjectID         string
	ProjectDomainName string // with ProjectName; neither this nor ProjectDomainID means the default domain
	ProjectDomainID   string

	ApplicationCredentialID     string
	ApplicationCredentialName   string // needs the user (UserID, or Username and its domain)
	ApplicationCredentialSecret Secret

	Token Secret // an existing token (auth type token)

	// IdentityAPIVersion is "3" or "2.0"; "" means 2.0 for an AuthURL
	// ending in /v2.0 or a v2 auth type, else 3.
	IdentityAPIVersion string

	CACert   string // PEM file with the CAs that sign Keystone's (and the config API's) certificate
	Cert     string // PEM client certificate for Keystone, with Key
	Key      string // its private key; a file open to other users is refused
	Insecure *bool  // skip TLS certificate verification; nil means unset
}

// Auth types, as clouds.yaml's auth_type and OS_AUTH_TYPE name them.
const (
	authPassword  = "password"
	authToken     = "token"
	authAppCred   = "v3applicationcredential"
	defaultDomain = "default" // ID of Keystone's default domain
	envCloudName  = "vrsniff-environment"
)

// CredentialsFromEnv reads the OS_* variables through getenv (pass
// os.Getenv): OS_CLOUD, OS_AUTH_TYPE, OS_AUTH_URL, OS_USERNAME, OS_USER_ID,
// OS_PASSWORD, OS_USER_DOMAIN_NAME, OS_USER_DOMAIN_ID, OS_PROJECT_NAME,
// OS_PROJECT_ID (or OS_TENANT_NAME, OS_TENANT_ID), OS_PROJECT_DOMAIN_NAME,
// OS_PROJECT_DOMAIN_ID (OS_DOMAIN_NAME and OS_DOMAIN_ID stand for both
// domains), OS_APPLICATION_CREDENTIAL_ID, _NAME and _SECRET, OS_TOKEN,
// OS_IDENTITY_API_VERSION, OS_CACERT, OS_CERT, OS_KEY and OS_INSECURE.
func CredentialsFromEnv(getenv func(string) string) Credentials {
	c := Credentials{
		Cloud:                       getenv("OS_CLOUD"),
		AuthType:                    getenv("OS_AUTH_TYPE"),
		AuthURL:                     getenv("OS_AUTH_URL"),
		Username:                    getenv("OS_USERNAME"),
		UserID:                      getenv("OS_USER_ID"),
		Password:                    Secret(getenv("OS_PASSWORD")),
		UserDomainName:              cmp.Or(getenv("OS_USER_DOMAIN_NAME"), getenv("OS_DOMAIN_NAME")),
		UserDomainID:                cmp.Or(getenv("OS_USER_DOMAIN_ID"), getenv("OS_DOMAIN_ID")),
		ProjectName:                 cmp.Or(getenv("OS_PROJECT_NAME"), getenv("OS_TENANT_NAME")),
		ProjectID:                   cmp.Or(getenv("OS_PROJECT_ID"), getenv("OS_TENANT_ID")),
		ProjectDomainName:           cmp.Or(getenv("OS_PROJECT_DOMAIN_NAME"), getenv("OS_DOMAIN_NAME")),
		ProjectDomainID:             cmp.Or(getenv("OS_PROJECT_DOMAIN_ID"), getenv("OS_DOMAIN_ID")),
		ApplicationCredentialID:     getenv("OS_APPLICATION_CREDENTIAL_ID"),
		ApplicationCredentialName:   getenv("OS_APPLICATION_CREDENTIAL_NAME"),
		ApplicationCredentialSecret: Secret(getenv("OS_APPLICATION_CREDENTIAL_SECRET")),
		Token:                       Secret(getenv("OS_TOKEN")),
		IdentityAPIVersion:          getenv("OS_IDENTITY_API_VERSION"),
		CACert:                      getenv("OS_CACERT"),
		Cert:                        getenv("OS_CERT"),
		Key:                         getenv("OS_KEY"),
	}
	if b, err := strconv.ParseBool(getenv("OS_INSECURE")); err == nil {
		c.Insecure = &b
	}
	return c
}

// Configured reports whether c names any Keystone: a clouds.yaml entry or an
// auth URL.
func (c Credentials) Configured() bool { return c.Cloud != "" || c.AuthURL != "" }

// Override returns c with what o sets put in its place, as the OpenStack
// command line tools let flags override variables and variables override
// clouds.yaml. A user, a project, a domain or an application credential is
// replaced whole: a user ID in o drops the user name of c. A password,
// token or application credential in o without an auth type drops c's
// auth type, so that the method follows the credential given.
func (c Credentials) Override(o Credentials) Credentials {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	pair := func(name, id *string, oname, oid string) {
		if oname != "" || oid != "" {
			*name, *id = oname, oid
		}
	}
	set(&c.Cloud, o.Cloud)
	switch {
	case o.AuthType != "":
		c.AuthType = o.AuthType
	case o.Password != "" || o.Token != "" || o.ApplicationCredentialSecret != "" ||
		o.ApplicationCredentialID != "" || o.ApplicationCredentialName != "":
		c.AuthType = ""
	}
	set(&c.AuthURL, o.AuthURL)
	pair(&c.Username, &c.UserID, o.Username, o.UserID)
	pair(&c.UserDomainName, &c.UserDomainID, o.UserDomainName, o.UserDomainID)
	pair(&c.ProjectName, &c.ProjectID, o.ProjectName, o.ProjectID)
	pair(&c.ProjectDomainName, &c.ProjectDomainID, o.ProjectDomainName, o.ProjectDomainID)
	pair(&c.ApplicationCredentialName, &c.ApplicationCredentialID, o.ApplicationCredentialName, o.ApplicationCredentialID)
	if o.Password != "" {
		c.Password = o.Password
	}
	if o.ApplicationCredentialSecret != "" {
		c.ApplicationCredentialSecret = o.ApplicationCredentialSecret
	}
	if o.Token != "" {
		c.Token = o.Token
	}
	set(&c.IdentityAPIVersion, o.IdentityAPIVersion)
	set(&c.CACert, o.CACert)
	set(&c.Cert, o.Cert)
	set(&c.Key, o.Key)
	if o.Insecure != nil {
		c.Insecure = o.Insecure
	}
	return c
}

// cloudFiles are the clouds.yaml and secure.yaml vrsniff found, read and
// checked; gophercloud parses them from memory, so that the bytes checked
// are the bytes used.
type cloudFiles struct {
	clouds, secure         []byte
	cloudsPath, securePath string // securePath "" when there is none
}

// configDirs are the directories searched for clouds.yaml and secure.yaml
// after the current one, as the OpenStack client libraries search them.
func configDirs(getenv func(string) string) []string {
	var d []string
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		d = append(d, filepath.Join(x, "openstack"))
	} else if h := getenv("HOME"); h != "" {
		d = append(d, filepath.Join(h, ".config", "openstack"))
	}
	return append(d, "/etc/openstack")
}

// cloudsPaths lists where clouds.yaml is looked for, in order:
// $OS_CLIENT_CONFIG_FILE alone when set, else ./clouds.yaml and the
// configDirs.
func cloudsPaths(getenv func(string) string) []string {
	if f := getenv("OS_CLIENT_CONFIG_FILE"); f != "" {
		return []string{f}
	}
	p := []string{"clouds.yaml"}
	for _, d := range configDirs(getenv) {
		p = append(p, filepath.Join(d, "clouds.yaml"))
	}
	return p
}

// securePaths lists where secure.yaml is looked for once clouds.yaml was
// found at cloudsPath: $OS_CLIENT_SECURE_FILE alone when set, else beside
// clouds.yaml, ./secure.yaml and the configDirs.
func securePaths(cloudsPath string, getenv func(string) string) []string {
	if f := getenv("OS_CLIENT_SECURE_FILE"); f != "" {
		return []string{f}
	}
	p := []string{filepath.Join(filepath.Dir(cloudsPath), "secure.yaml"), "secure.yaml"}
	for _, d := range configDirs(getenv) {
		p = append(p, filepath.Join(d, "secure.yaml"))
	}
	return slices.Compact(p)
}

// readFirst reads the first of paths that exists, through secret.ReadFile:
// both files may hold passwords, so one that other users can read is
// refused. It returns "" and no error when none exists.
func readFirst(paths []string) (string, []byte, error) {
	for _, p := range paths {
		b, err := secret.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var ee *secret.ExposedError
		if errors.As(err, &ee) {
			return "", nil, fmt.Errorf("%s holds credentials: %w", filepath.Base(p), err)
		}
		if err != nil {
			return "", nil, fmt.Errorf("read %s: %w", p, err)
		}
		return p, b, nil
	}
	return "", nil, nil
}

func loadCloudFiles(getenv func(string) string) (cloudFiles, error) {
	var f cloudFiles
	paths := cloudsPaths(getenv)
	var err error
	if f.cloudsPath, f.clouds, err = readFirst(paths); err != nil {
		return f, err
	}
	if f.cloudsPath == "" {
		return f, fmt.Errorf("no clouds.yaml found (looked in %s)", strings.Join(paths, ", "))
	}
	f.securePath, f.secure, err = readFirst(securePaths(f.cloudsPath, getenv))
	return f, err
}

// cloudKeys are the keys of a clouds.yaml entry that gophercloud's parser
// does not return.
type cloudKeys struct {
	AuthType           string    `yaml:"auth_type"`
	IdentityAPIVersion yaml.Node `yaml:"identity_api_version"` // 3, "3", 2.0, "v2.0"
	Key                string    `yaml:"key"`
	Auth               yaml.Node `yaml:"auth"`
}

func decodeCloud(data []byte, path, name string) (keys cloudKeys, names []string, found bool, err error) {
	var doc struct {
		Clouds map[string]cloudKeys `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return keys, nil, false, fmt.Errorf("parse %s: %w", path, err)
	}
	for n := range doc.Clouds {
		names = append(names, n)
	}
	slices.Sort(names)
	keys, found = doc.Clouds[name]
	return keys, names, found, nil
}

// parseCloud returns the credentials of the cloud name in a clouds.yaml
// document and an optional secure.yaml document (whose keys win), as
// gophercloud's clouds package reads them, and the TLS settings, which
// override may change. The paths are for messages.
func parseCloud(f cloudFiles, name string, override Credentials) (Credentials, *tls.Config, error) {
	keys, names, found, err := decodeCloud(f.clouds, f.cloudsPath, name)
	if err != nil {
		return Credentials{}, nil, err
	}
	if !found {
		return Credentials{}, nil, fmt.Errorf("cloud %q not in %s (has: %s)", name, f.cloudsPath, strings.Join(names, ", "))
	}
	hasAuth := keys.Auth.Kind != 0 && keys.Auth.Tag != "!!null"
	secure := f.secure
	if secure != nil {
		sk, _, sfound, err := decodeCloud(secure, f.securePath, name)
		if err != nil {
			return Credentials{}, nil, err
		}
		if sfound {
			keys.AuthType = cmp.Or(sk.AuthType, keys.AuthType)
			keys.Key = cmp.Or(sk.Key, keys.Key)
			if sk.IdentityAPIVersion.Kind != 0 {
				keys.IdentityAPIVersion = sk.IdentityAPIVersion
			}
			hasAuth = hasAuth || (sk.Auth.Kind != 0 && sk.Auth.Tag != "!!null")
		}
	} else {
		secure = []byte("clouds: {}\n")
	}
	if !hasAuth {
		return Credentials{}, nil, fmt.Errorf("cloud %q in %s: no auth section", name, f.cloudsPath)
	}
	if keys.IdentityAPIVersion.Kind != 0 && keys.IdentityAPIVersion.Kind != yaml.ScalarNode {
		return Credentials{}, nil, fmt.Errorf("cloud %q in %s: identity_api_version: want a number or a string", name, f.cloudsPath)
	}
	// gophercloud reads a client key itself: check it first.
	if k := cmp.Or(override.Key, keys.Key); k != "" {
		if _, err := secret.ReadFile(k); err != nil {
			return Credentials{}, nil, fmt.Errorf("client key: %w", err)
		}
	}
	opts := []clouds.ParseOption{
		clouds.WithCloudName(name),
		clouds.WithCloudsYAML(bytes.NewReader(f.clouds)),
		clouds.WithSecureYAML(bytes.NewReader(secure)),
	}
	if override.CACert != "" {
		opts = append(opts, clouds.WithCACertPath(override.CACert))
	}
	if override.Cert != "" {
		opts = append(opts, clouds.WithClientCertPath(override.Cert))
	}
	if override.Key != "" {
		opts = append(opts, clouds.WithClientKeyPath(override.Key))
	}
	if override.Insecure != nil {
		opts = append(opts, clouds.WithInsecure(*override.Insecure))
	}
	ao, _, tc, err := clouds.Parse(opts...)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("cloud %q in %s: %s", name, f.cloudsPath, redactText(err.Error()))
	}
	c := Credentials{
		Cloud:                       name,
		AuthType:                    keys.AuthType,
		AuthURL:                     ao.IdentityEndpoint,
		Username:                    ao.Username,
		UserID:                      ao.UserID,
		Password:                    Secret(ao.Password),
		UserDomainName:              ao.DomainName,
		UserDomainID:                ao.DomainID,
		ApplicationCredentialID:     ao.ApplicationCredentialID,
		ApplicationCredentialName:   ao.ApplicationCredentialName,
		ApplicationCredentialSecret: Secret(ao.ApplicationCredentialSecret),
		Token:                       Secret(ao.TokenID),
		IdentityAPIVersion:          strings.TrimPrefix(keys.IdentityAPIVersion.Value, "v"),
	}
	if s := ao.Scope; s != nil {
		switch {
		case s.TrustID != "" || s.System:
			return Credentials{}, nil, fmt.Errorf("cloud %q in %s: trust and system scopes are not supported: the config API needs a project", name, f.cloudsPath)
		case s.ProjectID != "":
			c.ProjectID = s.ProjectID
		case s.ProjectName != "":
			c.ProjectName, c.ProjectDomainName, c.ProjectDomainID = s.ProjectName, s.DomainName, s.DomainID
		}
	}
	return c, tc, nil
}

// resolved is what NewKeystone needs: gophercloud's options, the Keystone
// version and the TLS settings.
type resolved struct {
	opts gophercloud.AuthOptions
	v2   bool
	tls  *tls.Config
}

// resolve merges c over its clouds.yaml entry (if any), picks the auth
// method and builds gophercloud's options. The checks here are the ones
// that need no server: a missing password is reported before anything is
// sent.
func (c Credentials) resolve(getenv func(string) string) (*resolved, error) {
	var r resolved
	if c.Cloud != "" {
		f, err := loadCloudFiles(getenv)
		if err != nil {
			return nil, err
		}
		base, tc, err := parseCloud(f, c.Cloud, c)
		if err != nil {
			return nil, err
		}
		c, r.tls = base.Override(c), tc
	} else {
		// The same parser builds the TLS settings, from an empty entry.
		empty := cloudFiles{clouds: []byte("clouds:\n  " + envCloudName + ":\n    auth: {}\n"), cloudsPath: "OS_* variables"}
		_, tc, err := parseCloud(empty, envCloudName, c)
		if err != nil {
			return nil, err
		}
		r.tls = tc
	}
	if c.AuthURL == "" {
		return nil, errors.New("no Keystone auth URL: set auth_url in clouds.yaml, OS_AUTH_URL or --os-auth-url")
	}
	method, v2, err := c.method()
	if err != nil {
		return nil, err
	}
	r.v2 = v2
	o := &r.opts
	o.IdentityEndpoint = c.AuthURL
	user := func() error {
		switch {
		case c.UserID != "":
			o.UserID = c.UserID
		case c.Username != "":
			o.Username = c.Username
			if !v2 {
				// An ID names the domain for sure: it wins, as in keystoneauth.
				o.DomainID = cmp.Or(c.UserDomainID, defaultDomain)
				if c.UserDomainID == "" && c.UserDomainName != "" {
					o.DomainID, o.DomainName = "", c.UserDomainName
				}
			}
		default:
			return errors.New("no user: set username or user_id in clouds.yaml, OS_USERNAME or --os-username")
		}
		return nil
	}
	switch method {
	case authPassword:
		if err := user(); err != nil {
			return nil, err
		}
		if c.Password == "" {
			return nil, errors.New("no password: set it in clouds.yaml or secure.yaml, OS_PASSWORD or --os-password")
		}
		o.Password = string(c.Password)
		o.AllowReauth = true
	case authAppCred:
		if c.ApplicationCredentialSecret == "" {
			return nil, errors.New("no application credential secret: set application_credential_secret, OS_APPLICATION_CREDENTIAL_SECRET or --os-application-credential-secret")
		}
		if c.ApplicationCredentialID != "" {
			o.ApplicationCredentialID = c.ApplicationCredentialID
		} else {
			o.ApplicationCredentialName = c.ApplicationCredentialName
			if err := user(); err != nil {
				return nil, fmt.Errorf("application credential by name: %w", err)
			}
		}
		o.ApplicationCredentialSecret = string(c.ApplicationCredentialSecret)
		o.AllowReauth = true
		// The credential carries its project: Keystone refuses a scope.
		return &r, nil
	case authToken:
		if c.Token == "" {
			return nil, errors.New("no token: set OS_TOKEN or --os-token")
		}
		o.TokenID = string(c.Token)
	}
	switch {
	case v2:
		o.TenantID, o.TenantName = c.ProjectID, c.ProjectName
	case c.ProjectID != "":
		o.Scope = &gophercloud.AuthScope{ProjectID: c.ProjectID}
	case c.ProjectName != "":
		o.Scope = &gophercloud.AuthScope{ProjectName: c.ProjectName, DomainID: cmp.Or(c.ProjectDomainID, defaultDomain)}
		if c.ProjectDomainID == "" && c.ProjectDomainName != "" {
			o.Scope.DomainID, o.Scope.DomainName = "", c.ProjectDomainName
		}
	}
	// A token is renewed by asking for a new scope with it; one that is
	// passed through as it is cannot be (gophercloud refuses the option).
	if method == authToken {
		o.AllowReauth = v2 || o.Scope != nil
	}
	return &r, nil
}

// method returns the auth method of c (authPassword, authToken or
// authAppCred) and whether it goes to Keystone v2.0.
func (c Credentials) method() (string, bool, error) {
	var m string
	var v2 bool
	switch strings.ToLower(c.AuthType) {
	case "":
		switch {
		case c.Token != "":
			m = authToken
		case c.ApplicationCredentialID != "" || c.ApplicationCredentialName != "":
			m = authAppCred
		default:
			m = authPassword
		}
	case "password", "v3password":
		m = authPassword
	case "v2password":
		m, v2 = authPassword, true
	case "token", "v3token":
		m = authToken
	case "v2token":
		m, v2 = authToken, true
	case "v3applicationcredential", "applicationcredential", "application_credential":
		m = authAppCred
	default:
		return "", false, fmt.Errorf("auth type %q is not supported (use password, token or v3applicationcredential)", c.AuthType)
	}
	switch v := strings.TrimPrefix(c.IdentityAPIVersion, "v"); {
	case v == "2" || v == "2.0":
		v2 = true
	case v == "3" || strings.HasPrefix(v, "3."):
		if v2 {
			return "", false, fmt.Errorf("auth type %s needs Keystone v2.0, not identity API version %s", c.AuthType, c.IdentityAPIVersion)
		}
	case v != "":
		return "", false, fmt.Errorf("identity API version %q is not supported (use 3 or 2.0)", c.IdentityAPIVersion)
	case strings.HasSuffix(strings.TrimRight(c.AuthURL, "/"), "/v2.0"):
		v2 = true
	}
	if v2 && m == authAppCred {
		return "", false, errors.New("application credentials need Keystone v3")
	}
	return m, v2, nil
}
