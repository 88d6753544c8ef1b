package capture

import (
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/server"
)

// captureInfo describes c for the API's /api/info and the page's header.
// The version is the caller's (Config.Server.Capture.Version).
func captureInfo(c Config, started time.Time) server.CaptureInfo {
	tr := c.Decoder.Traffic
	in := server.CaptureInfo{
		Interface: c.Interface, Listen: c.Listen, Read: c.Read,
		Ports:      mirror.FormatPorts(tr.Ports, tr.AutoPorts),
		VXLANPorts: mirror.FormatPorts(tr.VXLANPorts, false),
		MirrorVLAN: int(tr.MirrorVLAN),
		Dir:        c.Dir, Started: started, Version: c.Server.Capture.Version,
	}
	if c.Filter != nil {
		in.Filter = c.Filter.Options().Query().Encode()
	}
	if c.Dir != "" {
		in.FileMaxSize, in.FileMaxDuration = c.Files.MaxSize, c.Files.MaxDuration
		in.MaxFiles, in.MaxBytes = c.Files.MaxFiles, c.Files.MaxBytes
	}
	return in
}
