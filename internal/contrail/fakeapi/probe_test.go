package fakeapi

import (
	"bytes"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

// probeLine is one line of probe.py's output: a case with its status and
// (shortened) body, or an info line ("   rules after PUT...: 1") or a
// section header.
type probeLine struct {
	text   string // the whole line, normalised
	cas    string // the case, for a status line
	status string
	body   string // normalised
	cut    bool   // the probe shortened the body
}

var (
	reUUID = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	reHost = regexp.MustCompile(`https?://[^/'" ]+/`)
	// probe.py's random names: the project tag and per-case policies.
	reTag  = regexp.MustCompile(`probe-[0-9a-f]{6}`)
	reRand = regexp.MustCompile(`np-[0-9a-f]{6}\b`)
	// A UUID the probe's shortening cut.
	reCutUUID = regexp.MustCompile(`[0-9a-f]{1,8}(-[0-9a-f]{0,12}){0,4}$`)
)

// realCassandra lists the transcript lines that show an artefact of the
// recording, not of the real server: the recording ran on cassandra_fake,
// which applies a failed batch, and "annotations": null (a 500) cleared
// the annotations; on real Cassandra nothing changes, which the fake
// follows.
var realCassandra = map[string]string{
	"   after null (cassandra_fake applies batch ops at once; real Cassandra would not): None": "   after null (cassandra_fake applies batch ops at once; real Cassandra would not): " +
		"{'key_value_pair': [{'key': 'a', 'value': '2'}, {'key': 'z', 'value': '1'}]}",
}

func normaliseProbe(s string) string {
	s = reUUID.ReplaceAllString(s, "<uuid>")
	s = reHost.ReplaceAllString(s, "http://<host>/")
	s = reTag.ReplaceAllString(s, "probe-<tag>")
	return reRand.ReplaceAllString(s, "np-<rand>")
}

func parseProbe(out string) []probeLine {
	var l []probeLine
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		cas, rest, ok := strings.Cut(line, " | ")
		if !ok || strings.HasPrefix(line, "   ") {
			l = append(l, probeLine{text: normaliseProbe(line)})
			continue
		}
		status, body, _ := strings.Cut(rest, " | ")
		cut := len(body) >= 230
		if cut {
			body = reCutUUID.ReplaceAllString(body, "<uuid>")
		}
		l = append(l, probeLine{text: normaliseProbe(line), cas: strings.TrimSpace(cas),
			status: status, body: normaliseProbe(body), cut: cut})
	}
	return l
}

// TestProbeMatchesRealServer runs the recorded probe (shared/contrail-real/probe.py)
// against the fake and compares every line with what the real OpenSDN API
// server answered (probe_real.txt): the status codes, the bodies and the
// info lines, once UUIDs, hosts and the probe's random names are masked.
// A body the probe shortened is compared up to the shorter of the two.
func TestProbeMatchesRealServer(t *testing.T) {
	dir := filepath.Join(testenv.SharedDir(t), "contrail-real")
	if err := exec.Command("python3", "-c", "import requests").Run(); err != nil {
		msg := "python3 with requests is needed (apt-get install -y python3-requests): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	want, err := os.ReadFile(filepath.Join(dir, "probe_real.txt"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{}))
	defer srv.Close()
	cmd := exec.Command("python3", filepath.Join(dir, "probe.py"), srv.URL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe.py: %v\n%s", err, stderr.String())
	}
	g, w := parseProbe(string(got)), parseProbe(string(want))
	if len(g) != len(w) {
		t.Errorf("probe printed %d lines, the real server's transcript has %d", len(g), len(w))
	}
	statusDiffs := 0
	for i := range min(len(g), len(w)) {
		a, b := g[i], w[i]
		switch {
		case a.cas != b.cas:
			t.Errorf("line %d: case %q, want %q", i+1, a.text, b.text)
		case a.cas == "":
			if w, ok := realCassandra[b.text]; ok {
				b.text = w
			}
			if a.text != b.text {
				t.Errorf("line %d:\n got  %s\n want %s", i+1, a.text, b.text)
			}
		case a.status != b.status:
			statusDiffs++
			t.Errorf("line %d: %s: status %s, want %s\n got  %s\n want %s", i+1, a.cas, a.status, b.status, a.body, b.body)
		case !bodyMatches(a, b):
			t.Errorf("line %d: %s: body\n got  %s\n want %s", i+1, a.cas, a.body, b.body)
		}
	}
	if statusDiffs > 0 {
		t.Errorf("%d status codes differ from the real server", statusDiffs)
	}
}

func bodyMatches(a, b probeLine) bool {
	if !a.cut && !b.cut {
		return a.body == b.body
	}
	n := min(len(a.body), len(b.body))
	return a.body[:n] == b.body[:n]
}
