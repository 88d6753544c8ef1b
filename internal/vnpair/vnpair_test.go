package vnpair

import (
	"bytes"
	"strings"
	"testing"
)

// parseLabel decodes a full (not shortened) label back into its pair: the
// proof that the encoding loses nothing, hence that distinct pairs get
// distinct labels.
func parseLabel(label string) (a, b []byte, s Split, ok bool) {
	i := strings.IndexAny(label, "+=")
	if i < 0 || strings.Contains(label, elision) {
		return nil, nil, None, false
	}
	s = Undirected
	if label[i] == '=' {
		s = Directed
	}
	a, ok1 := parseName(label[:i])
	b, ok2 := parseName(label[i+1:])
	return a, b, s, ok1 && ok2
}

func parseName(enc string) ([]byte, bool) {
	switch enc {
	case absentToken:
		return nil, true
	case emptyToken:
		return []byte{}, true
	case "":
		return nil, false
	}
	var out []byte
	for i := 0; i < len(enc); i++ {
		switch c := enc[i]; {
		case c == '.':
			if i == 0 {
				return nil, false
			}
			out = append(out, ':')
		case c == '~':
			if i+2 >= len(enc) {
				return nil, false
			}
			hi, lo := unhex(enc[i+1]), unhex(enc[i+2])
			if hi < 0 || lo < 0 {
				return nil, false
			}
			out = append(out, byte(hi<<4|lo))
			i += 2
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			out = append(out, c)
		default:
			return nil, false
		}
	}
	return out, true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// f13: two Kubernetes-namespace VNs of 158 and 160 bytes.
const (
	k8sPayments = "default-domain:k8s-payments-settlement-reconciliation-batch-processing-prod-eu-1:k8s-payments-settlement-reconciliation-batch-processing-prod-eu-1-pod-network"
	k8sNotify   = "default-domain:k8s-customer-notification-delivery-service-canary-staging-us-east2:k8s-customer-notification-delivery-service-canary-staging-us-east2-pod-network"
)

func b(s string) []byte { return []byte(s) }

func TestLabel(t *testing.T) {
	for _, c := range []struct {
		src, dst []byte
		s        Split
		want     string
	}{
		{b("default-domain:admin:vn-web"), b("default-domain:admin:vn-db"), Directed, "default-domain.admin.vn-web=default-domain.admin.vn-db"},
		{b("default-domain:admin:vn-web"), b("default-domain:admin:vn-db"), Undirected, "default-domain.admin.vn-db+default-domain.admin.vn-web"},
		{b("default-domain:admin:vn-db"), b("default-domain:admin:vn-web"), Undirected, "default-domain.admin.vn-db+default-domain.admin.vn-web"},
		{b("default-domain:admin:vn-db"), b("default-domain:admin:vn-web"), None, "default-domain.admin.vn-db+default-domain.admin.vn-web"},
		// The hostile pair that collided under the old scheme.
		{b("default-domain:admin:vn_web"), b("default-domain:admin:vn-db"), Directed, "default-domain.admin.vn_web=default-domain.admin.vn-db"},
		{b("default-domain:admin_vn:web"), b("default-domain:admin:vn-db"), Directed, "default-domain.admin_vn.web=default-domain.admin.vn-db"},
		// Absent and empty names; readable names come first.
		{nil, b("a:b"), Undirected, "a.b+~none"},
		{b(""), b("a:b"), Undirected, "a.b+~empty"},
		{nil, b(""), Undirected, "~empty+~none"},
		{nil, b(""), Directed, "~none=~empty"},
		{nil, nil, Undirected, "~none+~none"},
		{b("none"), nil, Directed, "none=~none"},
		// f16: spaces, UTF-8, '/', "../", a leading ':' and '.'.
		{b("default-domain:admin:web tier"), nil, Directed, "default-domain.admin.web~20tier=~none"},
		{b("default-domain:admin:réseau-prod"), nil, Directed, "default-domain.admin.r~C3~A9seau-prod=~none"},
		{b("default-domain:admin:../../../../tmp/escape-test"), nil, Directed,
			"default-domain.admin.~2E~2E~2F~2E~2E~2F~2E~2E~2F~2E~2E~2Ftmp~2Fescape-test=~none"},
		{b(":x.y~z+w=v\x00\n"), b("../.."), Directed, "~3Ax~2Ey~7Ez~2Bw~3Dv~00~0A=~2E~2E~2F~2E~2E"},
		{b("-rf"), b("a-b"), Directed, "~2Drf=a-b"},
	} {
		got := Label(c.src, c.dst, c.s, 255)
		if got != c.want {
			t.Errorf("Label(%q, %q, %v) = %q, want %q", c.src, c.dst, c.s, got, c.want)
		}
		a, bb, s, ok := parseLabel(got)
		wa, wb := Canonical(c.src, c.dst, c.s)
		if c.s == None {
			wa, wb = Canonical(c.src, c.dst, Undirected)
		}
		if !ok || !equalName(a, wa) || !equalName(bb, wb) || (c.s != None && s != c.s) {
			t.Errorf("%q parses back as %q %q %v %v", got, a, bb, s, ok)
		}
	}
}

func equalName(x, y []byte) bool { return (x == nil) == (y == nil) && bytes.Equal(x, y) }

// f13: long names are shortened within every limit a caller gives; the
// labels stay distinct and show both networks.
func TestLongNames(t *testing.T) {
	pod, svc := b(k8sPayments), b(strings.Replace(k8sPayments, "pod-network", "service-network", 1))
	for limit := MinLabel; limit <= 400; limit++ {
		seen := map[string]string{}
		for _, c := range []struct {
			name     string
			src, dst []byte
			s        Split
		}{
			{"payments+notify", b(k8sPayments), b(k8sNotify), Undirected},
			{"payments=notify", b(k8sPayments), b(k8sNotify), Directed},
			{"notify=payments", b(k8sNotify), b(k8sPayments), Directed},
			{"svc+notify", svc, b(k8sNotify), Undirected},
			{"pod+none", pod, nil, Undirected},
			{"svc+none", svc, nil, Undirected},
			{"svc+empty", svc, b(""), Undirected},
		} {
			l := Label(c.src, c.dst, c.s, limit)
			if len(l) > limit {
				t.Fatalf("limit %d: %s: %d bytes: %q", limit, c.name, len(l), l)
			}
			if other, dup := seen[l]; dup {
				t.Fatalf("limit %d: %s and %s share %q", limit, c.name, other, l)
			}
			seen[l] = c.name
			checkSafe(t, l)
			if limit >= 120 && c.name == "payments+notify" && (!strings.Contains(l, "k8s-payments-sett") ||
				!strings.Contains(l, "k8s-customer-notif") || strings.Count(l, "pod-network") != 2) {
				t.Errorf("limit %d: %q does not show both networks", limit, l)
			}
			if limit >= 120 && strings.HasPrefix(c.name, "svc") && !strings.Contains(l, "service-network") {
				t.Errorf("limit %d: %q lost the network's own name", limit, l)
			}
		}
	}
	if l := Label(b(k8sPayments), b(k8sNotify), Undirected, 1000); len(l) != len(k8sPayments)+1+len(k8sNotify) {
		t.Errorf("shortened although it fits: %q", l)
	}
}

// checkSafe fails unless l is a file name that stays in its directory and
// needs no quoting.
func checkSafe(t *testing.T, l string) {
	t.Helper()
	if l == "" || l[0] == '.' || l[0] == '-' {
		t.Fatalf("label %q", l)
	}
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-_.+=~", c) >= 0:
		default:
			t.Fatalf("label %q holds %q", l, c)
		}
	}
}

func TestAppendKey(t *testing.T) {
	pairs := [][2][]byte{
		{nil, nil}, {nil, b("")}, {b(""), nil}, {b(""), b("")},
		{b("a"), b("b")}, {b("a\x00"), b("b")}, {b("a"), b("\x00b")}, {b("a\x01\x01"), b("b")},
		{b("a"), nil}, {b("a"), b("")}, {b(""), b("a")},
	}
	for _, s := range []Split{Directed, Undirected} {
		keys := map[string][2][]byte{}
		for _, p := range pairs {
			k := string(AppendKey(nil, p[0], p[1], s))
			if q, dup := keys[k]; dup {
				ca, cb := Canonical(p[0], p[1], s)
				qa, qb := Canonical(q[0], q[1], s)
				if !equalName(ca, qa) || !equalName(cb, qb) {
					t.Errorf("%v: %q and %q share key %q", s, p, q, k)
				}
			}
			keys[k] = p
		}
	}
	if string(AppendKey(nil, b("x"), b("y"), Undirected)) != string(AppendKey(nil, b("y"), b("x"), Undirected)) {
		t.Error("undirected keys depend on the direction")
	}
	if string(AppendKey(nil, b("x"), b("y"), Directed)) == string(AppendKey(nil, b("y"), b("x"), Directed)) {
		t.Error("directed keys ignore the direction")
	}
	m := map[string]int{string(AppendKey(nil, b("x"), b("y"), Undirected)): 1}
	var buf []byte
	src, dst := b("y"), b("x")
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendKey(buf[:0], src, dst, Undirected)
		if m[string(buf)] != 1 {
			t.Fatal("lost")
		}
	}); n != 0 {
		t.Errorf("a key look-up allocates %v times", n)
	}
}

func TestParseSplit(t *testing.T) {
	for in, want := range map[string]Split{"": None, "vn": Undirected, "vn-direction": Directed} {
		if got, err := ParseSplit(in); got != want || err != nil || got.String() != in {
			t.Errorf("ParseSplit(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSplit("pair"); err == nil {
		t.Error("ParseSplit accepts pair")
	}
}

// FuzzLabel: every label is within its limit and safe as a file name;
// distinct pairs get distinct labels (a full label decodes back to its
// pair); an undirected label ignores the direction.
func FuzzLabel(f *testing.F) {
	f.Add(b("default-domain:admin:vn_web"), b("default-domain:admin:vn-db"), b("default-domain:admin_vn:web"), b("default-domain:admin:vn-db"), false, false, false, false, 255, true)
	f.Add(b(k8sPayments), b(k8sNotify), b(k8sNotify), b(k8sPayments), false, false, false, false, 195, false)
	f.Add(b(""), b("x"), b("x"), b(""), true, false, false, true, 48, true)
	f.Add(b("../../x"), b("~none"), b("a/b"), b(" "), false, true, false, false, 60, true)
	f.Fuzz(func(t *testing.T, a1, b1, a2, b2 []byte, nilA1, nilB1, nilA2, nilB2 bool, limit int, directed bool) {
		if nilA1 {
			a1 = nil
		} else if a1 == nil {
			a1 = []byte{}
		}
		if nilB1 {
			b1 = nil
		} else if b1 == nil {
			b1 = []byte{}
		}
		if nilA2 {
			a2 = nil
		} else if a2 == nil {
			a2 = []byte{}
		}
		if nilB2 {
			b2 = nil
		} else if b2 == nil {
			b2 = []byte{}
		}
		limit = MinLabel + abs(limit)%400
		s := Undirected
		if directed {
			s = Directed
		}
		l1, l2 := Label(a1, b1, s, limit), Label(a2, b2, s, limit)
		for _, l := range []string{l1, l2} {
			if len(l) > limit {
				t.Fatalf("%d bytes over the limit %d: %q", len(l), limit, l)
			}
			checkSafe(t, l)
		}
		if s == Undirected && Label(b1, a1, s, limit) != l1 {
			t.Fatalf("undirected label depends on the direction: %q", l1)
		}
		ca1, cb1 := Canonical(a1, b1, s)
		ca2, cb2 := Canonical(a2, b2, s)
		same := equalName(ca1, ca2) && equalName(cb1, cb2)
		if same != (l1 == l2) {
			t.Fatalf("pairs %q/%q and %q/%q, labels %q and %q", a1, b1, a2, b2, l1, l2)
		}
		if pa, pb, ps, ok := parseLabel(l1); ok {
			if !equalName(pa, ca1) || !equalName(pb, cb1) || ps != s {
				t.Fatalf("%q parses back as %q %q", l1, pa, pb)
			}
		} else if !strings.Contains(l1, elision) || len(Label(a1, b1, s, 1<<20)) <= limit {
			t.Fatalf("%q neither parses back nor is shortened", l1)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n {
			return 0
		}
		return -n
	}
	return n
}
