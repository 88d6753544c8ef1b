// Package fakeapi is a strict in-memory model of the Contrail config API
// and of Keystone, for tests. It implements the parts of the API that
// vrsniff uses — create, read, partial update, delete, detail lists,
// /fqname-to-id, /id-to-fqname and /ref-update — with the real server's
// rules: UUID allocation, fq_name uniqueness, parent and reference
// existence, refusal to delete referenced objects or objects with
// children, whole-field and whole-list replacement on PUT, token checks,
// and rejection of unknown fields and wrong JSON types per the schema. With
// Options.Version "3.0" it rejects the mirror fields added in 3.1.
package fakeapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Options configure a Server.
type Options struct {
	// Keystone enables token checks: API requests need an X-Auth-Token
	// obtained from /v3/auth/tokens or /v2.0/tokens with these
	// credentials.
	Keystone bool
	Username string
	Password string
	Project  string
	// Version "3.0" makes the server reject the mirror fields that 3.1
	// added; anything else behaves like a current server.
	Version string
}

// Server is the fake. Use it as an http.Handler (httptest.NewServer).
type Server struct {
	opts Options

	mu      sync.Mutex
	objs    map[string]*object // by uuid
	byFQ    map[string]string  // type + fq_name → uuid
	tokens  map[string]bool
	history []string
	fail    func(method, path string) int
	expireN int
	log     []string
	nextID  int
	issued  int
	ks      keystone // see keystone.go
}

type object struct {
	Type       string
	UUID       string
	FQName     []string
	ParentType string
	ParentUUID string
	Props      map[string]any
	Refs       map[string][]Ref // referred-to type → references, in order
}

// Ref is a stored reference.
type Ref struct {
	To   []string
	UUID string
	Attr any
}

// New returns an empty server holding the default domain and project
// (default-domain:admin) as a fresh installation does.
func New(opts Options) *Server {
	s := &Server{opts: opts, objs: map[string]*object{}, byFQ: map[string]string{}, tokens: map[string]bool{}}
	d := s.put("domain", []string{"default-domain"}, "config-root", "", nil)
	s.put("project", []string{"default-domain", "admin"}, "domain", d, nil)
	return s
}

func fqKey(typ string, fq []string) string { return typ + "|" + strings.Join(fq, ":") }

func (s *Server) newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Server) put(typ string, fq []string, parentType, parentUUID string, props map[string]any) string {
	id := s.newUUID()
	if props == nil {
		props = map[string]any{}
	}
	s.objs[id] = &object{Type: typ, UUID: id, FQName: fq, ParentType: parentType, ParentUUID: parentUUID,
		Props: props, Refs: map[string][]Ref{}}
	s.byFQ[fqKey(typ, fq)] = id
	return id
}

// Seed stores an object as if created through the API (the same checks
// apply) and returns its UUID; it panics on error, as it is for test setup.
// body is the object content as the API takes it.
func (s *Server) Seed(typ string, body map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(body)
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	id, status, err := s.create(typ, v)
	if err != nil {
		panic(fmt.Sprintf("fakeapi seed %s: %d %v", typ, status, err))
	}
	return id
}

// Snapshot returns a deep copy of every object, keyed by UUID, for
// before/after comparisons.
func (s *Server) Snapshot() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(s.objs)
	if err != nil {
		panic(err)
	}
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return v
}

// Object returns the API view of one object (as GET returns it), or nil.
func (s *Server) Object(uuid string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objs[uuid]
	if o == nil {
		return nil
	}
	// A JSON round trip gives what a client would decode, and a copy.
	b, _ := json.Marshal(s.view(o))
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return v
}

// Lookup returns the UUID of the object typ with fq_name fq, or "".
func (s *Server) Lookup(typ string, fq ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byFQ[fqKey(typ, fq)]
}

// Count returns how many objects of type typ exist.
func (s *Server) Count(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.objs {
		if o.Type == typ {
			n++
		}
	}
	return n
}

// ExpireTokens invalidates every issued token, as Keystone does when they
// time out.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// ExpireTokensAfter makes every issued token invalid once n more API
// requests have been served: a token that times out in the middle of a
// run.
func (s *Server) ExpireTokensAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireN = n
}

// TokensIssued returns how many tokens Keystone handed out.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Tokens returns every token Keystone handed out.
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.history)
}

// FailWhen installs a hook consulted before each API request: a non-zero
// status makes the server answer with it instead of serving the request.
func (s *Server) FailWhen(f func(method, path string) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

// Log returns "METHOD path" of every API request served so far.
func (s *Server) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errf(status int, format string, a ...any) error {
	return &httpError{status, fmt.Sprintf(format, a...)}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/v3/auth/tokens":
		s.keystoneV3(w, r, body)
		return
	case "/v2.0/tokens":
		s.keystoneV2(w, r, body)
		return
	}
	s.log = append(s.log, r.Method+" "+r.URL.Path)
	if s.fail != nil {
		if st := s.fail(r.Method, r.URL.Path); st != 0 {
			http.Error(w, "injected failure", st)
			return
		}
	}
	if s.expireN > 0 {
		if s.expireN--; s.expireN == 0 {
			clear(s.tokens)
		}
	}
	if s.opts.Keystone && !s.tokens[r.Header.Get("X-Auth-Token")] {
		http.Error(w, "Authentication required", http.StatusUnauthorized)
		return
	}
	out, err := s.route(r, body)
	if err != nil {
		st := http.StatusInternalServerError
		if he, ok := err.(*httpError); ok {
			st = he.status
		}
		http.Error(w, err.Error(), st)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) route(r *http.Request, body []byte) (any, error) {
	path := strings.Trim(r.URL.Path, "/")
	var v map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, errf(400, "Bad JSON: %v", err)
		}
	}
	switch {
	case path == "fqname-to-id" && r.Method == http.MethodPost:
		return s.fqNameToID(v)
	case path == "id-to-fqname" && r.Method == http.MethodPost:
		id, _ := v["uuid"].(string)
		o := s.objs[id]
		if o == nil {
			return nil, errf(404, "UUID %s not found", id)
		}
		return map[string]any{"type": o.Type, "fq_name": o.FQName}, nil
	case path == "ref-update" && r.Method == http.MethodPost:
		return s.refUpdate(v)
	}
	typ, id, one := strings.Cut(path, "/")
	if one {
		if schemas[typ] == nil || id == "" || strings.Contains(id, "/") {
			return nil, errf(404, "Not found: %s", r.URL.Path)
		}
		o := s.objs[id]
		if o == nil || o.Type != typ {
			return nil, errf(404, "%s %s not found", typ, id)
		}
		switch r.Method {
		case http.MethodGet:
			return map[string]any{typ: s.view(o)}, nil
		case http.MethodPut:
			return s.update(o, v)
		case http.MethodDelete:
			return nil, s.delete(o)
		}
		return nil, errf(405, "Method not allowed")
	}
	typ, ok := strings.CutSuffix(path, "s")
	if !ok || schemas[typ] == nil {
		return nil, errf(404, "Not found: %s", r.URL.Path)
	}
	switch r.Method {
	case http.MethodPost:
		if len(v) != 1 || v[typ] == nil {
			return nil, errf(400, "Bad request: body must be {%q: {...}}", typ)
		}
		content, ok := v[typ].(map[string]any)
		if !ok {
			return nil, errf(400, "Bad request: %s must be an object", typ)
		}
		id, _, err := s.create(typ, content)
		if err != nil {
			return nil, err
		}
		o := s.objs[id]
		return map[string]any{typ: map[string]any{"uuid": id, "fq_name": o.FQName, "name": o.FQName[len(o.FQName)-1],
			"parent_type": o.ParentType, "href": "/" + typ + "/" + id}}, nil
	case http.MethodGet:
		return s.list(typ, r.URL.Query().Get("parent_id"), r.URL.Query().Get("detail"))
	}
	return nil, errf(405, "Method not allowed")
}

func (s *Server) fqNameToID(v map[string]any) (any, error) {
	typ, _ := v["type"].(string)
	fq, err := strList(v["fq_name"])
	if err != nil || typ == "" {
		return nil, errf(400, "Bad request: want type and fq_name")
	}
	id, ok := s.byFQ[fqKey(typ, fq)]
	if !ok {
		return nil, errf(404, "Name %s not found", strings.Join(fq, ":"))
	}
	return map[string]any{"uuid": id}, nil
}

func strList(v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return nil, fmt.Errorf("want a non-empty list of strings")
	}
	out := make([]string, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("want a non-empty list of strings")
		}
		out[i] = s
	}
	return out, nil
}

// refField maps a "<type-with-underscores>_refs" key to the referred-to type.
func refType(key string) (string, bool) {
	t, ok := strings.CutSuffix(key, "_refs")
	return strings.ReplaceAll(t, "_", "-"), ok
}

func (s *Server) create(typ string, v map[string]any) (string, int, error) {
	ts := schemas[typ]
	fq, err := strList(v["fq_name"])
	if err != nil {
		return "", 400, errf(400, "Bad request: fq_name: %v", err)
	}
	parentType, _ := v["parent_type"].(string)
	if parentType == "" {
		parentType = ts.parents[0]
	}
	if !contains(ts.parents, parentType) {
		return "", 400, errf(400, "Bad request: %s cannot be a child of %s", typ, parentType)
	}
	parentUUID := ""
	if parentType == "config-root" {
		if len(fq) != 1 {
			return "", 400, errf(400, "Bad request: fq_name of a %s has one element", typ)
		}
	} else {
		if len(fq) < 2 {
			return "", 400, errf(400, "Bad request: fq_name %v has no parent", fq)
		}
		id, ok := s.byFQ[fqKey(parentType, fq[:len(fq)-1])]
		if !ok {
			return "", 404, errf(404, "Parent %s %s not found", parentType, strings.Join(fq[:len(fq)-1], ":"))
		}
		parentUUID = id
	}
	if id, ok := s.byFQ[fqKey(typ, fq)]; ok {
		return "", 409, errf(409, "Conflict: %s %s already exists with uuid: %s", typ, strings.Join(fq, ":"), id)
	}
	props := map[string]any{}
	refs := map[string][]Ref{}
	keys := sortedKeys(v)
	for _, k := range keys {
		val := v[k]
		switch k {
		case "fq_name", "parent_type", "uuid":
			continue
		case "name":
			if n, _ := val.(string); n != fq[len(fq)-1] {
				return "", 400, errf(400, "Bad request: name %v does not match fq_name", val)
			}
			continue
		case "parent_uuid":
			if val != parentUUID {
				return "", 400, errf(400, "Bad request: parent_uuid does not match fq_name")
			}
			continue
		}
		if rt, ok := refType(k); ok {
			l, err := s.parseRefs(ts, rt, val)
			if err != nil {
				return "", 0, err
			}
			refs[rt] = l
			continue
		}
		sh := ts.prop(k)
		if sh == nil {
			return "", 400, errf(400, "Bad property %s: unknown field for %s", k, typ)
		}
		if err := validate(val, sh, k, s.opts.Version == "3.0"); err != nil {
			return "", 400, errf(400, "Bad property %v", err)
		}
		if val != nil {
			props[k] = val
		}
	}
	id := s.put(typ, fq, parentType, parentUUID, props)
	if _, ok := props["id_perms"]; !ok {
		// created orders a VM's ports the way Nova attached them.
		props["id_perms"] = map[string]any{"enable": true, "user_visible": true,
			"created": fmt.Sprintf("2026-01-01T00:00:00.%06d", s.nextID)}
		s.nextID++
	}
	s.objs[id].Refs = refs
	return id, 200, nil
}

func (ts *typeSchema) prop(k string) *shape {
	if sh, ok := commonProps[k]; ok {
		return sh
	}
	return ts.props[k]
}

func (s *Server) parseRefs(ts *typeSchema, rt string, val any) ([]Ref, error) {
	attrShape, ok := ts.refs[rt]
	if !ok {
		return nil, errf(400, "Bad property %s_refs: no such reference", strings.ReplaceAll(rt, "-", "_"))
	}
	l, ok := val.([]any)
	if !ok && val != nil {
		return nil, errf(400, "Bad property %s_refs: want a list", strings.ReplaceAll(rt, "-", "_"))
	}
	var out []Ref
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, errf(400, "Bad reference: want an object")
		}
		for k := range m {
			if k != "to" && k != "uuid" && k != "attr" && k != "href" {
				return nil, errf(400, "Bad reference: unknown field %q", k)
			}
		}
		ref, err := s.resolve(rt, m["to"], m["uuid"])
		if err != nil {
			return nil, err
		}
		if err := s.checkAttr(rt, attrShape, m["attr"]); err != nil {
			return nil, err
		}
		ref.Attr = m["attr"]
		out = append(out, ref)
	}
	return out, nil
}

func (s *Server) checkAttr(rt string, sh *shape, attr any) error {
	switch {
	case sh == nil && attr != nil:
		return errf(400, "Bad reference to %s: it takes no attr", rt)
	case sh != nil && sh.k != kAny && attr == nil:
		return errf(400, "Bad reference to %s: attr is required", rt)
	case sh != nil:
		if err := validate(attr, sh, "attr", s.opts.Version == "3.0"); err != nil {
			return errf(400, "Bad reference attr: %v", err)
		}
	}
	return nil
}

func (s *Server) resolve(rt string, to, uuid any) (Ref, error) {
	if id, ok := uuid.(string); ok && id != "" {
		o := s.objs[id]
		if o == nil || o.Type != rt {
			return Ref{}, errf(404, "Reference %s %s not found", rt, id)
		}
		return Ref{To: o.FQName, UUID: id}, nil
	}
	fq, err := strList(to)
	if err != nil {
		return Ref{}, errf(400, "Bad reference to %s: %v", rt, err)
	}
	id, ok := s.byFQ[fqKey(rt, fq)]
	if !ok {
		return Ref{}, errf(404, "Reference %s %s not found", rt, strings.Join(fq, ":"))
	}
	return Ref{To: fq, UUID: id}, nil
}

func (s *Server) update(o *object, v map[string]any) (any, error) {
	if len(v) != 1 || v[o.Type] == nil {
		return nil, errf(400, "Bad request: body must be {%q: {...}}", o.Type)
	}
	content, ok := v[o.Type].(map[string]any)
	if !ok {
		return nil, errf(400, "Bad request: %s must be an object", o.Type)
	}
	ts := schemas[o.Type]
	// Validate everything first: a rejected PUT changes nothing.
	props := map[string]any{}
	refs := map[string][]Ref{}
	for _, k := range sortedKeys(content) {
		val := content[k]
		switch k {
		case "uuid":
			if val != o.UUID {
				return nil, errf(400, "Bad request: uuid cannot change")
			}
			continue
		case "fq_name", "parent_type", "name", "parent_uuid":
			return nil, errf(400, "Bad request: %s cannot be updated", k)
		}
		if rt, ok := refType(k); ok {
			l, err := s.parseRefs(ts, rt, val)
			if err != nil {
				return nil, err
			}
			refs[rt] = l
			continue
		}
		sh := ts.prop(k)
		if sh == nil {
			return nil, errf(400, "Bad property %s: unknown field for %s", k, o.Type)
		}
		if err := validate(val, sh, k, s.opts.Version == "3.0"); err != nil {
			return nil, errf(400, "Bad property %v", err)
		}
		props[k] = val
	}
	for k, val := range props {
		if val == nil {
			delete(o.Props, k)
		} else {
			o.Props[k] = val
		}
	}
	for rt, l := range refs {
		if len(l) == 0 {
			delete(o.Refs, rt)
		} else {
			o.Refs[rt] = l
		}
	}
	return map[string]any{o.Type: map[string]any{"uuid": o.UUID, "href": "/" + o.Type + "/" + o.UUID}}, nil
}

func (s *Server) delete(o *object) error {
	for _, c := range s.objs {
		if c.ParentUUID == o.UUID {
			return errf(409, "Delete when children still present: %s %s", c.Type, strings.Join(c.FQName, ":"))
		}
		for _, l := range c.Refs {
			for _, r := range l {
				if r.UUID == o.UUID {
					return errf(409, "Delete when resource still referred: %s %s", c.Type, strings.Join(c.FQName, ":"))
				}
			}
		}
	}
	delete(s.objs, o.UUID)
	delete(s.byFQ, fqKey(o.Type, o.FQName))
	return nil
}

func (s *Server) refUpdate(v map[string]any) (any, error) {
	for k := range v {
		if !contains([]string{"operation", "type", "uuid", "ref-type", "ref-fq-name", "ref-uuid", "attr"}, k) {
			return nil, errf(400, "Bad request: unknown field %q", k)
		}
	}
	op, _ := v["operation"].(string)
	typ, _ := v["type"].(string)
	id, _ := v["uuid"].(string)
	rt, _ := v["ref-type"].(string)
	if op != "ADD" && op != "DELETE" {
		return nil, errf(400, "Bad request: operation must be ADD or DELETE")
	}
	o := s.objs[id]
	if o == nil || o.Type != typ {
		return nil, errf(404, "%s %s not found", typ, id)
	}
	attrShape, ok := schemas[typ].refs[rt]
	if !ok {
		return nil, errf(400, "Bad request: %s has no reference to %s", typ, rt)
	}
	ref, err := s.resolve(rt, v["ref-fq-name"], v["ref-uuid"])
	if err != nil {
		return nil, err
	}
	l := o.Refs[rt]
	i := slices.IndexFunc(l, func(r Ref) bool { return r.UUID == ref.UUID })
	if op == "ADD" {
		if err := s.checkAttr(rt, attrShape, v["attr"]); err != nil {
			return nil, err
		}
		ref.Attr = v["attr"]
		if i >= 0 {
			l[i] = ref
		} else {
			o.Refs[rt] = append(l, ref)
		}
	} else if i >= 0 {
		l = slices.Delete(l, i, i+1)
		if len(l) == 0 {
			delete(o.Refs, rt)
		} else {
			o.Refs[rt] = l
		}
	}
	return map[string]any{"uuid": id}, nil
}

func (s *Server) list(typ, parent, detail string) (any, error) {
	var l []*object
	for _, o := range s.objs {
		if o.Type == typ && (parent == "" || o.ParentUUID == parent) {
			l = append(l, o)
		}
	}
	sort.Slice(l, func(i, j int) bool { return strings.Join(l[i].FQName, ":") < strings.Join(l[j].FQName, ":") })
	out := []any{}
	for _, o := range l {
		if strings.EqualFold(detail, "true") {
			out = append(out, map[string]any{typ: s.view(o)})
		} else {
			out = append(out, map[string]any{"uuid": o.UUID, "fq_name": o.FQName, "href": "/" + typ + "/" + o.UUID})
		}
	}
	return map[string]any{typ + "s": out}, nil
}

// view renders an object as GET does: properties, refs, back refs and
// children.
func (s *Server) view(o *object) map[string]any {
	m := map[string]any{"uuid": o.UUID, "fq_name": o.FQName, "name": o.FQName[len(o.FQName)-1],
		"parent_type": o.ParentType, "href": "/" + o.Type + "/" + o.UUID}
	if o.ParentUUID != "" {
		m["parent_uuid"] = o.ParentUUID
	}
	for k, v := range o.Props {
		m[k] = v
	}
	for rt, l := range o.Refs {
		m[strings.ReplaceAll(rt, "-", "_")+"_refs"] = refsView(l)
	}
	for _, c := range s.sortedObjs() {
		if c.ParentUUID == o.UUID {
			k := strings.ReplaceAll(c.Type, "-", "_") + "s"
			m[k] = append(asList(m[k]), map[string]any{"to": c.FQName, "uuid": c.UUID})
		}
		for _, r := range c.Refs[o.Type] {
			if r.UUID == o.UUID {
				k := strings.ReplaceAll(c.Type, "-", "_") + "_back_refs"
				br := map[string]any{"to": c.FQName, "uuid": c.UUID}
				if r.Attr != nil {
					br["attr"] = r.Attr
				}
				m[k] = append(asList(m[k]), br)
			}
		}
	}
	return m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func refsView(l []Ref) []any {
	out := make([]any, len(l))
	for i, r := range l {
		e := map[string]any{"to": r.To, "uuid": r.UUID}
		if r.Attr != nil {
			e["attr"] = r.Attr
		}
		out[i] = e
	}
	return out
}

func (s *Server) sortedObjs() []*object {
	l := make([]*object, 0, len(s.objs))
	for _, o := range s.objs {
		l = append(l, o)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].UUID < l[j].UUID })
	return l
}

func sortedKeys(m map[string]any) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}
