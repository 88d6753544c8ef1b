package server

import (
	"bytes"
	"context"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dumpDOM loads url in headless Chromium and returns the DOM after its
// scripts ran.
func dumpDOM(t *testing.T, url string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed for the page test (apt-get install -y chromium): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return stdout.String()
}

func TestPage(t *testing.T) {
	st := newDirStore(t)
	_, ts := newTestServer(t, Options{Store: st, Token: "page-token"})
	dom := dumpDOM(t, ts.URL+"/?token=page-token")
	rows := strings.Split(dom, "<tr data-name=")
	if len(rows) != 4 {
		t.Fatalf("page lists %d captures, want 3:\n%s", len(rows)-1, dom)
	}
	// The token went into the Authorization header only: no link, no text
	// of the page holds it.
	if strings.Contains(dom, "page-token") {
		t.Errorf("the page shows the token:\n%s", dom)
	}
	// Newest first; name, size, signed link, pairs, delete button except
	// for the open file.
	want := []struct {
		name, size, extra string
		button            bool
	}{
		{"cap_00003.pcapng.part", ">50 B<", "writing", false},
		{"cap_00002.pcap", ">1.2 KiB<", `title="1234 bytes"`, true},
		{"cap_00001.pcapng", ">300 B<", "default-domain:admin:vn-a → default-domain:admin:vn-b (7)", true},
	}
	for i, w := range want {
		row := rows[i+1]
		for _, s := range []string{`"` + w.name + `"`, `>` + w.name + `</a>`, w.size, w.extra} {
			if !strings.Contains(row, s) {
				t.Errorf("row %d lacks %q:\n%s", i, s, row)
			}
		}
		m := regexp.MustCompile(`href="(/api/captures/` + regexp.QuoteMeta(w.name) + `\?expires=\d+&amp;sig=[\w-]+)"`).FindStringSubmatch(row)
		if m == nil {
			t.Errorf("row %d has no signed link:\n%s", i, row)
		} else {
			// The link works without the token.
			resp, body := do(t, "GET", ts.URL+html.UnescapeString(m[1]), nil)
			mustStatus(t, resp.StatusCode, 200, "link of row "+w.name)
			if file, _ := os.ReadFile(filepath.Join(st.dir, w.name)); !bytes.Equal(body, file) {
				t.Errorf("link of %s: %d bytes, want the file's %d", w.name, len(body), len(file))
			}
		}
		if got := strings.Contains(row, "<button>Delete</button>"); got != w.button {
			t.Errorf("row %d: delete button %v, want %v", i, got, w.button)
		}
	}
	// Counters from /api/stats, fetched with the token.
	for _, s := range []string{"<td>Stream clients</td>", "<td>Disk usage</td><td class=\"num\">1.5 KiB</td>",
		`1–3 of 3`, `curl -sN -H "Authorization: Bearer $TOKEN" '` + ts.URL + `/api/stream'`} {
		if !strings.Contains(dom, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if !strings.Contains(dom, `id="error"></p>`) {
		t.Errorf("page shows an error:\n%s", dom)
	}
}

// The page lists the files a page at a time, newest first; the fragment
// says which page. Each file shows its busiest VN pairs and how many more
// it has.
func TestPagePaging(t *testing.T) {
	st := manyStore(t, 250, 40)
	_, ts := newTestServer(t, Options{Store: st})
	for _, c := range []struct {
		frag, rangeText, first, last string
		rows                         int
		newer, older                 bool
	}{
		{"", "1–100 of 250", "cap_00250.pcapng", "cap_00151.pcapng", 100, false, true},
		{"#offset=100", "101–200 of 250", "cap_00150.pcapng", "cap_00051.pcapng", 100, true, true},
		{"#offset=200", "201–250 of 250", "cap_00050.pcapng", "cap_00001.pcapng", 50, true, false},
	} {
		dom := dumpDOM(t, ts.URL+"/"+c.frag)
		names := regexp.MustCompile(`<tr data-name="([^"]+)"`).FindAllStringSubmatch(dom, -1)
		if len(names) != c.rows || names[0][1] != c.first || names[len(names)-1][1] != c.last {
			t.Fatalf("%q: %d rows, want %d from %s to %s:\n%s", c.frag, len(names), c.rows, c.first, c.last, dom)
		}
		if !strings.Contains(dom, `<span id="range">`+c.rangeText+`</span>`) {
			t.Errorf("%q: range text is not %q", c.frag, c.rangeText)
		}
		for id, enabled := range map[string]bool{"newer": c.newer, "older": c.older} {
			if got := !strings.Contains(dom, `id="`+id+`" disabled`); got != enabled {
				t.Errorf("%q: %s enabled %v, want %v", c.frag, id, got, enabled)
			}
		}
		if !strings.Contains(dom, `<div title="default-domain:spoof:vn-000004 → default-domain:admin:vn-b (36)">default-domain:spoof:vn-000004 → default-domain:admin:vn-b (36)</div><div>and 35 more</div>`) {
			t.Errorf("%q: pairs are not the busiest five and a count", c.frag)
		}
	}
}

// The fragment selects the files by VN and time, through the API, and the
// form shows the selection.
func TestPageFilter(t *testing.T) {
	st := newDirStore(t)
	_, ts := newTestServer(t, Options{Store: st})
	for frag, want := range map[string]string{
		"#vn=vn-a":                             "cap_00001.pcapng",
		"#since=2026-03-01T12:01:30Z":          "cap_00003.pcapng.part cap_00002.pcap",
		"#vn=nothing":                          "",
		"#offset=0&until=2026-03-01T12:00:30Z": "cap_00001.pcapng",
	} {
		dom := dumpDOM(t, ts.URL+"/"+frag)
		var names []string
		for _, m := range regexp.MustCompile(`<tr data-name="([^"]+)"`).FindAllStringSubmatch(dom, -1) {
			names = append(names, m[1])
		}
		if got := strings.Join(names, " "); got != want {
			t.Errorf("%s lists %q, want %q", frag, got, want)
		}
	}
}
