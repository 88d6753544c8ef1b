package ring

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// extension is the file name extension of a format.
func extension(f pcapfile.Format) (string, error) {
	switch f {
	case pcapfile.FormatPcap:
		return ".pcap", nil
	case pcapfile.FormatPcapNG, pcapfile.FormatJuniperVN, pcapfile.FormatRaw:
		return ".pcapng", nil
	}
	return "", fmt.Errorf("unknown format %v", f)
}

func newEncoder(w io.Writer, f pcapfile.Format) (encoder, error) {
	return pcapfile.NewWriter(w, pcapfile.Options{Format: f, Application: "vrsniff"})
}

// scanFile reads a capture file through, for its packet count and times
// and for where its last complete record ends.
func scanFile(path string) (fileScan, error) {
	var s fileScan
	fh, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer fh.Close()
	rd, err := pcapfile.NewReader(fh)
	if err != nil {
		return s, fmt.Errorf("read %s: %w", path, err)
	}
	s.known = true
	s.end = rd.Offset()
	var p mirror.Packet
	for {
		err := rd.Next(&p)
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			var fe *pcapfile.FormatError
			if errors.As(err, &fe) {
				s.cut = true
			}
			return s, fmt.Errorf("read %s: %w", path, err)
		}
		if s.packets == 0 {
			s.first = p.Timestamp
		}
		s.last = p.Timestamp
		s.packets++
		s.end = rd.Offset()
	}
}

// headerCut reports whether err says a file ends inside its header, as
// one does that a crash cut before its first packet.
func headerCut(err error) bool {
	var fe *pcapfile.FormatError
	return errors.As(err, &fe) && !errors.Is(err, pcapfile.ErrUnknownFormat)
}
