package fakeapi

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Identity is what the fake Keystone knows: one user, the one project it
// scopes tokens to, and the user's application credentials (all for that
// project). Without SetIdentity it is Options.Username, Options.Password and
// Options.Project, in the default domain (ID "default", name "Default"),
// with IDs "user-NAME" and "project-NAME"; an empty ProjectName accepts any
// project scope.
type Identity struct {
	UserID, Username, Password         string
	UserDomainID, UserDomainName       string
	ProjectID, ProjectName             string
	ProjectDomainID, ProjectDomainName string
	AppCredentials                     []AppCredential
}

// AppCredential is a Keystone application credential of the Identity's
// user.
type AppCredential struct {
	ID, Name, Secret string
}

// keystone is the fake Keystone's state, kept in Server.ks.
type keystone struct {
	id     *Identity
	tokens map[string]tokenInfo // what each issued token was issued for
}

// tokenInfo is what a token stands for: its method and project.
type tokenInfo struct {
	method  string
	project *ksProject // nil: unscoped
}

type ksProject struct {
	ID, Name, DomainID, DomainName string
}

// SetIdentity replaces the user, project and application credentials the
// fake Keystone accepts.
func (s *Server) SetIdentity(id Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ks.id = &id
}

// Identity returns what the fake Keystone accepts (see Identity for the
// defaults).
func (s *Server) Identity() Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identity()
}

func (s *Server) identity() Identity {
	if s.ks.id != nil {
		return *s.ks.id
	}
	id := Identity{UserID: "user-" + s.opts.Username, Username: s.opts.Username, Password: s.opts.Password,
		UserDomainID: "default", UserDomainName: "Default", ProjectName: s.opts.Project,
		ProjectDomainID: "default", ProjectDomainName: "Default"}
	if s.opts.Project != "" {
		id.ProjectID = "project-" + s.opts.Project
	}
	return id
}

// TokenMethod returns the method ("password", "application_credential",
// "token") a token was issued with, or "" for a token Keystone never
// issued.
func (s *Server) TokenMethod(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ks.tokens[token].method
}

func (s *Server) issue(info tokenInfo) string {
	t := "tok-" + s.newUUID()
	s.tokens[t] = true
	if s.ks.tokens == nil {
		s.ks.tokens = map[string]tokenInfo{}
	}
	s.ks.tokens[t] = info
	s.issued++
	s.history = append(s.history, t)
	return t
}

// keystoneError answers as Keystone does: JSON with the code, a title and
// a message.
func keystoneError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "title": http.StatusText(code), "message": msg}})
}

func keystoneDenied(w http.ResponseWriter) {
	keystoneError(w, http.StatusUnauthorized, "The request you have made requires authentication.")
}

type ksDomain struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type ksUser struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Password string    `json:"password"`
	Domain   *ksDomain `json:"domain"`
}

// domainIs reports whether d names the domain with the given ID and name.
func domainIs(d *ksDomain, id, name string) bool {
	return d != nil && (d.ID != "" && d.ID == id || d.ID == "" && d.Name != "" && d.Name == name)
}

// userIs reports whether u names the identity's user: by ID, or by name and
// domain.
func (id *Identity) userIs(u *ksUser) bool {
	if u == nil {
		return false
	}
	if u.ID != "" {
		return u.ID == id.UserID
	}
	return u.Name != "" && u.Name == id.Username && domainIs(u.Domain, id.UserDomainID, id.UserDomainName)
}

func (id *Identity) project() *ksProject {
	if id.ProjectName == "" {
		return nil
	}
	return &ksProject{id.ProjectID, id.ProjectName, id.ProjectDomainID, id.ProjectDomainName}
}

// keystoneV3 serves /v3/auth/tokens: POST issues a token (methods password,
// application_credential and token; project scope by ID or by name and
// domain), GET validates X-Subject-Token for the holder of X-Auth-Token.
func (s *Server) keystoneV3(w http.ResponseWriter, r *http.Request, body []byte) {
	switch r.Method {
	case http.MethodPost:
		s.keystoneV3Issue(w, body)
	case http.MethodGet:
		if !s.tokens[r.Header.Get("X-Auth-Token")] {
			keystoneDenied(w)
			return
		}
		subject := r.Header.Get("X-Subject-Token")
		info, ok := s.ks.tokens[subject]
		if !ok || !s.tokens[subject] {
			// Keystone names the token it could not find.
			keystoneError(w, http.StatusNotFound, "Could not find token: "+subject+".")
			return
		}
		s.tokenAnswer(w, http.StatusOK, subject, info)
	default:
		keystoneError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
	}
}

func (s *Server) keystoneV3Issue(w http.ResponseWriter, body []byte) {
	var req struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password *struct {
					User *ksUser `json:"user"`
				} `json:"password"`
				Token *struct {
					ID string `json:"id"`
				} `json:"token"`
				ApplicationCredential *struct {
					ID     string  `json:"id"`
					Name   string  `json:"name"`
					Secret string  `json:"secret"`
					User   *ksUser `json:"user"`
				} `json:"application_credential"`
			} `json:"identity"`
			Scope *struct {
				Project *struct {
					ID     string    `json:"id"`
					Name   string    `json:"name"`
					Domain *ksDomain `json:"domain"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Auth.Identity.Methods) != 1 {
		keystoneError(w, http.StatusBadRequest, "Expecting to find identity in auth.")
		return
	}
	id := s.identity()
	a := &req.Auth.Identity
	info := tokenInfo{method: a.Methods[0]}
	switch info.method {
	case "password":
		if a.Password == nil || !id.userIs(a.Password.User) || a.Password.User.Password != id.Password {
			keystoneDenied(w)
			return
		}
	case "token":
		if a.Token == nil {
			keystoneError(w, http.StatusBadRequest, "Expecting to find token in identity.")
			return
		}
		if !s.tokens[a.Token.ID] {
			keystoneDenied(w)
			return
		}
		info.project = s.ks.tokens[a.Token.ID].project
	case "application_credential":
		ac := a.ApplicationCredential
		if ac == nil || !id.appCredOK(ac.ID, ac.Name, ac.Secret, ac.User) {
			keystoneDenied(w)
			return
		}
		if req.Auth.Scope != nil {
			keystoneError(w, http.StatusUnauthorized, "Application credentials cannot request a scope.")
			return
		}
		info.project = id.project()
	default:
		keystoneError(w, http.StatusBadRequest, "Unsupported authentication method: "+info.method)
		return
	}
	if sc := req.Auth.Scope; sc != nil && sc.Project != nil {
		p := sc.Project
		want := id.project()
		switch {
		case want == nil && p.Name != "" && p.Domain != nil:
			// No project configured: any named one is accepted.
			info.project = &ksProject{"project-" + p.Name, p.Name, p.Domain.ID, p.Domain.Name}
			if p.Domain.ID == "" {
				info.project.DomainID = strings.ToLower(p.Domain.Name)
			}
		case want != nil && (p.ID != "" && p.ID == want.ID ||
			p.ID == "" && p.Name == want.Name && domainIs(p.Domain, want.DomainID, want.DomainName)):
			info.project = want
		default:
			keystoneDenied(w)
			return
		}
	}
	s.tokenAnswer(w, http.StatusCreated, s.issue(info), info)
}

func (id *Identity) appCredOK(acID, name, secret string, user *ksUser) bool {
	for _, c := range id.AppCredentials {
		if secret != c.Secret {
			continue
		}
		if acID != "" && acID == c.ID || acID == "" && name != "" && name == c.Name && id.userIs(user) {
			return true
		}
	}
	return false
}

// tokenAnswer writes a v3 token document as Keystone does, with an empty
// catalog.
func (s *Server) tokenAnswer(w http.ResponseWriter, code int, token string, info tokenInfo) {
	id := s.identity()
	t := map[string]any{
		"methods":    []string{info.method},
		"expires_at": "2099-01-01T00:00:00.000000Z",
		"issued_at":  "2000-01-01T00:00:00.000000Z",
		"user": map[string]any{"id": id.UserID, "name": id.Username,
			"domain": map[string]any{"id": id.UserDomainID, "name": id.UserDomainName}},
		"catalog": []any{},
	}
	if p := info.project; p != nil {
		t["project"] = map[string]any{"id": p.ID, "name": p.Name, "domain": map[string]any{"id": p.DomainID, "name": p.DomainName}}
		t["roles"] = []any{map[string]any{"id": "role-admin", "name": "admin"}}
	}
	w.Header().Set("X-Subject-Token", token)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"token": t})
}

// keystoneV2 serves POST /v2.0/tokens with passwordCredentials or a token,
// scoped to a tenant by name or ID.
func (s *Server) keystoneV2(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		keystoneError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
		return
	}
	var req struct {
		Auth struct {
			PasswordCredentials *struct {
				Username string `json:"username"`
				Password string `json:"password"`
			} `json:"passwordCredentials"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
			TenantName string `json:"tenantName"`
			TenantID   string `json:"tenantId"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		keystoneError(w, http.StatusBadRequest, "Expecting to find auth in request body.")
		return
	}
	id := s.identity()
	a := &req.Auth
	info := tokenInfo{method: "password"}
	switch {
	case a.PasswordCredentials != nil:
		if a.PasswordCredentials.Username != id.Username || a.PasswordCredentials.Password != id.Password {
			keystoneDenied(w)
			return
		}
	case a.Token != nil && s.tokens[a.Token.ID]:
		info.method = "token"
	default:
		keystoneDenied(w)
		return
	}
	tenant := map[string]any{}
	if a.TenantName != "" || a.TenantID != "" {
		want := id.project()
		if want != nil && a.TenantName != want.Name && a.TenantID != want.ID {
			keystoneDenied(w)
			return
		}
		if want == nil {
			want = &ksProject{"project-" + a.TenantName, a.TenantName, "default", "Default"}
		}
		info.project = want
		tenant = map[string]any{"id": want.ID, "name": want.Name}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access": map[string]any{
		"token":          map[string]any{"id": s.issue(info), "expires": "2099-01-01T00:00:00Z", "tenant": tenant},
		"user":           map[string]any{"id": id.UserID, "name": id.Username},
		"serviceCatalog": []any{},
	}})
}
