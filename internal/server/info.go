package server

import (
	"net/http"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"
)

// CaptureInfo says what a capture captures and keeps: the page's header
// and /api/info. The service fills it; a zero field is not shown.
type CaptureInfo struct {
	Interface string `json:"interface,omitempty"` // AF_PACKET interface
	Listen    string `json:"listen,omitempty"`    // UDP address receiving mirror datagrams
	Read      string `json:"read,omitempty"`      // replayed capture file
	// Ports and VXLANPorts are the UDP ports decoded as mirror traffic
	// and as fabric VXLAN, as given on the command line ("8099", "auto").
	Ports      string `json:"ports,omitempty"`
	VXLANPorts string `json:"vxlan_ports,omitempty"`
	MirrorVLAN int    `json:"mirror_vlan,omitempty"`
	// Filter is the capture filter as query parameters (vn=, src_vn=,
	// dst_vn=, direction=, bpf=), "" for none.
	Filter  string    `json:"filter,omitempty"`
	Dir     string    `json:"dir,omitempty"` // capture directory
	Started time.Time `json:"started,omitzero"`
	Version string    `json:"version,omitempty"`
	// Retention: rotation by size (bytes) and age, files and bytes kept.
	FileMaxSize     int64         `json:"file_max_bytes,omitempty"`
	FileMaxDuration time.Duration `json:"file_max_duration_ns,omitempty"`
	MaxFiles        int           `json:"max_files,omitempty"`
	MaxBytes        int64         `json:"max_bytes,omitempty"`
}

// InfoReport is the JSON of /api/info.
type InfoReport struct {
	Capture CaptureInfo `json:"capture"`
	Uptime  float64     `json:"uptime_s"` // seconds since Capture.Started, 0 when unknown
	// DiskUsed is the bytes of the capture files; DiskFree the bytes
	// available on the directory's file system, -1 when unknown.
	DiskUsed int64 `json:"disk_used_bytes"`
	DiskFree int64 `json:"disk_free_bytes"`
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	rep := InfoReport{Capture: s.opts.Capture, DiskFree: -1}
	if rep.Capture.Version == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			rep.Capture.Version = bi.Main.Version
		}
	}
	if !rep.Capture.Started.IsZero() {
		rep.Uptime = s.now().Sub(rep.Capture.Started).Seconds()
	}
	if s.opts.Store != nil {
		rep.DiskUsed = s.opts.Store.DiskUsage()
	}
	if d := s.opts.Capture.Dir; d != "" {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil {
			rep.DiskFree = int64(uint64(st.Bavail) * uint64(st.Bsize)) //nolint:unconvert // field types differ by OS
		}
	}
	writeJSON(w, rep)
}
