package server

import (
	"io"

	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// newPcapNG starts a pcapng stream of decoded frames with their metadata
// comments, as the capture files have them.
func newPcapNG(w io.Writer) (encoder, error) {
	return pcapfile.NewWriter(w, pcapfile.Options{Format: pcapfile.FormatPcapNG, Application: "vrsniff"})
}
