package contrail

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// DefaultEndpoint is the config API address on a controller node.
const DefaultEndpoint = "http://127.0.0.1:8082"

// Connection says how a command reaches the config API and Keystone, in
// the precedence of the OpenStack command line tools: what is given here
// wins over the OS_* variables, which win over the clouds.yaml entry.
type Connection struct {
	// Endpoint is the config API URL; "" means $CONTRAIL_API, else
	// DefaultEndpoint.
	Endpoint string
	// Credentials are the ones given explicitly (the --os-* flags).
	Credentials Credentials
	// Insecure skips TLS verification, of Keystone and the config API.
	Insecure bool
	// NoAuth sends no token (an API server run with --auth noauth).
	NoAuth bool
	// CAFile is the PEM CA bundle of the config API; "" means the
	// credentials' CACert, or Keystone's TLS settings when it is used.
	CAFile  string
	Timeout time.Duration // of each request
	DryRun  io.Writer     // see Config.DryRun
	Log     *slog.Logger
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

func (c *Connection) getenv(k string) string {
	if c.Getenv == nil {
		return os.Getenv(k)
	}
	return c.Getenv(k)
}

// ResolvedCredentials merges c.Credentials and Insecure over the OS_*
// variables.
func (c *Connection) ResolvedCredentials() Credentials {
	r := CredentialsFromEnv(c.getenv).Override(c.Credentials)
	if c.Insecure {
		r.Insecure = &c.Insecure
	}
	return r
}

// Session is a config API client and, when credentials are used, the
// Keystone authenticator whose token it sends.
type Session struct {
	API      *Client
	Keystone *Keystone // nil without credentials
}

// Connect builds the Session of c. Without NoAuth and without credentials
// it warns on c.Log and sends requests without a token.
func Connect(c Connection) (*Session, error) {
	log := cmp.Or(c.Log, slog.New(slog.DiscardHandler))
	creds := c.ResolvedCredentials()
	var s Session
	var auth Authenticator
	switch {
	case c.NoAuth:
	case creds.Configured():
		k, err := NewKeystone(creds, c.Timeout)
		if err != nil {
			return nil, err
		}
		s.Keystone, auth = k, k
	default:
		log.Warn("no credentials (--os-cloud, OS_CLOUD, --os-auth-url or OS_AUTH_URL): sending requests without a token")
	}
	var hc *http.Client
	if s.Keystone != nil && c.CAFile == "" {
		// The config API sits behind the same PKI as Keystone.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = s.Keystone.TLSConfig()
		hc = &http.Client{Transport: tr, Timeout: c.Timeout}
	} else {
		var err error
		insecure := creds.Insecure != nil && *creds.Insecure
		if hc, err = HTTPClient(cmp.Or(c.CAFile, creds.CACert), insecure, c.Timeout); err != nil {
			return nil, err
		}
	}
	api, err := New(Config{Endpoint: cmp.Or(c.Endpoint, c.getenv("CONTRAIL_API"), DefaultEndpoint),
		Auth: auth, HTTP: hc, Logger: log, DryRun: c.DryRun})
	if err != nil {
		return nil, err
	}
	s.API = api
	return &s, nil
}

// Project returns the Contrail fq_name ([domain, project]) of the project
// the Keystone token is scoped to, authenticating if needed (see
// Keystone.Project), or nil when no credentials are used.
func (s *Session) Project(ctx context.Context) ([]string, error) {
	if s.Keystone == nil {
		return nil, nil
	}
	return s.Keystone.Project(ctx)
}
