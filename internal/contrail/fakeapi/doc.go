// Package fakeapi is an in-memory model of the Contrail / OpenSDN config
// API server, of its schema transformer and svc-monitor, and of Keystone,
// for tests. It answers the requests vrsniff sends as the real
// vnc_cfg_api_server does, and compiles the policies attached to virtual
// networks into ACLs as the real schema transformer does, so that a test
// sees what a real control plane would make of its requests. Package
// agent, beside it, evaluates flows over those ACLs as the vRouter agent
// does. The facts: shared/spec/contrail-api.md, beside the repository
// ("What the real API server does", "How policies become ACLs"); the
// ground truth, checked by the tests: the real server's answers to
// probe.py (TestProbeMatchesRealServer) and the recorded schema
// transformer scenarios (TestTranscripts), in shared/contrail-real.
//
// The API server:
//
//   - create, read, partial update (each field sent replaces that field;
//     a *_refs list replaces the whole list), delete, lists (parent_id,
//     back_ref_id, obj_uuids, parent_fq_name_str, detail, fields, count),
//     /fqname-to-id, /id-to-fqname, /ref-update, /prop-collection-update,
//     with the real server's status codes, messages (Python reprs
//     included) and JSON (Python's separators);
//   - validation as the real one: unknown fields inside properties are
//     refused (400 "Bad property"); unknown top-level fields, name and a
//     changed uuid or fq_name in a PUT are ignored; integers sent as
//     strings or floats are converted; falsy values are not validated; the
//     XSD's "required" is not enforced; ranges and enumerations are
//     checked; network policy rules are checked as the server's hook does
//     (409 for two identical rules; 400 for a bad protocol, an IPv6
//     protocol with ethertype IPv4, a security group address, no action)
//     and get a rule_uuid when they have none;
//   - references: a ref without attr where the type has one is 400, a ref
//     to a missing object 400 ("Unknown reference"), to a missing uuid 500;
//     refs read back in UUID order, each with its attr (null when none);
//     /ref-update takes the operation in any case and type names with
//     underscores, ignores unknown keys, stores an ADD without attr with a
//     null attr, and answers 200 to a DELETE of a ref that is not there;
//   - map properties (annotations) read back sorted by key, repeated keys
//     collapsed; "annotations": null in a PUT is a 500 that changes
//     nothing;
//   - detail lists hold properties and forward refs only (back refs and
//     children only when named with fields=), oldest change first; a
//     single GET holds everything;
//   - a fresh server holds default-domain, default-domain:default-project
//     and its default-network-ipam, and no default-domain:admin;
//   - with Options.Keystone, requests need a token from /v3/auth/tokens or
//     /v2.0/tokens; a missing or expired one is Keystone's JSON 401.
//
// The schema transformer (details in compile.go) compiles, after every
// change, each VN's static policy refs (no timer, by sequence, first match
// decides, rules within an earlier rule's match dropped, implicit rules
// added) into an ACL named like the VN, and its refs with a timer into the
// ACL named "dynamic", as access-control-list children of the VN.
// Options emulate the control planes a client meets: one that ignores
// timers (IgnoreTimer), one whose transformer is down or slow
// (ManualCompile, then Compile), logical routers disabled
// (LogicalRoutersDisabled), and svc-monitor's service IPs (SvcMonitor).
// Tests read the result with ACLs, or as a client does, through GET.
//
// UUIDs are random version-4 UUIDs whose first 32 bits count up, so that
// what the real server orders by UUID (refs, back refs) comes out in
// creation order here, the same in every run; a client must not rely on
// that order.
package fakeapi
