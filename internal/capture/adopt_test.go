package capture

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/upload"
)

// TestWorkersAdopt: files that a run with two workers left behind are
// listed by a run with one, and uploaded by it: a restart with another
// number of workers strands nothing.
func TestWorkersAdopt(t *testing.T) {
	dir := t.TempDir()
	c := config(dir)
	c.Listen, c.Workers, c.HTTP = testenv.FreeAddr(t, "udp"), 2, ""
	r := start(t, c)
	cs := capturetest.Cases(t, "acl", 51, 200, 9000)
	testenv.SendUDP(t, c.Listen, capturetest.UDPPayloads(t, cs))
	r.waitWritten(uint64(len(cs)))
	if err := r.finish(); err != nil {
		t.Fatal(err)
	}
	left, _ := capturetest.CaptureFiles(t, dir)
	if len(left) == 0 || !strings.Contains(strings.Join(left, " "), "-w0") {
		t.Fatalf("the two workers left %v", left)
	}

	in := filepath.Join(t.TempDir(), "in.pcap")
	capturetest.WriteCases(t, in, capturetest.Cases(t, "acl", 52, 10, 1400))
	b := &memBucket{objects: map[string][]byte{}}
	c = config(dir)
	c.Read, c.HTTP = in, ""
	c.Upload = Upload{Bucket: b, Config: upload.Config{Sniffer: "s", Retry: time.Millisecond}}
	svc, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if closed, parts := capturetest.CaptureFiles(t, dir); len(closed)+len(parts) != 0 {
		t.Errorf("left in the spool: %v %v", closed, parts)
	}
	manifests := 0
	for k := range b.objects {
		if strings.HasSuffix(k, objstore.SuffixManifest) && !strings.Contains(k, "/_sniffers/") {
			manifests++
		}
	}
	if manifests != len(left)+1 {
		t.Errorf("%d files stored, want the %d left and the new one", manifests, len(left))
	}
}
