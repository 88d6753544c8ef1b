package fakeapi

import (
	"encoding/json"
	"net/http"
)

func (s *Server) issue() string {
	t := "tok-" + s.newUUID()
	s.tokens[t] = true
	s.issued++
	s.history = append(s.history, t)
	return t
}

func keystoneDenied(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"error": {"message": "The request you have made requires authentication.", "code": 401, "title": "Unauthorized"}}`))
}

func (s *Server) keystoneV3(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
						Domain   struct {
							Name string `json:"name"`
						} `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					Name   string `json:"name"`
					Domain struct {
						Name string `json:"name"`
					} `json:"domain"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Auth.Identity.Methods) != 1 || req.Auth.Identity.Methods[0] != "password" {
		http.Error(w, `{"error": {"message": "Expecting to find identity in auth", "code": 400}}`, http.StatusBadRequest)
		return
	}
	u := req.Auth.Identity.Password.User
	p := req.Auth.Scope.Project
	if u.Name != s.opts.Username || u.Password != s.opts.Password || u.Domain.Name == "" ||
		(s.opts.Project != "" && (p.Name != s.opts.Project || p.Domain.Name == "")) {
		keystoneDenied(w)
		return
	}
	w.Header().Set("X-Subject-Token", s.issue())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"token": {"methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z"}}`))
}

func (s *Server) keystoneV2(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		Auth struct {
			PasswordCredentials struct {
				Username string `json:"username"`
				Password string `json:"password"`
			} `json:"passwordCredentials"`
			TenantName string `json:"tenantName"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, `{"error": {"message": "bad request", "code": 400}}`, http.StatusBadRequest)
		return
	}
	pc := req.Auth.PasswordCredentials
	if pc.Username != s.opts.Username || pc.Password != s.opts.Password ||
		(s.opts.Project != "" && req.Auth.TenantName != s.opts.Project) {
		keystoneDenied(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access": map[string]any{"token": map[string]any{"id": s.issue()}}})
}
