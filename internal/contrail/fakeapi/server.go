package fakeapi

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
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

	// ManualCompile stops the schema transformer: nothing is compiled
	// until the test calls Compile (a transformer that is down or slow).
	ManualCompile bool
	// IgnoreTimer compiles refs that carry a timer into the static ACL, as
	// a control plane that does not know dynamic policies does.
	IgnoreTimer bool
	// LogicalRoutersDisabled is the schema transformer's
	// logical_routers_enabled=False: the static ACL ends with a deny of
	// everything instead of a deny per rule and a pass of everything.
	LogicalRoutersDisabled bool
	// SvcMonitor emulates svc-monitor: a port marked with a
	// service_interface_type and linked to a service instance's port tuple
	// gets the instance's shared service IPs (instance-ips
	// "<si-uuid>-<type>-v4" 0.255.255.252 and "-v6" ::0.255.255.252, marked
	// service_instance_ip), from which the schema transformer takes the
	// analyzer IP of a mirror to the instance.
	SvcMonitor bool
}

// Server is the fake. Use it as an http.Handler (httptest.NewServer).
type Server struct {
	opts Options

	mu       sync.Mutex
	objs     map[string]*object // by uuid
	byFQ     map[string]string  // type + fq_name → uuid
	tokens   map[string]bool
	history  []string
	fail     func(method, path string) int
	expireN  int
	log      []string
	clock    int // counts creations and changes: order and timestamps
	issued   int
	uuidHigh uint32 // first 32 bits of the next UUID
	hashSeed uint64 // this server's "process": ACL hashes differ per server
	vnID     int
	svcIPs   int
	ks       keystone // see keystone.go
}

type object struct {
	Type       string
	UUID       string
	FQName     []string
	ParentType string `json:",omitempty"`
	ParentUUID string `json:",omitempty"`
	Props      map[string]any
	Refs       map[string][]Ref // referred-to type → references
	created    int
	modified   int
}

// Ref is a stored reference.
type Ref struct {
	To   []string
	UUID string
	Attr any
}

// New returns a server holding what a fresh installation holds:
// default-domain, default-domain:default-project and
// default-domain:default-project:default-network-ipam. Tests that need
// another project (default-domain:admin, say) seed it.
func New(opts Options) *Server {
	s := &Server{opts: opts, objs: map[string]*object{}, byFQ: map[string]string{}, tokens: map[string]bool{}}
	var b [12]byte
	_, _ = rand.Read(b[:])
	s.uuidHigh = binary.BigEndian.Uint32(b[:4])>>4 | 0x10000000
	s.hashSeed = binary.BigEndian.Uint64(b[4:])
	s.mustCreate("domain", omap{{"fq_name", []any{"default-domain"}}})
	s.mustCreate("project", omap{{"fq_name", []any{"default-domain", "default-project"}}, {"parent_type", "domain"}})
	s.mustCreate("network-ipam", omap{{"fq_name", []any{"default-domain", "default-project", "default-network-ipam"}},
		{"parent_type", "project"}})
	return s
}

func (s *Server) mustCreate(typ string, body omap) string {
	id, err := s.create(typ, plain(body).(map[string]any), body)
	if err != nil {
		panic(fmt.Sprintf("fakeapi: create %s: %v", typ, err))
	}
	return id
}

func fqKey(typ string, fq []string) string { return typ + "|" + strings.Join(fq, ":") }

func (s *Server) newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	binary.BigEndian.PutUint32(b[:4], s.uuidHigh)
	s.uuidHigh++
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// timestamp renders the clock as the server's id_perms times.
func (s *Server) timestamp() string {
	s.clock++
	return fmt.Sprintf("2026-01-01T00:%02d:%02d.%06d", s.clock/60000000%60, s.clock/1000000%60, s.clock%1000000)
}

// Seed stores an object as if created through the API (the same checks
// apply) and returns its UUID; it panics on error, as it is for test setup.
// body is the object content as the API takes it.
func (s *Server) Seed(typ string, body map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(body)
	if err != nil {
		panic(fmt.Sprintf("fakeapi seed %s: %v", typ, err))
	}
	raw, _ := decodeOrdered(b)
	id, err := s.create(typ, plain(raw).(map[string]any), raw.(omap))
	if err != nil {
		panic(fmt.Sprintf("fakeapi seed %s: %v", typ, err))
	}
	s.afterChange()
	return id
}

// Snapshot returns a deep copy of every object, keyed by UUID, for
// before/after comparisons. id_perms.last_modified, which every write
// changes, is left out.
func (s *Server) Snapshot() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(s.objs)
	if err != nil {
		panic(err)
	}
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	for _, o := range v {
		if p, ok := o.(map[string]any)["Props"].(map[string]any); ok {
			if ip, ok := p["id_perms"].(map[string]any); ok {
				delete(ip, "last_modified")
			}
		}
	}
	return v
}

// Object returns the API view of one object (as GET returns it, hrefs
// relative), or nil.
func (s *Server) Object(uuid string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objs[uuid]
	if o == nil {
		return nil
	}
	// A JSON round trip gives what a client would decode, and a copy.
	var v map[string]any
	_ = json.Unmarshal(pyJSON(s.view(o, "", nil)), &v)
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

// internalError is the real server's answer to a request its code chokes
// on (a Python exception): 500 with bottle's text.
var internalError = &httpError{500, "Internal Server Error"}

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
		// keystonemiddleware answers before the API server sees the request.
		keystoneDenied(w)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	out, err := s.route(r, body, scheme+"://"+r.Host)
	if err != nil {
		st := http.StatusInternalServerError
		msg := "Internal Server Error"
		if he, ok := err.(*httpError); ok {
			st, msg = he.status, he.msg
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.WriteHeader(st)
		_, _ = io.WriteString(w, msg)
		return
	}
	if out == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(pyJSON(out))
}

// request is a decoded request body: plain values to work on, and the
// body as sent (member order kept) for the reprs in error messages.
type request struct {
	v   any
	raw any
}

func (q request) obj() (map[string]any, omap, bool) {
	m, ok := q.v.(map[string]any)
	r, _ := q.raw.(omap)
	return m, r, ok
}

func (s *Server) route(r *http.Request, body []byte, base string) (any, error) {
	var q request
	if len(body) > 0 {
		raw, err := decodeOrdered(body)
		if err != nil {
			return nil, errf(400, "Invalid JSON")
		}
		q = request{plain(raw), raw}
	}
	path := strings.Trim(r.URL.Path, "/")
	var out any
	var err error
	changed := false
	switch {
	case path == "fqname-to-id" && r.Method == http.MethodPost:
		out, err = s.fqNameToID(q)
	case path == "id-to-fqname" && r.Method == http.MethodPost:
		out, err = s.idToFQName(q)
	case path == "ref-update" && r.Method == http.MethodPost:
		out, err = s.refUpdate(q)
		changed = true
	case path == "prop-collection-update" && r.Method == http.MethodPost:
		err = s.propCollectionUpdate(q)
		changed = true
	default:
		out, changed, err = s.routeResource(r, q, path, base)
	}
	if err == nil && changed {
		s.afterChange()
	}
	return out, err
}

func (s *Server) routeResource(r *http.Request, q request, path, base string) (any, bool, error) {
	seg, id, one := strings.Cut(path, "/")
	if one {
		typ := seg
		if schemas[typ] == nil || id == "" || strings.Contains(id, "/") {
			return nil, false, errf(404, "Not Found: /%s", path)
		}
		switch r.Method {
		case http.MethodGet:
			out, err := s.read(typ, id, r.URL.Query(), base)
			return out, false, err
		case http.MethodPut:
			out, err := s.update(typ, id, q, base)
			return out, err == nil && out != nil, err
		case http.MethodDelete:
			err := s.deleteReq(typ, id, base)
			return nil, err == nil, err
		}
		return nil, false, errf(405, "Method Not Allowed")
	}
	typ, ok := strings.CutSuffix(seg, "s")
	if !ok || schemas[typ] == nil {
		return nil, false, errf(404, "Not Found: /%s", path)
	}
	switch r.Method {
	case http.MethodPost:
		m, _, ok := q.obj()
		if !ok {
			return nil, false, internalError
		}
		content, ok := m[typ].(map[string]any)
		if !ok {
			return nil, false, internalError
		}
		raw, _ := q.raw.(omap).get(typ)
		rawContent, _ := raw.(omap)
		id, err := s.create(typ, content, rawContent)
		if err != nil {
			return nil, false, err
		}
		o := s.objs[id]
		rsp := omap{{"name", o.FQName[len(o.FQName)-1]}, {"fq_name", o.FQName}, {"uuid", id}, {"href", href(base, typ, id)}}
		if o.ParentType != "" {
			rsp = append(rsp, kv{"parent_type", o.ParentType}, kv{"parent_uuid", o.ParentUUID},
				kv{"parent_href", href(base, o.ParentType, o.ParentUUID)})
		}
		return omap{{typ, rsp}}, true, nil
	case http.MethodGet:
		out, err := s.list(typ, r.URL.Query(), base)
		return out, false, err
	}
	return nil, false, errf(405, "Method Not Allowed")
}

func href(base, typ, id string) string { return base + "/" + typ + "/" + id }

// strList returns v as a list of strings.
func strList(v any) ([]string, bool) {
	l, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

func reprFQ(fq []string) string { return pyRepr(toAnyList(fq)) }

// create is http_resource_create: checks in the real server's order, then
// the object is stored. raw is the content as sent, for error messages.
func (s *Server) create(typ string, v map[string]any, raw omap) (string, error) {
	ts := schemas[typ]
	if !truthy(v["fq_name"]) {
		return "", errf(400, "Bad Request, no fq_name in POST body")
	}
	fq, ok := strList(v["fq_name"])
	if !ok {
		return "", internalError
	}
	if strings.Contains(fq[len(fq)-1], ":") {
		return "", errf(400, "Bad Request, name has one of invalid chars {':'}")
	}
	if err := validateProps(ts, v, raw, "create", s.opts.Version == "3.0"); err != nil {
		return "", err
	}
	if err := validateRefAttrs(ts, v, raw, "create", s.opts.Version == "3.0"); err != nil {
		return "", err
	}
	if id, ok := s.byFQ[fqKey(typ, fq)]; ok {
		return "", errf(409, "%s already exists with uuid: %s", reprFQ(fq), id)
	}
	parentType, _ := v["parent_type"].(string)
	if parentType == "config-root" {
		parentType = ""
	}
	effective := parentType
	switch {
	case parentType != "":
		if !contains(ts.parents, parentType) {
			return "", errf(400, "Invalid parent type: %s. Allowed types: %s", parentType, pyRepr(toAnyList(ts.parents)))
		}
	case len(ts.parents) == 1:
		effective = ts.parents[0]
	}
	if effective == "" || effective == "config-root" {
		if len(fq) != 1 {
			return "", errf(400, "Invalid fq-name of an object with no parent: %s", reprFQ(fq))
		}
	} else if len(fq) < 2 {
		return "", errf(400, "Invalid fq-name for object with parent_type %s: %s", effective, reprFQ(fq))
	}
	var parentUUID string
	if effective != "" && effective != "config-root" {
		pfq := fq[:len(fq)-1]
		parentUUID = s.byFQ[fqKey(effective, pfq)]
		// The permission check looks the parent up first, except under a
		// domain; then the parent check proper.
		if parentUUID == "" && effective != "domain" {
			return "", errf(404, "Name%s not found", reprFQ(pfq))
		}
		if parentUUID == "" && parentType != "" {
			return "", errf(400, "Parent %s type %s does not exist", reprFQ(pfq), parentType)
		}
	}
	if u, ok := v["uuid"].(string); ok && u != "" {
		if !isUUID(u) {
			return "", errf(400, "Invalid UUID format: %s", u)
		}
		if o := s.objs[u]; o != nil {
			return "", errf(409, "%s already exists with fq_name: %s", u, reprFQ(o.FQName))
		}
	}
	refs, err := s.resolveRefs(ts, v)
	if err != nil {
		if err == errUnknownRef {
			return "", errf(400, "Unknown reference in resource create %s.", pyRepr(raw))
		}
		return "", err
	}
	if err := s.preWrite(typ, v); err != nil {
		return "", err
	}
	if typ == "virtual-machine-interface" {
		// The port hook reads its VN first: a port without one is a
		// Python KeyError.
		if l, _ := v["virtual_network_refs"].([]any); len(l) == 0 {
			return "", internalError
		}
		if tag, _ := pyInt(getMap(getMap(v, "virtual_machine_interface_properties"), "sub_interface_vlan_tag")); tag < 0 || tag > 4094 {
			return "", errf(400, "Invalid sub-interface VLAN tag ID: %d", tag)
		}
	}
	id, _ := v["uuid"].(string)
	if id == "" {
		id = s.newUUID()
	}
	o := &object{Type: typ, UUID: id, FQName: fq, Props: map[string]any{}, Refs: refs}
	if parentType != "" {
		o.ParentType, o.ParentUUID = parentType, parentUUID
	}
	for _, k := range ts.propNames() {
		val, ok := v[k]
		if !ok || val == nil {
			continue
		}
		if ts.isMap(k) {
			if val = normaliseMap(val); val == nil {
				continue
			}
		}
		o.Props[k] = val
	}
	now := s.timestamp()
	o.created, o.modified = s.clock, s.clock
	o.Props["id_perms"] = s.idPerms(id, now, o.Props["id_perms"])
	o.Props["perms2"] = mergeMap(map[string]any{"owner": "cloud-admin", "owner_access": json.Number("7"),
		"global_access": json.Number("0"), "share": []any{}}, o.Props["perms2"])
	if dn, _ := o.Props["display_name"].(string); dn == "" {
		o.Props["display_name"] = fq[len(fq)-1]
	}
	if _, ok := o.Props["virtual_machine_interface_mac_addresses"]; !ok && typ == "virtual-machine-interface" {
		// The server allocates a MAC from the port's UUID.
		h := strings.ReplaceAll(id, "-", "")
		o.Props["virtual_machine_interface_mac_addresses"] = map[string]any{
			"mac_address": []any{"02:" + h[:2] + ":" + h[2:4] + ":" + h[4:6] + ":" + h[6:8] + ":" + h[8:10]}}
	}
	if typ == "virtual-network" {
		s.vnID++
		o.Props["virtual_network_network_id"] = json.Number(strconv.Itoa(s.vnID))
		if _, ok := o.Props["is_shared"]; !ok {
			o.Props["is_shared"] = false
		}
	}
	s.objs[id] = o
	s.byFQ[fqKey(typ, fq)] = id
	return id, nil
}

func isUUID(u string) bool {
	if len(u) != 36 {
		return false
	}
	for i, c := range u {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
	}
	return true
}

func (s *Server) idPerms(id, now string, given any) map[string]any {
	var hi, lo uint64
	if b, err := hex.DecodeString(strings.ReplaceAll(id, "-", "")); err == nil && len(b) == 16 {
		hi, lo = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	}
	return mergeMap(map[string]any{
		"permissions": map[string]any{"owner": "cloud-admin", "owner_access": json.Number("7"),
			"other_access": json.Number("7"), "group": "cloud-admin-group", "group_access": json.Number("7")},
		"uuid":    map[string]any{"uuid_mslong": json.Number(strconv.FormatUint(hi, 10)), "uuid_lslong": json.Number(strconv.FormatUint(lo, 10))},
		"enable":  true,
		"created": now, "last_modified": now,
		"description": nil, "user_visible": true, "creator": nil,
	}, given)
}

// mergeMap returns base with the members of over (a decoded JSON object)
// laid on top.
func mergeMap(base map[string]any, over any) map[string]any {
	if m, ok := over.(map[string]any); ok {
		for k, v := range m {
			base[k] = v
		}
	}
	return base
}

// normaliseMap stores a map property as the real server reads it back:
// sorted by key, the last of repeated keys kept; nil when empty.
func normaliseMap(v any) any {
	m, _ := v.(map[string]any)
	l, _ := m["key_value_pair"].([]any)
	byKey := map[string]any{}
	for _, e := range l {
		kv, _ := e.(map[string]any)
		k, _ := kv["key"].(string)
		byKey[k] = e
	}
	if len(byKey) == 0 {
		return nil
	}
	out := make([]any, 0, len(byKey))
	for _, k := range sortedKeys(byKey) {
		out = append(out, byKey[k])
	}
	return map[string]any{"key_value_pair": out}
}

// validateRefAttrs is _validate_refs_in_request: the attr of every ref to
// a type whose refs carry one is validated; a ref without the attr key is
// refused (Python's KeyError).
func validateRefAttrs(ts *typeSchema, v map[string]any, raw omap, op string, v30 bool) error {
	for _, rt := range sortedRefTypes(ts) {
		sh := ts.refs[rt]
		if sh == nil {
			continue
		}
		k := snake(rt) + "_refs"
		l, _ := v[k].([]any)
		rawList, _ := raw.get(k)
		rl, _ := rawList.([]any)
		for i, e := range l {
			var rawRef any = e
			if i < len(rl) {
				rawRef = rl[i]
			}
			m, ok := e.(map[string]any)
			if !ok {
				return errf(400, "Bad reference in %s: Error validating reference %s value %s %s", op, k, pyRepr(rawRef),
					"string indices must be integers")
			}
			attr, ok := m["attr"]
			if !ok {
				return errf(400, "Bad reference in %s: Error validating reference %s value %s 'attr'", op, k, pyRepr(rawRef))
			}
			if err := validateComplex(sh, attr, v30); err != nil {
				return errf(400, "Bad reference in %s: Error validating reference %s value %s %s", op, k, pyRepr(rawRef), err.Error())
			}
		}
	}
	return nil
}

func sortedRefTypes(ts *typeSchema) []string {
	l := make([]string, 0, len(ts.refs))
	for rt := range ts.refs {
		l = append(l, rt)
	}
	sort.Strings(l)
	return l
}

var errUnknownRef = &httpError{400, "Unknown reference"}

// resolveRefs resolves every ref list the body holds for the type: by uuid
// when given (a missing one is the real server's 500), else by "to" (a
// missing one is errUnknownRef). Lists of unknown ref types are ignored.
func (s *Server) resolveRefs(ts *typeSchema, v map[string]any) (map[string][]Ref, error) {
	refs := map[string][]Ref{}
	for _, rt := range sortedRefTypes(ts) {
		val, ok := v[snake(rt)+"_refs"]
		if !ok {
			continue
		}
		l, ok := val.([]any)
		if !ok && val != nil {
			return nil, internalError
		}
		out := []Ref{}
		for _, e := range l {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, internalError
			}
			ref, err := s.resolve(rt, m)
			if err != nil {
				return nil, err
			}
			ref.Attr = m["attr"]
			out = append(out, ref)
		}
		refs[rt] = out
	}
	return refs, nil
}

func (s *Server) resolve(rt string, m map[string]any) (Ref, error) {
	if u, ok := m["uuid"]; ok {
		id, _ := u.(string)
		o := s.objs[id]
		if o == nil || o.Type != rt {
			return Ref{}, internalError
		}
		return Ref{To: o.FQName, UUID: id}, nil
	}
	to, ok := m["to"]
	if !ok {
		return Ref{}, internalError
	}
	fq, ok := strList(to)
	if !ok {
		return Ref{}, errUnknownRef
	}
	id, ok := s.byFQ[fqKey(rt, fq)]
	if !ok {
		return Ref{}, errUnknownRef
	}
	return Ref{To: fq, UUID: id}, nil
}

// preWrite runs the type hooks the real server runs before storing a
// create or update (pre_dbe_create / pre_dbe_update).
func (s *Server) preWrite(typ string, v map[string]any) error {
	if typ == "network-policy" {
		return s.checkPolicyRules(v["network_policy_entries"])
	}
	return nil
}

var ipProtocols = map[string]string{
	"ah": "51", "dccp": "33", "egp": "8", "esp": "50", "gre": "47", "hopopt": "0", "icmp": "1", "igmp": "2",
	"ip": "0", "ipip": "4", "icmpv6": "58", "ipv6-encap": "41", "ipv6-frag": "44", "ipv6-icmp": "58",
	"ipv6-nonxt": "59", "ipv6-opts": "60", "ipv6-route": "43", "ospf": "89", "pgm": "113", "rsvp": "46",
	"sctp": "132", "tcp": "6", "udp": "17", "udplite": "136", "vrrp": "112", "icmp6": "58", "any": "any",
}

var (
	ipv6ProtocolNames = []string{"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route", "icmp6"}
	ipv6ProtocolNums  = []int{41, 44, 58, 59, 60, 43}
)

// checkPolicyRules is the API server's check_policy_rules for network
// policies: identical rules, protocols, an action, no security groups; a
// rule without rule_uuid gets one.
func (s *Server) checkPolicyRules(entries any) error {
	if !truthy(entries) {
		return nil
	}
	m, ok := entries.(map[string]any)
	if !ok {
		return internalError
	}
	rules, _ := m["policy_rule"].([]any)
	stripped := make([]any, len(rules))
	for i, r := range rules {
		rm, ok := r.(map[string]any)
		if !ok {
			return internalError
		}
		c := map[string]any{}
		for k, v := range rm {
			if k != "rule_uuid" && k != "created" && k != "last_modified" {
				c[k] = v
			}
		}
		stripped[i] = c
	}
	for i := range stripped {
		r := stripped[i]
		stripped[i] = nil
		for _, o := range stripped {
			if o != nil && reflect.DeepEqual(o, r) {
				u, ok := rules[i].(map[string]any)["rule_uuid"]
				if !ok {
					u = nil
				}
				return errf(409, "Rule already exists : %s", pyStr(u))
			}
		}
	}
	for _, r := range rules {
		rule := r.(map[string]any)
		if !truthy(rule["rule_uuid"]) {
			rule["rule_uuid"] = s.newUUID()
		}
		proto, ok := rule["protocol"].(string)
		if !ok {
			return internalError
		}
		ipv4 := rule["ethertype"] == "IPv4"
		if proto != "" && strings.Trim(proto, "0123456789") == "" {
			n, err := strconv.Atoi(proto)
			if err != nil || n > 255 {
				num := strings.TrimLeft(proto, "0")
				return errf(400, "Rule with invalid protocol : %s", num)
			}
			if ipv4 && slices.Contains(ipv6ProtocolNums, n) {
				return errf(400, "IPv4 rule with IPv6 protocol : %d", n)
			}
		} else {
			p := strings.ToLower(proto)
			if _, ok := ipProtocols[p]; !ok {
				return errf(400, "Rule with invalid protocol : %s", p)
			}
			if ipv4 && contains(ipv6ProtocolNames, p) {
				return errf(400, "IPv4 rule with IPv6 protocol : %s", p)
			}
		}
		if rule["action_list"] == nil {
			return errf(400, "Action is required")
		}
		for _, k := range []string{"src_addresses", "dst_addresses"} {
			l, _ := rule[k].([]any)
			for _, a := range l {
				if am, ok := a.(map[string]any); ok && am["security_group"] != nil {
					return errf(400, "Config Error: policy rule refering to security group is not allowed")
				}
			}
		}
	}
	return nil
}

// lookupTyped finds an object of type typ by uuid, with the real server's
// messages for a missing uuid (missing) and one of another type.
func (s *Server) lookupTyped(typ, id, missing string) (*object, error) {
	o := s.objs[id]
	if o == nil {
		return nil, errf(404, "%s", missing)
	}
	if o.Type != typ {
		return nil, errf(404, "No %s object found for id %s", typ, id)
	}
	return o, nil
}

func (s *Server) read(typ, id string, q url.Values, base string) (any, error) {
	o, err := s.lookupTyped(typ, id, "Unknown id: "+id)
	if err != nil {
		return nil, err
	}
	var fields map[string]bool
	if q.Has("fields") {
		fields = map[string]bool{"id_perms": true, "perms2": true}
		for _, f := range strings.Split(q.Get("fields"), ",") {
			fields[f] = true
		}
	}
	return omap{{typ, s.view(o, base, fields)}}, nil
}

// update is http_resource_update.
func (s *Server) update(typ, id string, q request, base string) (any, error) {
	m, raw, ok := q.obj()
	if q.v == nil || (ok && len(m) == 0) {
		return nil, nil // no body: the real server answers 200 and does nothing
	}
	if !ok {
		return nil, internalError
	}
	cv, present := m[typ]
	if !present {
		return nil, internalError
	}
	if !truthy(cv) {
		return nil, nil
	}
	content, ok := cv.(map[string]any)
	if !ok {
		return nil, internalError
	}
	rv, _ := raw.get(typ)
	rawContent, _ := rv.(omap)
	if p, ok := content["perms2"].(map[string]any); ok && p["owner"] == nil {
		return nil, errf(400, "owner in perms2 must be present")
	}
	o := s.objs[id]
	if o == nil {
		return nil, errf(404, "Unknown id: %s", id)
	}
	if o.Type != typ {
		return nil, errf(404, "No %s object found for id %s", typ, id)
	}
	ts := schemas[typ]
	if err := validateProps(ts, content, rawContent, "http_put", s.opts.Version == "3.0"); err != nil {
		return nil, err
	}
	if err := validateRefAttrs(ts, content, rawContent, "http_put", s.opts.Version == "3.0"); err != nil {
		return nil, err
	}
	refs, err := s.resolveRefs(ts, content)
	if err != nil {
		if err == errUnknownRef {
			return nil, errf(400, "Unknown reference in resource update %s %s.", snake(typ), pyRepr(rawContent))
		}
		return nil, err
	}
	if err := s.preWrite(typ, content); err != nil {
		return nil, err
	}
	for _, k := range ts.propNames() {
		if val, ok := content[k]; ok && val == nil && ts.isMap(k) {
			// The Cassandra driver iterates the new map: Python's TypeError,
			// before anything is written.
			return nil, errf(500, "TypeError: 'NoneType' object is not iterable")
		}
	}
	for _, k := range ts.propNames() {
		val, ok := content[k]
		if !ok || k == "virtual_network_network_id" {
			continue
		}
		switch {
		case k == "id_perms":
			o.Props[k] = mergeMap(o.Props[k].(map[string]any), val)
		case k == "perms2":
			o.Props[k] = mergeMap(o.Props[k].(map[string]any), val)
		case ts.isMap(k):
			val = normaliseMap(val)
			fallthrough
		default:
			if val == nil {
				delete(o.Props, k)
			} else {
				o.Props[k] = val
			}
		}
	}
	for rt, l := range refs {
		if len(l) == 0 {
			delete(o.Refs, rt)
		} else {
			o.Refs[rt] = l
		}
	}
	s.touch(o)
	return omap{{typ, omap{{"uuid", id}, {"href", href(base, typ, id)}}}}, nil
}

// touch records a change of o.
func (s *Server) touch(o *object) {
	o.Props["id_perms"].(map[string]any)["last_modified"] = s.timestamp()
	o.modified = s.clock
}

// children returns the children of o of type ct, oldest first.
func (s *Server) children(o *object, ct string) []*object {
	var l []*object
	for _, c := range s.objs {
		if c.ParentUUID == o.UUID && c.Type == ct {
			l = append(l, c)
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].created < l[j].created })
	return l
}

// backRefs returns the objects that refer to o, by UUID.
func (s *Server) backRefs(o *object) []*object {
	var l []*object
	for _, c := range s.objs {
		if slices.ContainsFunc(c.Refs[o.Type], func(r Ref) bool { return r.UUID == o.UUID }) {
			l = append(l, c)
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].UUID < l[j].UUID })
	return l
}

func (s *Server) deleteReq(typ, id, base string) error {
	o, err := s.lookupTyped(typ, id, "ID "+id+" does not exist")
	if err != nil {
		return err
	}
	ts := schemas[typ]
	for _, ct := range ts.children {
		var hrefs []any
		for _, c := range s.children(o, ct) {
			if c.FQName[len(c.FQName)-1] != "default-"+ct {
				hrefs = append(hrefs, href(base, ct, c.UUID))
			}
		}
		if len(hrefs) > 0 {
			return errf(409, "Delete when children still present: %s", pyRepr(hrefs))
		}
	}
	var hrefs []any
	for _, c := range s.backRefs(o) {
		hrefs = append(hrefs, href(base, c.Type, c.UUID))
	}
	if len(hrefs) > 0 {
		return errf(409, "Delete when resource still referred: %s", pyRepr(hrefs))
	}
	s.remove(o)
	return nil
}

// remove deletes o with its default and derived children.
func (s *Server) remove(o *object) {
	for _, c := range s.objs {
		if c.ParentUUID == o.UUID {
			s.remove(c)
		}
	}
	delete(s.objs, o.UUID)
	delete(s.byFQ, fqKey(o.Type, o.FQName))
}

// refUpdate is ref_update_http_post.
func (s *Server) refUpdate(q request) (any, error) {
	v, _, ok := q.obj()
	if !ok {
		return nil, internalError
	}
	typ := typeName(pyStr(v["type"]))
	if typ == "" {
		return nil, errf(404, "Resource type '%s' not found", pyStr(v["type"]))
	}
	rtv, ok := v["ref-type"].(string)
	if !ok {
		return nil, internalError
	}
	rt := typeName(rtv)
	if rt == "" {
		return nil, errf(404, "Resource type '%s' not found", rtv)
	}
	id, _ := v["uuid"].(string)
	opv := v["operation"]
	if v["uuid"] == nil || opv == nil {
		return nil, errf(400, "Bad Request: type/uuid/ref-type/operation is null: %s, %s, %s, %s.",
			typ, pyStr(v["uuid"]), rt, pyStr(opv))
	}
	opStr, ok := opv.(string)
	if !ok {
		return nil, internalError
	}
	op := strings.ToUpper(opStr)
	if op != "ADD" && op != "DELETE" {
		return nil, errf(400, "Bad Request: operation should be add or delete: %s", op)
	}
	refUUID, _ := v["ref-uuid"].(string)
	refFQ, hasFQ := strList(v["ref-fq-name"])
	if refUUID == "" && !truthy(v["ref-fq-name"]) {
		return nil, errf(400, "Bad Request: ref-uuid or ref-fq-name must be specified")
	}
	if refUUID == "" {
		refUUID = s.byFQ[fqKey(rt, refFQ)]
		if refUUID == "" || !hasFQ {
			return nil, errf(404, "Name %s not found", pyRepr(v["ref-fq-name"]))
		}
	} else if op == "ADD" {
		ro := s.objs[refUUID]
		if ro == nil {
			return nil, errf(404, "Unknown id: %s", refUUID)
		}
		refFQ = ro.FQName
	}
	o := s.objs[id]
	if o == nil || o.Type != typ {
		return nil, errf(404, "Unknown id: %s", id)
	}
	ts := schemas[typ]
	attrShape, isRef := ts.refs[rt]
	if !isRef {
		return map[string]any{"uuid": id}, nil // not a ref field of the type: nothing to write
	}
	// The ref list as the server rebuilds it: stored refs read back as
	// {to, attr, uuid}, a new one appended as {to, uuid, attr}.
	var list []omap
	for _, r := range s.sortedRefs(o, rt) {
		list = append(list, omap{{"to", toAnyList(r.To)}, {"attr", r.Attr}, {"uuid", r.UUID}})
	}
	attr := v["attr"]
	rawAttr, _ := q.raw.(omap).get("attr")
	if op == "ADD" {
		i := slices.IndexFunc(list, func(m omap) bool { u, _ := m.get("uuid"); return u == refUUID })
		if i >= 0 {
			list[i][1].v = rawAttr
		} else {
			list = append(list, omap{{"to", toAnyList(refFQ)}, {"uuid", refUUID}, {"attr", rawAttr}})
		}
	} else {
		i := slices.IndexFunc(list, func(m omap) bool {
			u, _ := m.get("uuid")
			to, _ := m.get("to")
			return u == refUUID || reflect.DeepEqual(to, toAnyList(refFQ))
		})
		if i >= 0 {
			list = slices.Delete(list, i, i+1)
		}
	}
	if attrShape != nil {
		for _, m := range list {
			a, _ := m.get("attr")
			if err := validateComplex(attrShape, plain(a), s.opts.Version == "3.0"); err != nil {
				return nil, errf(400, "Bad reference in ref-update: Error validating reference %s_refs value %s %s",
					snake(rt), pyRepr(m), err.Error())
			}
		}
	}
	l := o.Refs[rt]
	i := slices.IndexFunc(l, func(r Ref) bool { return r.UUID == refUUID })
	if op == "ADD" {
		if attrShape != nil {
			_ = validateComplex(attrShape, attr, false) // converts integers in place
		}
		if i >= 0 {
			l[i].Attr = attr
		} else {
			o.Refs[rt] = append(l, Ref{To: refFQ, UUID: refUUID, Attr: attr})
		}
	} else {
		if i < 0 {
			i = slices.IndexFunc(l, func(r Ref) bool { return slices.Equal(r.To, refFQ) })
		}
		if i >= 0 {
			if l = slices.Delete(l, i, i+1); len(l) == 0 {
				delete(o.Refs, rt)
			} else {
				o.Refs[rt] = l
			}
		}
	}
	s.touch(o)
	return omap{{"uuid", id}}, nil
}

// propCollectionUpdate is prop_collection_http_post for map properties.
func (s *Server) propCollectionUpdate(q request) error {
	v, _, ok := q.obj()
	if !ok {
		return internalError
	}
	id, _ := v["uuid"].(string)
	if id == "" {
		return errf(400, "Error: prop_collection_update needs obj_uuid")
	}
	o := s.objs[id]
	if o == nil {
		return errf(404, "Object Not Found: %s", id)
	}
	ts := schemas[o.Type]
	updates, _ := v["updates"].([]any)
	type change struct {
		field, op, pos string
		val            map[string]any
	}
	var changes []change
	for _, u := range updates {
		m, ok := u.(map[string]any)
		if !ok {
			return internalError
		}
		f, _ := m["field"].(string)
		if !ts.isMap(f) || ts.prop(f) == nil {
			return errf(400, "%s neither \"ListProperty\" nor \"MapProperty\"", pyStr(m["field"]))
		}
		opv, ok := m["operation"].(string)
		if !ok {
			return internalError
		}
		op := strings.ToLower(opv)
		if err := validateComplex(keyValuePair, m["value"], false); err != nil {
			return errf(400, "%s", err.Error())
		}
		if op != "set" && op != "delete" {
			return errf(400, "Unsupported operation %s in request %s", op, pyJSON(m))
		}
		val, _ := m["value"].(map[string]any)
		if op == "set" && val == nil {
			return internalError
		}
		changes = append(changes, change{f, op, pyStr(m["position"]), val})
	}
	for _, c := range changes {
		cur, _ := o.Props[c.field].(map[string]any)
		l, _ := cur["key_value_pair"].([]any)
		var keep []any
		for _, e := range l {
			k, _ := e.(map[string]any)["key"].(string)
			if (c.op == "set" && k == pyStr(c.val["key"])) || (c.op == "delete" && k == c.pos) {
				continue
			}
			keep = append(keep, e)
		}
		if c.op == "set" {
			keep = append(keep, c.val)
		}
		if n := normaliseMap(map[string]any{"key_value_pair": keep}); n == nil {
			delete(o.Props, c.field)
		} else {
			o.Props[c.field] = n
		}
	}
	s.touch(o)
	return nil
}

func (s *Server) fqNameToID(q request) (any, error) {
	v, _, ok := q.obj()
	if !ok {
		return nil, internalError
	}
	typ := typeName(pyStr(v["type"]))
	if typ == "" {
		return nil, errf(404, "Resource type '%s' not found", pyStr(v["type"]))
	}
	fqv, ok := v["fq_name"]
	if !ok {
		return nil, internalError
	}
	fq, _ := strList(fqv)
	id, ok := s.byFQ[fqKey(typ, fq)]
	if !ok || fq == nil {
		return nil, errf(404, "Name %s not found", pyRepr(fqv))
	}
	return omap{{"uuid", id}}, nil
}

func (s *Server) idToFQName(q request) (any, error) {
	v, _, ok := q.obj()
	if !ok {
		return nil, internalError
	}
	id, ok := v["uuid"].(string)
	if !ok {
		return nil, internalError
	}
	o := s.objs[id]
	if o == nil {
		return nil, errf(404, "UUID %s not found", id)
	}
	return omap{{"fq_name", o.FQName}, {"type", o.Type}}, nil
}

// list is http_resource_list.
func (s *Server) list(typ string, q url.Values, base string) (any, error) {
	var l []*object
	split := func(k string) []string { return strings.Split(q.Get(k), ",") }
	anchored := false
	switch {
	case q.Has("parent_fq_name_str"):
		anchored = true
		pfq := strings.Split(q.Get("parent_fq_name_str"), ":")
		pts := schemas[typ].parents
		if q.Has("parent_type") {
			pts = []string{q.Get("parent_type")}
		}
		for _, pt := range pts {
			if p := s.objs[s.byFQ[fqKey(typeName(pt), pfq)]]; p != nil {
				l = append(l, s.children(p, typ)...)
			}
		}
	case q.Has("parent_id"):
		anchored = true
		for _, pid := range split("parent_id") {
			if p := s.objs[pid]; p != nil {
				l = append(l, s.children(p, typ)...)
			}
		}
	}
	if q.Has("back_ref_id") {
		var out []*object
		cands := l
		if !anchored {
			cands = s.ofType(typ)
		}
		for _, o := range cands {
			for _, rl := range o.Refs {
				if slices.ContainsFunc(rl, func(r Ref) bool { return slices.Contains(split("back_ref_id"), r.UUID) }) {
					out = append(out, o)
					break
				}
			}
		}
		l, anchored = out, true
	}
	if q.Has("obj_uuids") {
		var out []*object
		if anchored {
			for _, o := range l {
				if slices.Contains(split("obj_uuids"), o.UUID) {
					out = append(out, o)
				}
			}
		} else {
			for _, id := range split("obj_uuids") {
				if o := s.objs[id]; o != nil && o.Type == typ {
					out = append(out, o)
				}
			}
		}
		l, anchored = out, true
	}
	if !anchored {
		l = s.ofType(typ)
		sort.Slice(l, func(i, j int) bool {
			return strings.Join(l[i].FQName, ":")+":"+l[i].UUID < strings.Join(l[j].FQName, ":")+":"+l[j].UUID
		})
	}
	key := typ + "s"
	if strings.Contains(strings.ToLower(q.Get("count")), "true") {
		return omap{{key, omap{{"count", len(l)}}}}, nil
	}
	var fields []string
	if q.Has("fields") {
		fields = strings.Split(q.Get("fields"), ",")
	}
	out := []any{}
	if strings.Contains(strings.ToLower(q.Get("detail")), "true") {
		// The real server answers detail lists in the order of its object
		// cache, not in creation order; the oldest change first here.
		sort.SliceStable(l, func(i, j int) bool { return l[i].modified < l[j].modified })
		want := map[string]bool{}
		ts := schemas[typ]
		for _, k := range ts.propNames() {
			want[k] = true
		}
		for rt := range ts.refs {
			want[snake(rt)+"_refs"] = true
		}
		for _, f := range fields {
			want[f] = true
		}
		for _, o := range l {
			m := s.view(o, base, want)
			delete(m, "parent_href")
			out = append(out, omap{{typ, detailOrder(m)}})
		}
	} else {
		for _, o := range l {
			e := omap{{"uuid", o.UUID}, {"fq_name", o.FQName}, {"href", href(base, typ, o.UUID)}}
			if len(fields) > 0 {
				want := map[string]bool{}
				for _, f := range fields {
					want[f] = true
				}
				m := s.view(o, base, want)
				for _, k := range sortedKeys(m) {
					if want[k] {
						e = append(e, kv{k, m[k]})
					}
				}
			}
			out = append(out, e)
		}
	}
	return omap{{key, out}}, nil
}

func (s *Server) ofType(typ string) []*object {
	var l []*object
	for _, o := range s.objs {
		if o.Type == typ {
			l = append(l, o)
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].created < l[j].created })
	return l
}

// detailOrder orders an object of a detail list as the real server
// writes it: perms2, uuid and id_perms first.
func detailOrder(m map[string]any) omap {
	var out omap
	for _, k := range []string{"perms2", "uuid", "id_perms"} {
		if v, ok := m[k]; ok {
			out = append(out, kv{k, v})
		}
	}
	for _, k := range sortedKeys(m) {
		if k != "perms2" && k != "uuid" && k != "id_perms" {
			out = append(out, kv{k, m[k]})
		}
	}
	return out
}

// sortedRefs returns o's refs to type rt as the real server reads them
// back: by UUID.
func (s *Server) sortedRefs(o *object, rt string) []Ref {
	l := slices.Clone(o.Refs[rt])
	sort.SliceStable(l, func(i, j int) bool { return l[i].UUID < l[j].UUID })
	return l
}

// view renders an object as GET does. want, when not nil, limits the
// properties, refs, back refs and children to those named.
func (s *Server) view(o *object, base string, want map[string]bool) map[string]any {
	m := map[string]any{"uuid": o.UUID, "fq_name": o.FQName, "name": o.FQName[len(o.FQName)-1],
		"href": href(base, o.Type, o.UUID)}
	if o.ParentType != "" {
		m["parent_type"], m["parent_uuid"] = o.ParentType, o.ParentUUID
		m["parent_href"] = href(base, o.ParentType, o.ParentUUID)
	}
	ok := func(k string) bool { return want == nil || want[k] }
	for k, v := range o.Props {
		if ok(k) {
			m[k] = orderedProp(k, v)
		}
	}
	for rt := range o.Refs {
		k := snake(rt) + "_refs"
		if !ok(k) {
			continue
		}
		var l []any
		for _, r := range s.sortedRefs(o, rt) {
			l = append(l, omap{{"to", r.To}, {"attr", r.Attr}, {"uuid", r.UUID}, {"href", href(base, rt, r.UUID)}})
		}
		if len(l) > 0 {
			m[k] = l
		}
	}
	for _, c := range s.backRefs(o) {
		k := snake(c.Type) + "_back_refs"
		if !ok(k) {
			continue
		}
		for _, r := range c.Refs[o.Type] {
			if r.UUID == o.UUID {
				l, _ := m[k].([]any)
				m[k] = append(l, omap{{"to", c.FQName}, {"attr", r.Attr}, {"uuid", c.UUID}, {"href", href(base, c.Type, c.UUID)}})
			}
		}
	}
	var kids []*object
	for _, c := range s.objs {
		if c.ParentUUID == o.UUID {
			kids = append(kids, c)
		}
	}
	sort.Slice(kids, func(i, j int) bool { return kids[i].created < kids[j].created })
	for _, c := range kids {
		k := snake(c.Type) + "s"
		if ok(k) {
			l, _ := m[k].([]any)
			m[k] = append(l, omap{{"to", c.FQName}, {"href", href(base, c.Type, c.UUID)}, {"uuid", c.UUID}})
		}
	}
	return m
}

// orderedProp gives id_perms and perms2 the real server's member order.
func orderedProp(k string, v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	var order []string
	switch k {
	case "id_perms":
		order = []string{"permissions", "uuid", "enable", "created", "last_modified", "description", "user_visible", "creator"}
	case "perms2":
		order = []string{"owner", "owner_access", "global_access", "share"}
	default:
		return v
	}
	var out omap
	for _, f := range order {
		if x, ok := m[f]; ok {
			if f == "permissions" {
				x = orderBy(x, "owner", "owner_access", "other_access", "group", "group_access")
			}
			out = append(out, kv{f, x})
		}
	}
	for _, f := range sortedKeys(m) {
		if !contains(order, f) {
			out = append(out, kv{f, m[f]})
		}
	}
	return out
}

func orderBy(v any, keys ...string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	var out omap
	for _, k := range keys {
		if x, ok := m[k]; ok {
			out = append(out, kv{k, x})
		}
	}
	for _, k := range sortedKeys(m) {
		if !contains(keys, k) {
			out = append(out, kv{k, m[k]})
		}
	}
	return out
}
