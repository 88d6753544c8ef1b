package main

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// --metrics-addr serves /metrics without the API's token, and the files
// describe the capture: the file read, the ports, the filter.
func TestCaptureMetricsAddr(t *testing.T) {
	in := testenv.FieldCase(t, "f01_tlv_lengths_16_and_2.pcap")
	dir := t.TempDir()
	metrics := testenv.FreeAddr(t, "tcp")
	d := startCapture(t, "metrics-token-0123456789", "--read", in, "--linger", "--dir", dir,
		"--metrics-addr", metrics, "--vn", "vn-web")
	d.waitWritten(3)

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `vrsniff_build_info{goversion="` + runtime.Version() + `",version="dev"} 1`
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) ||
		!strings.Contains(string(body), "vrsniff_packets_read_total 3\n") {
		t.Fatalf("GET /metrics on --metrics-addr without a token: %s\n%s", resp.Status, body)
	}
	if resp, _ := testenv.Request(t, d.base, "", "GET", "/metrics", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /metrics on --http without a token: %s", resp.Status)
	}

	if code := d.stop(syscall.SIGTERM); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	closed, _ := capturetest.CaptureFiles(t, dir)
	if len(closed) != 1 {
		t.Fatalf("files %v", closed)
	}
	b, err := exec.Command("capinfos", "-I", filepath.Join(dir, closed[0])).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos: %v\n%s", err, b)
	}
	out := string(b)
	for _, w := range []string{"Name = " + in, "Description = vrsniff decoded mirror traffic from " + in + ", ports ",
		"Filter string = --vn vn-web", "Number of stat entries = 1"} {
		if !strings.Contains(out, w) {
			t.Errorf("capinfos -I lacks %q:\n%s", w, out)
		}
	}
}
