package server

import (
	"errors"
	"io"
)

// TEMP until pcapfile lands.
func newPcapNG(w io.Writer) (encoder, error) { return nil, errors.New("pcapng encoder not available") }
