package capture

import (
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/server"
)

// The API's description of a capture is its configuration's source,
// traffic, filter and retention, with the caller's version.
func TestCaptureInfo(t *testing.T) {
	f, err := filter.New(filter.Options{SrcVN: "default-domain:admin:vn-a", BPF: "tcp port 80"})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := Config{
		Interface: "ens3f1",
		Decoder:   mirror.Config{Traffic: mirror.Traffic{Ports: []uint16{8099, 8100}, VXLANPorts: []uint16{4789}, MirrorVLAN: 7}},
		Filter:    f,
		Dir:       "/var/lib/vrsniff",
		Files:     ring.Options{MaxSize: 1 << 20, MaxDuration: time.Minute, MaxFiles: 10, MaxBytes: 1 << 30},
		Server:    server.Options{Capture: server.CaptureInfo{Version: "v1.2.3"}},
	}
	got := captureInfo(c, started)
	want := server.CaptureInfo{Interface: "ens3f1", Ports: "8099,8100", VXLANPorts: "4789", MirrorVLAN: 7,
		Filter: "bpf=tcp+port+80&src_vn=default-domain%3Aadmin%3Avn-a", Dir: "/var/lib/vrsniff", Started: started,
		Version: "v1.2.3", FileMaxSize: 1 << 20, FileMaxDuration: time.Minute, MaxFiles: 10, MaxBytes: 1 << 30}
	if got != want {
		t.Errorf("captureInfo:\n got %+v\nwant %+v", got, want)
	}
}
