package vrsniff_test

import (
	"encoding/json"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/vrsniff/vrsniff/"

// allowed is docs/architecture.md's "Who may import whom": for every
// package, the project's packages its non-test files may import. A
// package missing here, or an import not listed, fails the test, so that
// the page and the code change together.
var allowed = map[string][]string{
	"internal/mirror":   nil,
	"internal/vnpair":   nil,
	"internal/secret":   nil,
	"internal/pcapfile": {"internal/mirror"},
	"internal/filter":   {"internal/mirror"},
	"internal/gen":      {"internal/mirror"},
	"internal/pipeline": {"internal/filter", "internal/mirror", "internal/vnpair"},
	"internal/source":   {"internal/mirror", "internal/pcapfile"},
	"internal/ring":     {"internal/mirror", "internal/pcapfile", "internal/vnpair"},
	"internal/extract":  {"internal/filter", "internal/mirror", "internal/pcapfile"},
	"internal/decap":    {"internal/filter", "internal/mirror", "internal/pcapfile", "internal/pipeline", "internal/vnpair"},
	// The server serves a Store it declares: neither ring nor source.
	"internal/server": {"internal/extract", "internal/filter", "internal/mirror", "internal/objstore", "internal/pcapfile", "internal/pipeline", "internal/vnpair"},
	"internal/extcap": {"internal/extract", "internal/filter", "internal/mirror", "internal/pcapfile", "internal/pipeline", "internal/query",
		"internal/secret", "internal/source"},
	"internal/capture": {"internal/filter", "internal/flowindex", "internal/mirror", "internal/objstore", "internal/pcapfile", "internal/pipeline",
		"internal/query", "internal/ring", "internal/server", "internal/source", "internal/upload", "internal/vnpair"},
	// The uploader consumes a Bucket it declares (objstore's Store) and the
	// ring's spool.
	"internal/upload":    {"internal/objstore", "internal/ring", "internal/secret"},
	"internal/objstore":  {"internal/secret", "internal/vnpair"},
	"internal/flowindex": {"internal/mirror"},
	"internal/query":     {"internal/extract", "internal/filter", "internal/flowindex", "internal/mirror", "internal/objstore"},
	"internal/contrail":  {"internal/secret"},
	"internal/provision": {"internal/contrail", "internal/mirror"},
	"internal/heat":      {"deploy", "internal/mirror", "internal/provision", "internal/secret"},
	"deploy":             nil,
	"contrib/wireshark":  nil,
	// Test support: imported by tests and the benchmark tools only.
	"internal/testenv":                     nil,
	"internal/capture/capturetest":         {"internal/gen", "internal/mirror", "internal/pcapfile"},
	"internal/contrail/fakeapi":            nil,
	"internal/contrail/fakeapi/agent":      {"internal/contrail/fakeapi"},
	"internal/contrail/fakeapi/transcript": {"internal/testenv"},
	"bench/genhostile":                     {"internal/mirror", "internal/pcapfile"},
	"bench/sendmirror":                     nil,
	"cmd/vrsniff": {"internal/capture", "internal/contrail", "internal/decap", "internal/extcap", "internal/extract", "internal/filter",
		"internal/gen", "internal/heat", "internal/mirror", "internal/upload", "internal/query", "internal/objstore", "internal/pcapfile", "internal/provision", "internal/ring",
		"internal/secret", "internal/server", "internal/source", "internal/vnpair"},
}

// TestImportRules holds every package's imports of the project to allowed.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		if name == strings.TrimSuffix(module, "/") {
			continue // this test's own directory
		}
		seen[name] = true
		want, ok := allowed[name]
		if !ok {
			t.Errorf("%s: a package docs/architecture.md and allowed do not place", name)
			continue
		}
		for _, imp := range p.Imports {
			if rest, ok := strings.CutPrefix(imp, module); ok && !slices.Contains(want, rest) {
				t.Errorf("%s imports %s", name, rest)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(allowed)) {
		if !seen[name] {
			t.Errorf("%s: in allowed but not in the module", name)
		}
	}
}
