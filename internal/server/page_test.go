package server

import (
	"bytes"
	"context"
	"os/exec"
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
	// Newest first; name, size, link with the token, pairs, delete button
	// except for the open file.
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
		for _, s := range []string{
			`"` + w.name + `"`, `>` + w.name + `</a>`, `href="/api/captures/` + w.name + `?token=page-token"`, w.size, w.extra,
		} {
			if !strings.Contains(row, s) {
				t.Errorf("row %d lacks %q:\n%s", i, s, row)
			}
		}
		if got := strings.Contains(row, "<button>Delete</button>"); got != w.button {
			t.Errorf("row %d: delete button %v, want %v", i, got, w.button)
		}
	}
	// Counters from /api/stats, fetched with the token.
	for _, s := range []string{"<td>Stream clients</td>", "<td>Disk usage</td><td class=\"num\">1.5 KiB</td>"} {
		if !strings.Contains(dom, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if !strings.Contains(dom, `id="error"></p>`) {
		t.Errorf("page shows an error:\n%s", dom)
	}
}
