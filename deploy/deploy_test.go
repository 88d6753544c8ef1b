// Package deploy holds the files that install vrsniff on a sniffer VM: the
// systemd unit, the default settings and a cloud-init snippet. Its tests
// check them with systemd's and cloud-init's own validators and run the
// daemon with the shipped settings.
package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"go.yaml.in/yaml/v3"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

var vrsniffBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vrsniff-deploy")
	if err != nil {
		panic(err)
	}
	vrsniffBin = filepath.Join(dir, "vrsniff")
	if out, err := exec.Command("go", "build", "-o", vrsniffBin, "../cmd/vrsniff").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// systemd-analyze verify only warns, with exit status 0, about unknown
// keys or bad values: any output is a failure. It also checks that the
// ExecStart binary exists, so the copy points at a freshly built one.
func TestUnitVerifies(t *testing.T) {
	unit := read(t, "vrsniff.service")
	if !strings.Contains(unit, "ExecStart=/usr/local/bin/vrsniff capture --config /etc/vrsniff/vrsniff.yaml\n") {
		t.Fatal("ExecStart is not vrsniff capture with /etc/vrsniff/vrsniff.yaml")
	}
	dir := t.TempDir()
	copy := filepath.Join(dir, "vrsniff.service")
	if err := os.WriteFile(copy, []byte(strings.ReplaceAll(unit, "/usr/local/bin/vrsniff", vrsniffBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", copy).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// What the daemon needs, and what would break AF_PACKET.
	for _, want := range []string{
		"Restart=on-failure\n",
		"Type=notify\n",
		"WatchdogSec=30s\n",
		"AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN\n",
		"CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN\n",
		"StateDirectory=vrsniff\n",
		"User=vrsniff\n",
		"NoNewPrivileges=yes\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	for _, bad := range []string{"\nPrivateNetwork=", "\nIPAddressDeny=", "\nPrivateUsers="} {
		if strings.Contains(unit, bad) {
			t.Errorf("unit sets %s, which hides the capture interface", strings.TrimSpace(bad))
		}
	}
	var families string
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(l, "RestrictAddressFamilies="); ok {
			families = v
		}
	}
	for _, f := range []string{"AF_PACKET", "AF_INET", "AF_NETLINK"} {
		if !strings.Contains(" "+families+" ", " "+f+" ") {
			t.Errorf("RestrictAddressFamilies=%s lacks %s", families, f)
		}
	}
}

type cloudConfig struct {
	WriteFiles []struct {
		Path        string `yaml:"path"`
		Permissions string `yaml:"permissions"`
		Content     string `yaml:"content"`
	} `yaml:"write_files"`
	Packages []string   `yaml:"packages"`
	Runcmd   [][]string `yaml:"runcmd"`
}

func TestCloudInit(t *testing.T) {
	if out, err := exec.Command("cloud-init", "schema", "-c", "cloud-init.yaml").CombinedOutput(); err != nil {
		t.Fatalf("cloud-init schema: %v\n%s", err, out)
	}
	raw := read(t, "cloud-init.yaml")
	if !strings.HasPrefix(raw, "#cloud-config\n") {
		t.Fatal("cloud-init.yaml does not start with #cloud-config")
	}
	var cc cloudConfig
	if err := yaml.Unmarshal([]byte(raw), &cc); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range cc.WriteFiles {
		files[f.Path] = f.Content
	}
	// The snippet carries the unit and the settings of this directory.
	for path, name := range map[string]string{
		"/etc/systemd/system/vrsniff.service": "vrsniff.service",
		"/etc/vrsniff/vrsniff.yaml":           "vrsniff.yaml",
	} {
		if files[path] != read(t, name) {
			t.Errorf("%s in cloud-init.yaml differs from %s", path, name)
		}
	}
	script, ok := files["/usr/local/sbin/vrsniff-install"]
	if !ok || len(cc.Runcmd) != 1 || strings.Join(cc.Runcmd[0], " ") != "/usr/local/sbin/vrsniff-install" {
		t.Fatalf("runcmd %v does not run the install script", cc.Runcmd)
	}
	sh := exec.Command("sh", "-n")
	sh.Stdin = strings.NewReader(script)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("install script: %v\n%s", err, out)
	}
	for _, want := range []string{`VRSNIFF_URL="${VRSNIFF_URL:-` + DefaultURL + "}", `VRSNIFF_SHA256="${VRSNIFF_SHA256:-` + DefaultSHA256 + "}",
		"/etc/vrsniff/token", "systemctl enable --now vrsniff.service"} {
		if !strings.Contains(script, want) {
			t.Errorf("install script lacks %q", want)
		}
	}
}

// installScript is the content of /usr/local/sbin/vrsniff-install.
func installScript(t *testing.T) string {
	var cc cloudConfig
	if err := yaml.Unmarshal([]byte(read(t, "cloud-init.yaml")), &cc); err != nil {
		t.Fatal(err)
	}
	for _, f := range cc.WriteFiles {
		if f.Path == "/usr/local/sbin/vrsniff-install" {
			return f.Content
		}
	}
	t.Fatal("no install script")
	return ""
}

// The download part of the install script, run for real with a curl that
// copies a local file: the binary is installed only when its SHA-256 is
// VRSNIFF_SHA256, and a missing or malformed checksum stops the script
// before the download.
func TestInstallChecksum(t *testing.T) {
	script := installScript(t)
	start := strings.Index(script, "VRSNIFF_URL=")
	const installLine = `install -m 0755 "$tmp" /usr/local/bin/vrsniff`
	end := strings.Index(script, installLine)
	if start < 0 || end < start {
		t.Fatal("no download step in the install script")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// curl -fsSL ... -o FILE URL: copies URL (a local path) to FILE and
	// notes that it ran.
	fakeCurl := "#!/bin/sh\nwhile [ $# -gt 1 ]; do [ \"$1\" = -o ] && out=$2; shift; done\ntouch \"$CURLED\"\ncp \"$1\" \"$out\"\n"
	if err := os.WriteFile(filepath.Join(bin, "curl"), []byte(fakeCurl), 0o755); err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(dir, "vrsniff-linux-amd64")
	content := []byte("a release binary\n")
	if err := os.WriteFile(binary, content, 0o755); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(content)
	sum := hex.EncodeToString(h[:])
	step := "set -eu\n" + script[start:end] + `cp "$tmp" "$INSTALLED"` + "\n"
	for _, tc := range []struct {
		name, sha  string
		ok, curled bool
		msg        string
	}{
		{"match", sum, true, true, ""},
		{"match, upper case", strings.ToUpper(sum), true, true, ""},
		{"mismatch", strings.Repeat("0", 64), false, true, "not installed"},
		{"unset", "", false, false, "VRSNIFF_SHA256 must be the binary's SHA-256"},
		{"short", sum[:63], false, false, "VRSNIFF_SHA256 must be the binary's SHA-256"},
		{"two sums", sum + " " + sum, false, false, "VRSNIFF_SHA256 must be the binary's SHA-256"},
	} {
		installed, curled := filepath.Join(dir, "installed-"+tc.name), filepath.Join(dir, "curled-"+tc.name)
		cmd := exec.Command("sh", "-c", step)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "VRSNIFF_URL="+binary,
			"INSTALLED="+installed, "CURLED="+curled)
		if tc.sha != "" {
			cmd.Env = append(cmd.Env, "VRSNIFF_SHA256="+tc.sha)
		}
		out, err := cmd.CombinedOutput()
		_, statErr := os.Stat(installed)
		if got := err == nil && statErr == nil; got != tc.ok {
			t.Errorf("%s: installed %v (%v), want %v\n%s", tc.name, got, err, tc.ok, out)
		}
		if _, err := os.Stat(curled); (err == nil) != tc.curled {
			t.Errorf("%s: downloaded %v, want %v", tc.name, err == nil, tc.curled)
		}
		if !strings.Contains(string(out), tc.msg) {
			t.Errorf("%s: output %q lacks %q", tc.name, out, tc.msg)
		}
	}
}

// The token part of the install script, run for real: it makes a token
// once and keeps it on the next boot.
func TestInstallToken(t *testing.T) {
	var cc cloudConfig
	if err := yaml.Unmarshal([]byte(read(t, "cloud-init.yaml")), &cc); err != nil {
		t.Fatal(err)
	}
	var script string
	for _, f := range cc.WriteFiles {
		if f.Path == "/usr/local/sbin/vrsniff-install" {
			script = f.Content
		}
	}
	start := strings.Index(script, "if [ ! -s /etc/vrsniff/token ]")
	if start < 0 {
		t.Fatal("no token step in the install script")
	}
	end := strings.Index(script[start:], "fi\n")
	if end < 0 {
		t.Fatal("token step does not end")
	}
	dir := t.TempDir()
	step := strings.ReplaceAll(script[start:start+end+3], "/etc/vrsniff", dir)
	token := func() string {
		if out, err := exec.Command("sh", "-ec", step).CombinedOutput(); err != nil {
			t.Fatalf("token step: %v\n%s", err, out)
		}
		st, err := os.Stat(filepath.Join(dir, "token"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o007 != 0 {
			t.Errorf("token mode %v", st.Mode())
		}
		return read(t, filepath.Join(dir, "token"))
	}
	first := token()
	if len(first) != 64 || strings.Trim(first, "0123456789abcdef") != "" {
		t.Fatalf("token %q", first)
	}
	if again := token(); again != first {
		t.Fatal("a second boot replaced the token")
	}
}

// The shipped settings, with the interface, directories and address
// pointed at the test's own, run the daemon: it captures mirror traffic
// and serves it with the token.
func TestShippedConfigRuns(t *testing.T) {
	var conf map[string]any
	if err := yaml.Unmarshal([]byte(read(t, "vrsniff.yaml")), &conf); err != nil {
		t.Fatal(err)
	}
	env := testenv.NewNetns(t)
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("t0ken-0123456789abcdef\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"i": env.CaptureIf, "dir": filepath.Join(dir, "captures"), "http": addr, "token-file": tokenFile} {
		if _, ok := conf[k]; !ok {
			t.Fatalf("vrsniff.yaml has no %q", k)
		}
		conf[k] = v
	}
	b, err := yaml.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "vrsniff.yaml")
	if err := os.WriteFile(confFile, b, 0o640); err != nil {
		t.Fatal(err)
	}
	// The unit is Type=notify: systemd waits for READY=1 on this socket.
	notifyAddr := &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"}
	notify, err := net.ListenUnixgram("unixgram", notifyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	cmd := exec.Command(vrsniffBin, "capture", "--config", confFile)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyAddr.Name)
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("vrsniff:\n%s", stderr.String())
		}
	}()

	get := func(path string) (int, []byte) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer t0ken-0123456789abcdef")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("the API", func() bool { code, _ := get("/api/stats"); return code == http.StatusOK })

	g, err := gen.New(gen.Options{Seed: 1, Mix: gen.Profiles["port"], LinkType: layers.LinkTypeEthernet, MTU: 1400, MaxFrame: 1300})
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for range 50 {
		for _, w := range g.Next().Packets {
			frames = append(frames, w.Data)
		}
	}
	env.Send(t, frames)
	waitFor("50 packets written", func() bool {
		_, body := get("/api/stats")
		var st struct {
			Pipeline struct {
				Written int `json:"written"`
			} `json:"pipeline"`
		}
		return json.Unmarshal(body, &st) == nil && st.Pipeline.Written == 50
	})
	if code, body := get("/api/captures"); code != http.StatusOK || !bytes.Contains(body, []byte(`"packets": 50`)) {
		t.Errorf("captures: %d %s", code, body)
	}

	// systemd heard READY=1; on SIGTERM it hears STOPPING=1 and the daemon
	// ends cleanly.
	readNotify := func() string {
		t.Helper()
		notify.SetReadDeadline(time.Now().Add(30 * time.Second))
		b := make([]byte, 256)
		n, err := notify.Read(b)
		if err != nil {
			t.Fatalf("notify socket: %v", err)
		}
		return string(b[:n])
	}
	if m := readNotify(); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if m := readNotify(); m != "STOPPING=1" {
		t.Fatalf("notification on SIGTERM %q, want STOPPING=1", m)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit on SIGTERM: %v", err)
	}
}
