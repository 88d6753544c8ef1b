package contrail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
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

// Keystone obtains tokens from Keystone v3 or v2.0 with a password.
type Keystone struct {
	Creds Credentials
	HTTP  *http.Client // nil means http.DefaultClient

	mu    sync.Mutex
	token Secret
}

// Token implements Authenticator.
func (k *Keystone) Token(ctx context.Context, refresh bool) (Secret, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.token != "" && !refresh {
		return k.token, nil
	}
	var (
		t   Secret
		err error
	)
	if k.Creds.Version() == "2.0" {
		t, err = k.v2(ctx)
	} else {
		t, err = k.v3(ctx)
	}
	if err != nil {
		return "", err
	}
	k.token = t
	return t, nil
}

type keystoneName struct {
	Name string `json:"name"`
}

type v3Request struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password struct {
				User struct {
					Name     string       `json:"name"`
					Domain   keystoneName `json:"domain"`
					Password string       `json:"password"`
				} `json:"user"`
			} `json:"password"`
		} `json:"identity"`
		Scope *struct {
			Project struct {
				ID     string        `json:"id,omitempty"`
				Name   string        `json:"name,omitempty"`
				Domain *keystoneName `json:"domain,omitempty"`
			} `json:"project"`
		} `json:"scope,omitempty"`
	} `json:"auth"`
}

func (k *Keystone) v3(ctx context.Context) (Secret, error) {
	c := &k.Creds
	var r v3Request
	r.Auth.Identity.Methods = []string{"password"}
	u := &r.Auth.Identity.Password.User
	u.Name, u.Password = c.Username, string(c.Password)
	u.Domain.Name = first(c.UserDomainName, "Default")
	if c.ProjectID != "" || c.ProjectName != "" {
		r.Auth.Scope = new(struct {
			Project struct {
				ID     string        `json:"id,omitempty"`
				Name   string        `json:"name,omitempty"`
				Domain *keystoneName `json:"domain,omitempty"`
			} `json:"project"`
		})
		p := &r.Auth.Scope.Project
		if c.ProjectID != "" {
			p.ID = c.ProjectID
		} else {
			p.Name = c.ProjectName
			p.Domain = &keystoneName{first(c.ProjectDomainName, "Default")}
		}
	}
	resp, err := k.post(ctx, keystoneURL(c.AuthURL, "v3")+"/auth/tokens", r)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	t := resp.Header.Get("X-Subject-Token")
	if t == "" {
		return "", fmt.Errorf("keystone v3: no X-Subject-Token in the answer")
	}
	return Secret(t), nil
}

func (k *Keystone) v2(ctx context.Context) (Secret, error) {
	c := &k.Creds
	type pw struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	var r struct {
		Auth struct {
			PasswordCredentials pw     `json:"passwordCredentials"`
			TenantName          string `json:"tenantName,omitempty"`
			TenantID            string `json:"tenantId,omitempty"`
		} `json:"auth"`
	}
	r.Auth.PasswordCredentials = pw{c.Username, string(c.Password)}
	r.Auth.TenantName, r.Auth.TenantID = c.ProjectName, c.ProjectID
	resp, err := k.post(ctx, keystoneURL(c.AuthURL, "v2.0")+"/tokens", r)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		Access struct {
			Token struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"access"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil {
		return "", fmt.Errorf("keystone v2.0: decode token answer: %w", err)
	}
	if v.Access.Token.ID == "" {
		return "", fmt.Errorf("keystone v2.0: no access.token.id in the answer")
	}
	return Secret(v.Access.Token.ID), nil
}

// keystoneURL makes sure the auth URL ends in the version path: clouds.yaml
// files carry both "http://ks:5000" and "http://ks:5000/v3".
func keystoneURL(base, version string) string {
	base = strings.TrimRight(base, "/")
	if strings.HasSuffix(base, "/"+version) {
		return base
	}
	return base + "/" + version
}

func (k *Keystone) post(ctx context.Context, url string, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("keystone: %w", redactErr(err))
	}
	req.Header.Set("Content-Type", "application/json")
	hc := k.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("keystone: %w", redactErr(err))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, &APIError{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, Message: ParseErrorBody(msg)}
	}
	return resp, nil
}
