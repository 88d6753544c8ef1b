package contrail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	tokens2 "github.com/gophercloud/gophercloud/v2/openstack/identity/v2/tokens"
	tokens3 "github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// An Authenticator supplies the X-Auth-Token for config API requests.
type Authenticator interface {
	// Token returns a token, reusing the last one unless refresh is set
	// (after the API answered 401). An empty token means no header is sent.
	Token(ctx context.Context, refresh bool) (Secret, error)
}

// NoAuth is the Authenticator for servers run with --auth noauth or
// aaa_mode no-auth (lab setups).
type NoAuth struct{}

// Token implements Authenticator.
func (NoAuth) Token(context.Context, bool) (Secret, error) { return "", nil }

// Keystone obtains tokens from Keystone v3 (password, application
// credential or token method) or v2.0 (password or token) through a
// gophercloud ProviderClient. It authenticates on the first Token call and
// again when asked to refresh. It is safe for concurrent use.
type Keystone struct {
	opts    gophercloud.AuthOptions
	v2      bool
	tls     *tls.Config
	http    *http.Client
	secrets []string // what errors must never show

	mu sync.Mutex
	pc *gophercloud.ProviderClient
}

// NewKeystone resolves c — its clouds.yaml entry, found in the standard
// places and checked like every secret file (see secret.ReadFile), with the
// fields of c overriding it — and returns a Keystone that sends no request
// until Token is called. timeout bounds each Keystone request (0 means
// none). Errors name what is missing or which file is refused; they never
// hold a secret.
func NewKeystone(c Credentials, timeout time.Duration) (*Keystone, error) {
	r, err := c.resolve(os.Getenv)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = r.tls
	k := &Keystone{opts: r.opts, v2: r.v2, tls: r.tls, http: &http.Client{Transport: tr, Timeout: timeout}}
	for _, s := range []string{r.opts.Password, r.opts.ApplicationCredentialSecret, r.opts.TokenID} {
		if s != "" {
			k.secrets = append(k.secrets, s)
		}
	}
	return k, nil
}

// TLSConfig returns a copy of the TLS settings of the credentials (CA,
// client certificate, verification), for clients of the services
// Keystone vouches for.
func (k *Keystone) TLSConfig() *tls.Config { return k.tls.Clone() }

// Token implements Authenticator.
func (k *Keystone) Token(ctx context.Context, refresh bool) (Secret, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.pc == nil:
		if err := k.authenticate(ctx); err != nil {
			return "", err
		}
	case refresh && k.pc.ReauthFunc == nil:
		// A token used as it is cannot be renewed: check it again, so that
		// an expired one is reported as such.
		if err := k.authenticate(ctx); err != nil {
			return "", fmt.Errorf("the token was refused, and a token used as it is cannot be renewed: %w", err)
		}
	case refresh:
		if err := k.pc.Reauthenticate(ctx, k.pc.Token()); err != nil {
			return "", k.redactErr(err)
		}
	}
	return Secret(k.pc.Token()), nil
}

func (k *Keystone) authenticate(ctx context.Context) error {
	pc, err := openstack.NewClient(k.opts.IdentityEndpoint)
	if err != nil {
		return fmt.Errorf("keystone auth URL %q: %w", redactText(k.opts.IdentityEndpoint), k.redactErr(err))
	}
	pc.HTTPClient = *k.http
	opts := k.opts // gophercloud fills in defaults
	if k.v2 {
		err = openstack.AuthenticateV2(ctx, pc, opts, gophercloud.EndpointOpts{})
	} else {
		err = openstack.AuthenticateV3(ctx, pc, &opts, gophercloud.EndpointOpts{})
	}
	if err != nil {
		return k.redactErr(err)
	}
	k.pc = pc
	return nil
}

// Project returns the Contrail fq_name, [domain, project], of the project
// the token is scoped to, authenticating first if needed. Keystone's
// default domain (ID "default", name "Default") is Contrail's
// "default-domain"; another domain keeps its name, as Contrail's Keystone
// sync names them. Keystone v2.0 has no domains: its tenant is in
// "default-domain". An unscoped token is an error.
func (k *Keystone) Project(ctx context.Context) ([]string, error) {
	if _, err := k.Token(ctx, false); err != nil {
		return nil, err
	}
	k.mu.Lock()
	res := k.pc.GetAuthResult()
	k.mu.Unlock()
	var p *tokens3.Project
	var err error
	switch r := res.(type) {
	case tokens3.CreateResult:
		p, err = r.ExtractProject()
	case tokens3.GetResult:
		p, err = r.ExtractProject()
	case tokens2.CreateResult:
		var t *tokens2.Token
		if t, err = r.ExtractToken(); err == nil && t.Tenant.Name != "" {
			p = &tokens3.Project{Name: t.Tenant.Name, Domain: tokens3.Domain{ID: defaultDomain}}
		}
	default:
		return nil, fmt.Errorf("keystone: unexpected answer type %T", res)
	}
	if err != nil {
		return nil, fmt.Errorf("keystone: read the token's project: %w", k.redactErr(err))
	}
	if p == nil || p.Name == "" {
		return nil, errors.New("keystone: the token is not scoped to a project (set project_name, OS_PROJECT_NAME or --os-project-name)")
	}
	return ProjectFQName(p.Domain.ID, p.Domain.Name, p.Name), nil
}

// ProjectFQName returns the Contrail fq_name of a Keystone project in the
// domain with the given ID and name: Keystone's default domain is
// "default-domain".
func ProjectFQName(domainID, domainName, project string) []string {
	d := domainName
	if domainID == defaultDomain || domainName == "Default" || d == "" {
		d = "default-domain"
	}
	return []string{d, project}
}

// redactErr turns a gophercloud error into an *APIError for an answer of
// Keystone, or an error that reads the same with every secret taken out.
func (k *Keystone) redactErr(err error) error {
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		path := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			path = u.Path
		}
		return fmt.Errorf("keystone: %w", &APIError{Method: ue.Method, Path: path, Status: ue.Actual,
			Message: redactText(ParseErrorBody(ue.Body), k.secrets...)})
	}
	return &redactedError{msg: "keystone: " + redactText(err.Error(), k.secrets...), err: err}
}

// redactedError reads as msg, a scrubbed copy of err's text, and still
// matches what err matches (context.Canceled, ...).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactText replaces every secret and the userinfo of every URL in s with
// "[REDACTED]".
func redactText(s string, secrets ...string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			break
		}
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/?# \t\n\"'")
		if end < 0 {
			end = len(rest)
		}
		b.WriteString(s[:i+3])
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			b.WriteString(redacted)
			rest = rest[at:]
		}
		s = rest
	}
	b.WriteString(s)
	return b.String()
}
