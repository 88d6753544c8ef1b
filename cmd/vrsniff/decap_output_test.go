package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// dirState maps the files of dir to their bytes.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		path := filepath.Join(dir, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			l, _ := os.Readlink(path)
			m[e.Name()] = "-> " + l
			continue
		}
		if e.IsDir() {
			for k, v := range dirState(t, path) {
				m[e.Name()+"/"+k] = v
			}
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

func unchanged(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		var a, b []string
		for k := range after {
			a = append(a, k)
		}
		for k := range before {
			b = append(b, k)
		}
		slices.Sort(a)
		slices.Sort(b)
		t.Errorf("%s: files %q, before %q", what, a, b)
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s changed", what, k)
		}
	}
}

// An output that is the input, whatever the name, is refused (exit 2)
// before anything is opened for writing: the input is never emptied.
func TestDecapSameFile(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "x.pcap")
	mustRun(t, "gen", "--profile", "acl", "--count", "50", "--seed", "1", raw)
	if err := os.Link(raw, filepath.Join(dir, "hard.pcap")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("x.pcap", filepath.Join(dir, "soft.pcap")); err != nil {
		t.Fatal(err)
	}
	split := filepath.Join(dir, "by-vn")
	for _, args := range [][]string{
		{raw, raw},
		{raw, filepath.Join(dir, ".", "x.pcap")},
		{filepath.Join(dir, "soft.pcap"), filepath.Join(dir, "hard.pcap")},
		{raw, filepath.Join(dir, "soft.pcap")},
		{raw, filepath.Join(dir, "hard.pcap")},
		{"--rejects", raw, raw, filepath.Join(dir, "out.pcapng")},
		{"--rejects", filepath.Join(dir, "out.pcapng"), raw, filepath.Join(dir, "..", filepath.Base(dir), "out.pcapng")},
		{"--split-by", "vn", "--rejects", filepath.Join(dir, "hard.pcap"), raw, split},
	} {
		before := dirState(t, dir)
		_, stderr, code := run(t, nil, append([]string{"decap", "--quiet"}, args...)...)
		if code != exitUsage || !strings.Contains(stderr, "are the same file: refusing to write over it") {
			t.Errorf("decap %q: exit %d, %q; want %d and a clear message", args, code, stderr, exitUsage)
		}
		unchanged(t, fmt.Sprint(args), before, dirState(t, dir))
	}
	// Standard input read from the output file.
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := dirState(t, dir)
	if _, stderr, code := run(t, f, "decap", "--quiet", "-", filepath.Join(dir, "hard.pcap")); code != exitUsage {
		t.Errorf("stdin is OUT: exit %d, %s", code, stderr)
	}
	unchanged(t, "stdin is OUT", before, dirState(t, dir))
}

// A run that goes wrong at any stage leaves an existing OUT (and rejects
// file, and split directory) byte for byte as it was.
func TestDecapFailedRunKeepsOutput(t *testing.T) {
	src := t.TempDir()
	raw := filepath.Join(src, "raw.pcap")
	mustRun(t, "gen", "--profile", "all", "--count", "3000", "--seed", "8", "--mtu", "9000", raw)
	garbage := filepath.Join(src, "garbage")
	if err := os.WriteFile(garbage, []byte("not a capture file"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := testenv.MountTmpfs(t, "256k")
	out, rej, split := filepath.Join(dir, "out.pcapng"), filepath.Join(dir, "rejects.pcapng"), filepath.Join(dir, "split")
	for name, content := range map[string]string{out: "earlier output", rej: "earlier rejects", filepath.Join(split, "~none+~none.pcapng"): "earlier split"} {
		os.MkdirAll(filepath.Dir(name), 0o755)
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		what string
		code int
		args []string
	}{
		{"bad flag", exitUsage, []string{"--bogus", raw, out}},
		{"bad filter", exitUsage, []string{raw, out, "tcp", "and", "and"}},
		{"bad --bpf", exitUsage, []string{"--bpf", "port 99999", "--rejects", rej, raw, out}},
		{"bad VN glob", exitUsage, []string{"--vn", "[x", raw, out}},
		{"unknown format", exitUsage, []string{"--format", "nope", raw, out}},
		{"unknown split", exitUsage, []string{"--split-by", "pair", raw, split}},
		{"split to stdout", exitUsage, []string{"--split-by", "vn", raw, "-"}},
		{"missing input", exitFailure, []string{"--rejects", rej, filepath.Join(src, "nope.pcap"), out}},
		{"not a capture", exitFailure, []string{"--rejects", rej, garbage, out}},
		{"full disk", exitFailure, []string{raw, out}},
		{"full disk, rejects", exitFailure, []string{"--rejects", rej, raw, out}},
		{"full disk, split", exitFailure, []string{"--split-by", "vn", raw, split}},
		{"full disk, split by direction", exitFailure, []string{"--split-by", "vn-direction", "--rejects", rej, raw, split}},
	} {
		before := dirState(t, dir)
		_, stderr, code := run(t, nil, append([]string{"decap", "--quiet"}, c.args...)...)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.what, code, c.code, stderr)
		}
		if strings.HasPrefix(c.what, "full disk") && !strings.Contains(stderr, "no space left on device") {
			t.Errorf("%s: %s", c.what, stderr)
		}
		unchanged(t, c.what, before, dirState(t, dir))
	}
}

// SIGINT ends a run on an endless input; the existing OUT is kept as it
// was, and the exit status says the run failed.
func TestDecapInterrupted(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.pcap")
	mustRun(t, "gen", "--profile", "acl", "--count", "2000", "--seed", "9", raw)
	data, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.pcapng")
	if err := os.WriteFile(out, []byte("earlier output"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := dirState(t, dir)
	cmd := exec.Command(vrsniffBin, "decap", "--quiet", "-", out)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The records again and again: the input never ends, so only the
	// signal ends the run. The signal goes once decap has taken a few
	// megabytes, so that it is surely past its start.
	go func() {
		defer stdin.Close()
		if _, err := stdin.Write(data); err != nil {
			return
		}
		for sent := 0; ; sent += len(data) - 24 {
			if sent > 4<<20 && sent-(len(data)-24) <= 4<<20 {
				cmd.Process.Signal(syscall.SIGINT)
			}
			if _, err := stdin.Write(data[24:]); err != nil {
				return
			}
		}
	}()
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitFailure || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("after SIGINT: %v, %s", err, stderr.String())
	}
	unchanged(t, "interrupted", before, dirState(t, dir))
}

// --split-by vn puts both directions of a conversation in one file,
// vn-direction each direction in its own; two pairs whose names differ
// only in where '_' and ':' are get two files.
func TestDecapSplitBy(t *testing.T) {
	dir := t.TempDir()
	runs := 0
	files := func(args ...string) map[string]int {
		t.Helper()
		runs++
		out := filepath.Join(dir, fmt.Sprint(runs))
		mustRun(t, append(append([]string{"decap", "--quiet"}, args...), out)...)
		m := map[string]int{}
		es, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			m[e.Name()] = len(readAll(t, filepath.Join(out, e.Name())))
		}
		return m
	}
	f13, hostile := testenv.FieldCase(t, "f13_long_k8s_names.pcap"), testenv.HostileCase(t, "split-slug-collision.pcap")
	both, directed := files("--split-by", "vn", f13), files("--split-by", "vn-direction", f13)
	if len(both) != 1 || len(directed) != 2 {
		t.Errorf("f13: --split-by vn %v, vn-direction %v", both, directed)
	}
	for _, m := range []map[string]int{both, directed} {
		for name, n := range m {
			if len(name) > 255 || n != 4/len(m) || !strings.Contains(name, "k8s-payments") || !strings.Contains(name, "k8s-customer-notification") {
				t.Errorf("f13: %s (%d bytes): %d packets", name, len(name), n)
			}
		}
	}
	if m := files("--split-by", "vn", hostile); len(m) != 2 || m["default-domain.admin.vn-db+default-domain.admin.vn_web.pcapng"] != 5 ||
		m["default-domain.admin.vn-db+default-domain.admin_vn.web.pcapng"] != 5 {
		t.Errorf("split-slug-collision: %v", m)
	}
}

// capture --split-by: the same two modes, from the flag and from a YAML
// file.
func TestCaptureSplitBy(t *testing.T) {
	dir := t.TempDir()
	f13 := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	labels := func(d string) []string {
		t.Helper()
		closed, parts := capturetest.CaptureFiles(t, d)
		if len(parts) != 0 {
			t.Fatalf("%s: %v left open", d, parts)
		}
		var ls []string
		for _, n := range closed {
			if len(".."+n+".json.tmp") > 255 {
				t.Errorf("%s: %d bytes", n, len(n))
			}
			ls = append(ls, strings.SplitN(n, "_", 4)[3])
		}
		return ls
	}
	mustRun(t, "capture", "--read", f13, "--dir", filepath.Join(dir, "vn"), "--split-by", "vn", "--stats-every", "0")
	conf := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(conf, []byte("split-by: vn-direction\nstats-every: 0s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "capture", "--config", conf, "--read", f13, "--dir", filepath.Join(dir, "dir"))
	one, two := labels(filepath.Join(dir, "vn")), labels(filepath.Join(dir, "dir"))
	split := filepath.Join(dir, "decap")
	mustRun(t, "decap", "--quiet", "--split-by", "vn", f13, split)
	es, _ := os.ReadDir(split)
	if len(one) != 1 || len(two) != 2 || len(es) != 1 || !strings.Contains(one[0], "+") || !strings.Contains(two[0], "=") {
		t.Fatalf("capture --split-by vn: %q, vn-direction: %q; decap: %v", one, two, es)
	}
	if _, _, code := run(t, nil, "capture", "--read", f13, "--split-by", "pair"); code != exitUsage {
		t.Errorf("--split-by pair: exit %d", code)
	}

	// The API serves the files by their names, typed as they are or
	// escaped.
	d := startCapture(t, "", "--read", f13, "--linger", "--dir", filepath.Join(dir, "api"), "--split-by", "vn-direction")
	d.waitWritten(4)
	files := d.list()
	if len(files) != 2 {
		t.Fatalf("API lists %+v", files)
	}
	for _, f := range files {
		for _, path := range []string{f.Name, url.PathEscape(f.Name)} {
			resp, body := d.request("GET", "/api/captures/"+path, nil)
			r, err := pcapfile.NewReaderBytes(body)
			var p mirror.Packet
			n := 0
			for err == nil {
				if err = r.Next(&p); err == nil {
					n++
				}
			}
			if resp.StatusCode != http.StatusOK || n != 2 {
				t.Errorf("GET %s: %s, %d packets (%v)", path, resp.Status, n, err)
			}
		}
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d", code)
	}
}
