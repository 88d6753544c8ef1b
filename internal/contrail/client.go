// Package contrail is a small client for the Contrail / Tungsten Fabric
// config API (the VNC REST API, port 8082): create, read, update and delete
// objects by UUID or fq_name, update references one at a time, and
// authenticate through Keystone (v3 or v2.0) or not at all.
//
// Objects travel as JSON; callers marshal their own typed structs (see
// types.go) or json.RawMessage, so that fields the client does not know
// survive a read-modify-write.
package contrail

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vrsniff/vrsniff/internal/secret"
)

// Config configures a Client.
type Config struct {
	// Endpoint is the config API base URL, e.g. http://10.0.0.10:8082.
	Endpoint string
	// Auth supplies tokens; nil means NoAuth.
	Auth Authenticator
	// HTTP is the transport; nil means a client with a 30 s timeout.
	HTTP *http.Client
	// Retries is how often a request is repeated after a 5xx answer or a
	// connection error; 0 means 3, negative means never.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one; 0 means 500 ms.
	Backoff time.Duration
	// Logger receives one debug record per request; nil discards them.
	Logger *slog.Logger
	// DryRun, when set, receives every request that would change
	// something (method, URL, JSON body) instead of the server; reads
	// still go to the server so that the printed requests are exact.
	DryRun io.Writer
}

// Client talks to one config API server. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	auth    Authenticator
	http    *http.Client
	retries int
	backoff time.Duration
	log     *slog.Logger
	dryRun  io.Writer
	dryN    atomic.Int64
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.Endpoint, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("config API endpoint %q: want http(s)://host:port", secret.RedactURL(cfg.Endpoint))
	}
	c := &Client{base: u, auth: cfg.Auth, http: cfg.HTTP, retries: cfg.Retries,
		backoff: cfg.Backoff, log: cfg.Logger, dryRun: cfg.DryRun}
	if c.auth == nil {
		c.auth = NoAuth{}
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.retries == 0 {
		c.retries = 3
	}
	if c.backoff == 0 {
		c.backoff = 500 * time.Millisecond
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// HTTPClient returns an http.Client with the given timeout that trusts the
// CA certificates in caFile (PEM; empty means the system pool) or, with
// insecure, any certificate.
func HTTPClient(caFile string, insecure bool, timeout time.Duration) (*http.Client, error) {
	tc := &tls.Config{InsecureSkipVerify: insecure} //nolint:gosec // an explicit user choice for lab setups
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates", caFile)
		}
		tc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// DryRun reports whether the client prints changes instead of sending
// them.
func (c *Client) DryRun() bool { return c.dryRun != nil }

// Endpoint returns the config API base URL.
func (c *Client) Endpoint() string { return c.base.String() }

// Plural is the collection path segment of an object type: the API simply
// appends "s" ("network-policys").
func Plural(typ string) string { return typ + "s" }

// Create posts a new object of type typ (hyphenated, e.g. "network-policy")
// and returns its UUID. obj is the object's content, without the type
// wrapper.
func (c *Client) Create(ctx context.Context, typ string, obj any) (string, error) {
	var out map[string]struct {
		UUID string `json:"uuid"`
	}
	if err := c.do(ctx, http.MethodPost, "/"+Plural(typ), map[string]any{typ: obj}, &out, true); err != nil {
		return "", err
	}
	if c.dryRun != nil {
		return fmt.Sprintf("dry-run-%d", c.dryN.Add(1)), nil
	}
	id := out[typ].UUID
	if id == "" {
		return "", fmt.Errorf("create %s: the answer carries no uuid", typ)
	}
	return id, nil
}

// Read fetches one object, with everything a plain read holds, and
// decodes its content into out.
func (c *Client) Read(ctx context.Context, typ, uuid string, out any) error {
	return c.ReadFields(ctx, typ, uuid, nil, out)
}

// ReadFields fetches one object asking for fields by name (GET
// /<type>/<uuid>?fields=a,b) and decodes its content into out. The server
// then answers with those fields and the object's identity (uuid,
// fq_name, parent) only: back references and children, which a plain read
// may leave out, come only when named here.
func (c *Client) ReadFields(ctx context.Context, typ, uuid string, fields []string, out any) error {
	var raw map[string]json.RawMessage
	path := "/" + typ + "/" + url.PathEscape(uuid)
	if len(fields) > 0 {
		path += "?" + url.Values{"fields": {strings.Join(fields, ",")}}.Encode()
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &raw, false); err != nil {
		return err
	}
	body, ok := raw[typ]
	if !ok {
		return fmt.Errorf("read %s %s: the answer has no %q object", typ, uuid, typ)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("read %s %s: %w", typ, uuid, err)
	}
	return nil
}

// Update sends a partial update: each top-level field in fields replaces
// that field whole, and a *_refs list replaces the whole list. Fields not
// sent are left alone; a field sent as null is cleared.
func (c *Client) Update(ctx context.Context, typ, uuid string, fields any) error {
	return c.do(ctx, http.MethodPut, "/"+typ+"/"+url.PathEscape(uuid), map[string]any{typ: fields}, nil, true)
}

// Delete removes an object. The server refuses (409) while the object has
// children or is referenced.
func (c *Client) Delete(ctx context.Context, typ, uuid string) error {
	return c.do(ctx, http.MethodDelete, "/"+typ+"/"+url.PathEscape(uuid), nil, nil, true)
}

// FQNameToID resolves a fully qualified name to a UUID; a missing object
// gives an error matching ErrNotFound.
func (c *Client) FQNameToID(ctx context.Context, typ string, fqName []string) (string, error) {
	var out struct {
		UUID string `json:"uuid"`
	}
	body := map[string]any{"type": typ, "fq_name": fqName}
	if err := c.do(ctx, http.MethodPost, "/fqname-to-id", body, &out, false); err != nil {
		return "", err
	}
	return out.UUID, nil
}

// ReadByFQName resolves fqName and reads the object into out.
func (c *Client) ReadByFQName(ctx context.Context, typ string, fqName []string, out any) (string, error) {
	id, err := c.FQNameToID(ctx, typ, fqName)
	if err != nil {
		return "", err
	}
	return id, c.Read(ctx, typ, id, out)
}

// UpdateByFQName resolves fqName and updates the object (see Update).
func (c *Client) UpdateByFQName(ctx context.Context, typ string, fqName []string, fields any) error {
	id, err := c.FQNameToID(ctx, typ, fqName)
	if err != nil {
		return err
	}
	return c.Update(ctx, typ, id, fields)
}

// DeleteByFQName resolves fqName and deletes the object (see Delete).
func (c *Client) DeleteByFQName(ctx context.Context, typ string, fqName []string) error {
	id, err := c.FQNameToID(ctx, typ, fqName)
	if err != nil {
		return err
	}
	return c.Delete(ctx, typ, id)
}

// List returns the content of every object of type typ (detail=True);
// parentUUID, when set, limits the list to one parent's children. A
// detail list carries properties and forward references only: back
// references and children come only when named in fields (the real
// server's rule, see the spec's "What the real API server does").
func (c *Client) List(ctx context.Context, typ, parentUUID string, fields ...string) ([]json.RawMessage, error) {
	q := url.Values{"detail": {"True"}}
	if parentUUID != "" {
		q.Set("parent_id", parentUUID)
	}
	if len(fields) > 0 {
		q.Set("fields", strings.Join(fields, ","))
	}
	var out map[string][]map[string]json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/"+Plural(typ)+"?"+q.Encode(), nil, &out, false); err != nil {
		return nil, err
	}
	var objs []json.RawMessage
	for _, o := range out[Plural(typ)] {
		if b, ok := o[typ]; ok {
			objs = append(objs, b)
		}
	}
	return objs, nil
}

// Reference operations for RefUpdate.
const (
	RefAdd    = "ADD"
	RefDelete = "DELETE"
)

// RefUpdate adds or removes one reference without touching the object's
// other references (POST /ref-update).
type RefUpdate struct {
	Operation string   `json:"operation"` // RefAdd or RefDelete
	Type      string   `json:"type"`      // type of the referring object
	UUID      string   `json:"uuid"`      // the referring object
	RefType   string   `json:"ref-type"`  // type of the referred-to object
	RefFQName []string `json:"ref-fq-name,omitempty"`
	RefUUID   string   `json:"ref-uuid,omitempty"`
	Attr      any      `json:"attr,omitempty"`
}

// UpdateRef applies r.
func (c *Client) UpdateRef(ctx context.Context, r RefUpdate) error {
	return c.do(ctx, http.MethodPost, "/ref-update", r, nil, true)
}

// do sends one request, with re-authentication and retries. write marks
// requests that change state (the ones DryRun intercepts).
func (c *Client) do(ctx context.Context, method, path string, body, out any, write bool) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
	}
	if write && c.dryRun != nil {
		var buf bytes.Buffer
		// The URL may carry a password (https://user:pass@host).
		fmt.Fprintf(&buf, "%s %s\n", method, secret.RedactURL(c.base.String())+path)
		if payload != nil {
			_ = json.Indent(&buf, payload, "", "  ")
			buf.WriteByte('\n')
		}
		buf.WriteByte('\n')
		_, err := c.dryRun.Write(buf.Bytes())
		return err
	}
	reauthed := false
	for attempt := 0; ; attempt++ {
		token, err := c.auth.Token(ctx, false)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		status, respBody, err := c.send(ctx, method, path, payload, token)
		c.log.Debug("config api", "method", method, "path", path, "status", status, "attempt", attempt, "err", err)
		retry := err != nil || status >= 500
		if retry && attempt < c.retries && ctx.Err() == nil {
			wait := c.backoff << attempt
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
			}
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if status == http.StatusUnauthorized && !reauthed {
			// Tokens expire mid-run; a fresh one is worth exactly one retry.
			reauthed = true
			if _, err := c.auth.Token(ctx, true); err != nil {
				return fmt.Errorf("%s %s: re-authenticate: %w", method, path, err)
			}
			attempt--
			continue
		}
		if status/100 != 2 {
			msg := ParseErrorBody(respBody)
			if token != "" {
				msg = strings.ReplaceAll(msg, string(token), redacted)
			}
			p, _, _ := strings.Cut(path, "?")
			return &APIError{Method: method, Path: p, Status: status, Message: msg}
		}
		if out != nil && len(bytes.TrimSpace(respBody)) > 0 {
			if err := json.Unmarshal(respBody, out); err != nil {
				return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
			}
		}
		return nil
	}
}

// maxBody bounds how much of an answer is read: a detail list of a big
// project is a few MB.
const maxBody = 64 << 20

func (c *Client) send(ctx context.Context, method, path string, payload []byte, token Secret) (int, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return 0, nil, redactErr(err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", string(token))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error quotes the URL (never the header), with its userinfo.
		return 0, nil, redactErr(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, b, nil
}

// IsNotFound reports whether err means the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// redactErr takes the userinfo out of the URL a *url.Error quotes: net/http
// hides the password there, not a user name that is a token.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = secret.RedactURL(ue.URL)
	}
	return err
}
