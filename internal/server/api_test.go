package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func newTestServer(t *testing.T, o Options) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Hub().Close()
		ts.Close()
	})
	return s, ts
}

func do(t *testing.T, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestCapturesList(t *testing.T) {
	st := newDirStore(t)
	_, ts := newTestServer(t, Options{Store: st})
	resp, body := do(t, "GET", ts.URL+"/api/captures", nil)
	mustStatus(t, resp.StatusCode, 200, "list")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var got []FileInfo
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	want, _ := st.List()
	if len(got) != len(want) {
		t.Fatalf("got %d files, want %d: %s", len(got), len(want), body)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Size != w.Size || !g.First.Equal(w.First) || !g.Last.Equal(w.Last) ||
			g.Packets != w.Packets || g.Open != w.Open || len(g.Pairs) != len(w.Pairs) {
			t.Errorf("file %d: got %+v, want %+v", i, g, w)
		}
	}
	if got[0].Pairs[0].SrcVN != "default-domain:admin:vn-a" || got[0].Pairs[0].Packets != 7 {
		t.Errorf("pairs: %+v", got[0].Pairs)
	}

	// Without a store the list is empty, not null.
	_, ts2 := newTestServer(t, Options{})
	_, body = do(t, "GET", ts2.URL+"/api/captures", nil)
	if strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("no store: %s", body)
	}
}

func TestCaptureDownload(t *testing.T) {
	st := newDirStore(t)
	_, ts := newTestServer(t, Options{Store: st})
	for _, name := range []string{"cap_00001.pcapng", "cap_00002.pcap"} {
		want, err := os.ReadFile(filepath.Join(st.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, "GET", ts.URL+"/api/captures/"+name, nil)
		mustStatus(t, resp.StatusCode, 200, name)
		if !bytes.Equal(body, want) {
			t.Errorf("%s: body differs (%d bytes, want %d)", name, len(body), len(want))
		}
		wantCT := "application/vnd.tcpdump.pcap"
		if strings.HasSuffix(name, ".pcapng") {
			wantCT = "application/x-pcapng"
		}
		if ct := resp.Header.Get("Content-Type"); ct != wantCT {
			t.Errorf("%s: content type %q, want %q", name, ct, wantCT)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename="+name {
			t.Errorf("%s: disposition %q", name, cd)
		}

		resp, body = do(t, "GET", ts.URL+"/api/captures/"+name, map[string]string{"Range": "bytes=10-99"})
		mustStatus(t, resp.StatusCode, http.StatusPartialContent, name+" range")
		if !bytes.Equal(body, want[10:100]) {
			t.Errorf("%s range: got %d bytes, want bytes 10-99", name, len(body))
		}
		if cr := resp.Header.Get("Content-Range"); cr != "bytes 10-99/"+strconv.Itoa(len(want)) {
			t.Errorf("%s: Content-Range %q", name, cr)
		}
	}
	resp, _ := do(t, "GET", ts.URL+"/api/captures/nope.pcapng", nil)
	mustStatus(t, resp.StatusCode, 404, "unknown file")
}

func TestCaptureDelete(t *testing.T) {
	st := newDirStore(t)
	_, ts := newTestServer(t, Options{Store: st})
	resp, _ := do(t, "DELETE", ts.URL+"/api/captures/cap_00001.pcapng", nil)
	mustStatus(t, resp.StatusCode, 204, "delete")
	if _, err := os.Stat(filepath.Join(st.dir, "cap_00001.pcapng")); !os.IsNotExist(err) {
		t.Errorf("file still there: %v", err)
	}
	resp, _ = do(t, "GET", ts.URL+"/api/captures/cap_00001.pcapng", nil)
	mustStatus(t, resp.StatusCode, 404, "get deleted")
	resp, _ = do(t, "DELETE", ts.URL+"/api/captures/cap_00001.pcapng", nil)
	mustStatus(t, resp.StatusCode, 404, "delete again")
	resp, _ = do(t, "DELETE", ts.URL+"/api/captures/cap_00003.pcapng.part", nil)
	mustStatus(t, resp.StatusCode, 409, "delete open")
	if _, err := os.Stat(filepath.Join(st.dir, "cap_00003.pcapng.part")); err != nil {
		t.Errorf("open file gone: %v", err)
	}
	resp, _ = do(t, "DELETE", ts.URL+"/api/captures/unknown.pcap", nil)
	mustStatus(t, resp.StatusCode, 404, "delete unknown")
}

// listFails is a store that cannot list its files.
type listFails struct{ *dirStore }

func (listFails) List() ([]FileInfo, error) { return nil, errors.New("listing is broken") }

// DELETE asks the store's Delete alone, so that its answer (409 for the
// file being written, 404 for an unknown one) cannot be overtaken by a
// rotation between a look and the deletion.
func TestCaptureDeleteWithoutList(t *testing.T) {
	st := listFails{newDirStore(t)}
	_, ts := newTestServer(t, Options{Store: st})
	for _, c := range []struct {
		name string
		code int
	}{{"cap_00003.pcapng.part", 409}, {"unknown.pcap", 404}, {"cap_00001.pcapng", 204}} {
		resp, _ := do(t, "DELETE", ts.URL+"/api/captures/"+c.name, nil)
		mustStatus(t, resp.StatusCode, c.code, "delete "+c.name)
	}
	if _, err := os.Stat(filepath.Join(st.dir, "cap_00001.pcapng")); !os.IsNotExist(err) {
		t.Errorf("deleted file still there: %v", err)
	}
}

func TestPathTraversal(t *testing.T) {
	st := newDirStore(t)
	_, ts := newTestServer(t, Options{Store: st})
	secret := filepath.Join(filepath.Dir(st.dir), "secret")
	for _, p := range []string{
		"..%2fsecret", "..%2Fsecret", "%2e%2e%2fsecret", "..%5csecret", "%2e%2e",
		escSlashes(secret), "%2F" + strings.TrimPrefix(escSlashes(secret), "%2F"), "captures%2f..%2f..%2fcaptures%2f..%2fsecret",
		"..", "../secret", "%00", "cap_00001.pcapng%00",
	} {
		for _, method := range []string{"GET", "DELETE"} {
			resp, body := do(t, method, ts.URL+"/api/captures/"+p, nil)
			if resp.StatusCode < 400 || strings.Contains(string(body), "TOPSECRET") {
				t.Errorf("%s %s: status %d, body %q", method, p, resp.StatusCode, body)
			}
		}
	}
	if _, err := os.Stat(secret); err != nil {
		t.Errorf("secret file: %v", err)
	}
	for _, n := range []string{"a/b", `a\b`, "..", ".", "", "/etc/passwd", "x..y", "a\x00"} {
		if validName(n) {
			t.Errorf("validName(%q) = true", n)
		}
	}
	for _, n := range []string{"cap_00001.pcapng", "out_00001_20260301120000.pcapng.part"} {
		if !validName(n) {
			t.Errorf("validName(%q) = false", n)
		}
	}
}

// escSlashes escapes every slash of an absolute path.
func escSlashes(p string) string { return strings.ReplaceAll(p, "/", "%2F") }

func TestAuth(t *testing.T) {
	st := newDirStore(t)
	srv, ts := newTestServer(t, Options{Store: st, Token: "s3cret-token"})
	paths := []string{"/api/captures", "/api/captures/cap_00001.pcapng", "/api/stats", "/api/info", "/api/history", "/metrics"}
	for _, p := range paths {
		resp, _ := do(t, "GET", ts.URL+p, nil)
		mustStatus(t, resp.StatusCode, 401, "no token "+p)
		if wa := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", p, wa)
		}
		resp, _ = do(t, "GET", ts.URL+p, map[string]string{"Authorization": "Bearer wrong"})
		mustStatus(t, resp.StatusCode, 401, "wrong token "+p)
		resp, _ = do(t, "GET", ts.URL+p+"?token=wrong", nil)
		mustStatus(t, resp.StatusCode, 401, "wrong query token "+p)
		resp, _ = do(t, "GET", ts.URL+p, map[string]string{"Authorization": "Bearer s3cret-token"})
		mustStatus(t, resp.StatusCode, 200, "right token "+p)
		resp, _ = do(t, "GET", ts.URL+p+"?token=s3cret-token", nil)
		mustStatus(t, resp.StatusCode, 200, "right query token "+p)
	}
	// The page is served without the token: it asks for it with a form.
	resp, body := do(t, "GET", ts.URL+"/", nil)
	mustStatus(t, resp.StatusCode, 200, "page without token")
	if !strings.Contains(string(body), `<form id="login"`) {
		t.Errorf("page has no login form")
	}
	// Neither the query token nor a signed link changes anything: a
	// DELETE needs the header.
	resp, _ = do(t, "DELETE", ts.URL+"/api/captures/cap_00002.pcap?token=s3cret-token", nil)
	mustStatus(t, resp.StatusCode, 401, "delete with query token")
	link := srv.downloadLink("cap_00002.pcap")
	resp, _ = do(t, "DELETE", ts.URL+link, nil)
	mustStatus(t, resp.StatusCode, 401, "delete with a signed link")
	resp, _ = do(t, "GET", ts.URL+link, nil)
	mustStatus(t, resp.StatusCode, 200, "download with the same signed link")
	resp, _ = do(t, "DELETE", ts.URL+"/api/captures/cap_00002.pcap", map[string]string{"Authorization": "Bearer s3cret-token"})
	mustStatus(t, resp.StatusCode, 204, "delete with token")

	resp, body = do(t, "GET", ts.URL+"/healthz", nil)
	mustStatus(t, resp.StatusCode, 200, "healthz")
	if strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("healthz body %q", body)
	}
}

func TestCheckListen(t *testing.T) {
	for _, a := range []string{":8080", "0.0.0.0:8080", "10.1.2.3:8080", "[::]:8080", "example.com:80", "192.168.0.1:1"} {
		if err := CheckListen(a, false); err == nil {
			t.Errorf("CheckListen(%q, false) accepted", a)
		}
		if err := CheckListen(a, true); err != nil {
			t.Errorf("CheckListen(%q, true): %v", a, err)
		}
	}
	for _, a := range []string{"127.0.0.1:8080", "127.0.0.2:1", "[::1]:8080", "localhost:8080"} {
		if err := CheckListen(a, false); err != nil {
			t.Errorf("CheckListen(%q, false): %v", a, err)
		}
	}
	if err := CheckListen("nonsense", true); err == nil {
		t.Error("CheckListen accepted an address without a port")
	}
}

// FuzzValidName checks that an accepted name never leaves the directory it
// is joined to.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"cap_00001.pcapng", "..", "../x", "a/b", `a\b`, "/etc/passwd", ".", "x..y", "a\x00b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !validName(name) {
			return
		}
		const dir = "/srv/captures"
		p := filepath.Join(dir, name)
		if filepath.Dir(p) != dir || filepath.Base(p) != name {
			t.Fatalf("validName(%q) accepted a name that resolves to %s", name, p)
		}
	})
}
