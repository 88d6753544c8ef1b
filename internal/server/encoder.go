package server

import "github.com/vrsniff/vrsniff/internal/pcapfile"

// streamOptions make the live stream: pcapng of decoded frames with their
// metadata comments, as the capture files have them.
var streamOptions = pcapfile.Options{Format: pcapfile.FormatPcapNG, Application: "vrsniff"}

// newPcapNG makes the encoder of the live stream.
func newPcapNG() (encoder, error) { return pcapfile.NewEncoder(streamOptions) }
