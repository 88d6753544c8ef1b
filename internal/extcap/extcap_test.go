package extcap

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

func TestParseArgsWiresharkForms(t *testing.T) {
	// As dumpcap starts a capture (checked with tshark 4.0), plus the
	// arguments it may add that do not matter here.
	o, err := ParseArgs([]string{
		"--capture", "--extcap-interface", "vrsniff-remote", "--extcap-capture-filter", "tcp port 80",
		"--fifo", "/tmp/wireshark_extcap_x", "--url", "http://h:1", "--token", "s3", "--src_vn", "*:a",
		"--direction", "any", "--debug", "--debug-file", "/tmp/d", "--extcap-control-in", "/tmp/ci",
		"--extcap-control-out", "/tmp/co", "--extcap-version=4.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Capture: true, Interface: Remote, CaptureFilter: "tcp port 80", FIFO: "/tmp/wireshark_extcap_x",
		URL: "http://h:1", Token: "s3", WiresharkVer: "4.0", Filter: filter.Options{SrcVN: "*:a"}}
	if o != want {
		t.Errorf("got %+v\nwant %+v", o, want)
	}
	for _, bad := range [][]string{{"--nope"}, {"--extcap-interfaces", "extra"}, {"--mirror_vlan", "x"}} {
		if _, err := ParseArgs(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

var (
	ifaceLine = regexp.MustCompile(`^(extcap \{version=[^}]+\}\{display=[^}]+\}|interface \{value=vrsniff-(remote|local)\}\{display=[^}]+\})$`)
	argLine   = regexp.MustCompile(`^arg \{number=(\d+)\}\{call=--([a-z_]+)\}\{display=[^{}]+\}\{type=(string|password|fileselect|selector|unsigned|boolflag)\}\{tooltip=[^{}]+\}(\{[a-z]+=[^{}]*\})*$`)
	valueLine = regexp.MustCompile(`^value \{arg=(\d+)\}\{value=[^{}]+\}\{display=[^{}]+\}(\{default=true\})?$`)
)

func run(t *testing.T, pr *Program, args ...string) (string, error) {
	t.Helper()
	o, err := ParseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	pr.Stdout = &out
	err = pr.Run(context.Background(), o)
	return out.String(), err
}

func TestProtocolAnswers(t *testing.T) {
	pr := &Program{Version: "1.2.3", Interfaces: func() ([]net.Interface, error) {
		return []net.Interface{{Name: "mirror0"}, {Name: "eth0"}}, nil
	}}
	out, err := run(t, pr, "--extcap-interfaces", "--extcap-version=4.0")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != "extcap {version=1.2.3}{display=vRouter mirror (vrsniff)}" {
		t.Errorf("interfaces:\n%s", out)
	}
	for _, l := range lines {
		if !ifaceLine.MatchString(l) {
			t.Errorf("bad line %q", l)
		}
	}

	out, err = run(t, pr, "--extcap-interface", Local, "--extcap-dlts")
	if err != nil || out != "dlt {number=1}{name=EN10MB}{display=Ethernet (decoded mirror frames)}\n" {
		t.Errorf("dlts: %q, %v", out, err)
	}

	for iface, wantCalls := range map[string]string{
		Remote: "url token token_file ca_file vn src_vn dst_vn direction bpf",
		Local:  "iface port vxlan_port mirror_vlan promisc vn src_vn dst_vn direction bpf",
	} {
		out, err := run(t, pr, "--extcap-interface", iface, "--extcap-config")
		if err != nil {
			t.Fatal(err)
		}
		var calls []string
		var defaults []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if m := argLine.FindStringSubmatch(l); m != nil {
				calls = append(calls, m[2])
				continue
			}
			if valueLine.MatchString(l) {
				if strings.HasSuffix(l, "{default=true}") {
					defaults = append(defaults, l)
				}
				continue
			}
			t.Errorf("%s: bad config line %q", iface, l)
		}
		if strings.Join(calls, " ") != wantCalls {
			t.Errorf("%s: calls %q, want %q", iface, calls, wantCalls)
		}
		// Only the direction has a default; the capture interface must be chosen.
		if len(defaults) != 1 || !strings.Contains(defaults[0], "{value=any}") {
			t.Errorf("%s: defaults %q", iface, defaults)
		}
		if iface == Local && (!strings.Contains(out, "{value=eth0}") || !strings.Contains(out, "{value=mirror0}")) {
			t.Errorf("local interfaces missing:\n%s", out)
		}
	}
}

func TestCaptureFilterValidation(t *testing.T) {
	pr := &Program{}
	out, err := run(t, pr, "--extcap-interface", Remote, "--extcap-capture-filter", "tcp port 80 and host 10.0.0.1")
	if err != nil || out != "" {
		t.Errorf("valid filter: %q, %v", out, err)
	}
	out, err = run(t, pr, "--extcap-interface", Remote, "--extcap-capture-filter", "tcp port")
	if err != nil || !strings.Contains(out, "tcp port") {
		t.Errorf("invalid filter: %q, %v", out, err)
	}
}

func TestRunErrors(t *testing.T) {
	pr := &Program{}
	file := filepath.Join(t.TempDir(), "fifo")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--extcap-dlts"}, "no --extcap-interface"},
		{[]string{"--extcap-interface", "eth0", "--extcap-dlts"}, `unknown interface "eth0"`},
		{[]string{"--extcap-interface", Remote}, "nothing to do"},
		{[]string{"--extcap-interface", Remote, "--capture"}, "--fifo"},
		{[]string{"--extcap-interface", Remote, "--capture", "--fifo", "/nonexistent/f"}, "no server URL"},
		{[]string{"--extcap-interface", Remote, "--capture", "--fifo", "/nonexistent/f", "--url", "ftp://x"}, "want http or https"},
		{[]string{"--extcap-interface", Remote, "--capture", "--fifo", "/nonexistent/f", "--url", "http://x", "--direction", "up"}, `direction "up"`},
		{[]string{"--extcap-interface", Remote, "--capture", "--fifo", "/nonexistent/f", "--url", "http://x", "--bpf", "tcp", "--extcap-capture-filter", "port"}, "filter"},
		{[]string{"--extcap-interface", Local, "--capture", "--fifo", "/nonexistent/f"}, "no capture interface"},
		{[]string{"--extcap-interface", Local, "--capture", "--fifo", "/nonexistent/f", "--iface", "x", "--port", "8099,0"}, `bad port "0"`},
		{[]string{"--extcap-interface", Local, "--capture", "--fifo", "/nonexistent/f", "--iface", "x", "--mirror_vlan", "5000"}, "mirror_vlan 5000"},
		{[]string{"--extcap-interface", Local, "--capture", "--fifo", "/nonexistent/f", "--iface", "x", "--vxlan_port", "8099"}, "--port and --vxlan_port both have port 8099"},
		{[]string{"--extcap-interface", Local, "--capture", "--fifo", "/nonexistent/f", "--iface", "x"}, "open fifo"},
		{[]string{"--extcap-interface", Remote, "--capture", "--fifo", "/nonexistent/f", "--url", "http://x"}, "open fifo"},
		{[]string{"--extcap-interface", Local, "--capture", "--fifo", file, "--iface", "no-such-if0"}, "no-such-if0"},
	} {
		_, err := run(t, pr, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestStreamURL(t *testing.T) {
	f := filter.Options{SrcVN: "*:vn-left", Direction: "ingress", BPF: "tcp port 80"}
	for in, want := range map[string]string{
		"127.0.0.1:8080":                       "http://127.0.0.1:8080/api/stream?bpf=tcp+port+80&direction=ingress&src_vn=%2A%3Avn-left",
		"https://s.example:8443/":              "https://s.example:8443/api/stream?bpf=tcp+port+80&direction=ingress&src_vn=%2A%3Avn-left",
		"https://s.example/vrsniff/api/stream": "https://s.example/vrsniff/api/stream?bpf=tcp+port+80&direction=ingress&src_vn=%2A%3Avn-left",
		"http://h/api/stream?src_vn=old&vn=x*": "http://h/api/stream?bpf=tcp+port+80&direction=ingress&src_vn=%2A%3Avn-left&vn=x%2A",
	} {
		u, err := StreamURL(in, f)
		if err != nil || u.String() != want {
			t.Errorf("%s: %v, %v; want %s", in, u, err, want)
		}
	}
	for _, bad := range []string{"", "http://", "ftp://h/", "http://h:port/"} {
		if _, err := StreamURL(bad, f); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestRemoteErrors checks the messages Wireshark shows for a server that
// refuses the stream, and that nothing is written to the FIFO then.
func TestRemoteErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "Bearer good":
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
		case r.URL.Path != streamPath:
			http.NotFound(w, r)
		case r.URL.Query().Get("vn") == "html":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html></html>")
		case r.URL.Query().Get("vn") == "junk":
			w.Header().Set("Content-Type", "application/x-pcapng")
			io.WriteString(w, "not pcapng")
		default:
			http.Error(w, "bad filter: direction \"x\"", http.StatusBadRequest)
		}
	}))
	defer ts.Close()
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := os.WriteFile(fifo, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String()
	closed.Close()

	pr := &Program{}
	for _, tc := range []struct {
		url, token, vn, want string
	}{
		{ts.URL, "bad", "", "401 Unauthorized: missing or wrong bearer token (check the token)"},
		{ts.URL + "/other/", "good", "", "404 Not Found: 404 page not found (is the URL that of a vrsniff capture server?)"},
		{ts.URL, "good", "", `400 Bad Request: bad filter: direction "x" (check the filter options)`},
		{ts.URL, "good", "html", "answered with text/html, not a pcapng stream"},
		{ts.URL, "good", "junk", "did not send a pcapng stream"},
		{closedURL, "good", "", "connect to " + closedURL + "/api/stream: dial tcp"},
	} {
		args := []string{"--extcap-interface", Remote, "--capture", "--fifo", fifo, "--url", tc.url, "--token", tc.token}
		if tc.vn != "" {
			args = append(args, "--vn", tc.vn)
		}
		_, err := run(t, pr, args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s token %s vn %s: error %v, want %q", tc.url, tc.token, tc.vn, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), tc.token) && tc.token != "" {
			t.Errorf("error shows the token: %v", err)
		}
	}
	if b, _ := os.ReadFile(fifo); len(b) != 0 {
		t.Errorf("wrote %d bytes to the fifo on errors", len(b))
	}
}

func TestPersonalDirs(t *testing.T) {
	old, cur := "/h/.config/wireshark/extcap", "/h/.local/lib/wireshark/extcap"
	for v, want := range map[string][]string{
		"4.0.17": {old}, "3.6.2": {old}, "4.2.0": {cur}, "4.1.0": {cur}, "5.0.1": {cur}, "": {old, cur},
	} {
		if got := PersonalDirs(v, "/h", ""); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
	if got := PersonalDirs("4.0.1", "/h", "/x"); got[0] != "/x/wireshark/extcap" {
		t.Errorf("XDG_CONFIG_HOME ignored: %v", got)
	}
}

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "vrsniff")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dirs := []string{filepath.Join(dir, "a", "extcap"), filepath.Join(dir, "b", "extcap")}
	for range 2 { // the second run replaces the links
		links, err := Install(exe, dirs)
		if err != nil || len(links) != 2 {
			t.Fatalf("install: %v, %v", links, err)
		}
		for _, l := range links {
			if target, err := os.Readlink(l); err != nil || target != exe {
				t.Errorf("%s -> %s, %v", l, target, err)
			}
		}
	}
	plain := filepath.Join(dir, "c")
	if err := os.MkdirAll(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plain, LinkName), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(exe, []string{plain}); err == nil || !strings.Contains(err.Error(), "not a link") {
		t.Errorf("over a regular file: %v", err)
	}
}

// Wireshark gets no rejects: the local interface's decoder keeps no copies
// of the fragments it holds.
func TestLocalPipelineKeepsNoFragmentCopies(t *testing.T) {
	o, err := ParseArgs([]string{"--extcap-interface", Local, "--port", "8099,9000", "--vxlan_port", "4790", "--mirror_vlan", "7"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := o.traffic()
	if err != nil || !slices.Equal(tr.Ports, []uint16{8099, 9000}) || !slices.Equal(tr.VXLANPorts, []uint16{4790}) || tr.MirrorVLAN != 7 {
		t.Fatalf("traffic %+v, %v", tr, err)
	}
	w, err := pcapfile.NewWriter(io.Discard, pcapfile.Options{Format: pcapfile.FormatPcapNG})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := localPipeline(emptySource{}, tr, nil, w)
	if err != nil {
		t.Fatal(err)
	}
	if pl.FragmentCopies() {
		t.Error("the local interface keeps fragment copies")
	}
}

type emptySource struct{}

func (emptySource) Next(*mirror.Packet) error { return io.EOF }
