package ring

import (
	"encoding/binary"
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

// recordLen is the length of the record pcapfile.Writer writes for p in
// format f before any cut: the decoded frame, or the packet as captured
// (packets without a decoded frame, and FormatRaw), after the metadata in
// FormatJuniperVN.
func recordLen(p *mirror.Packet, f pcapfile.Format) int {
	raw := p.Mode == mirror.ModeOther || p.Mode == mirror.ModeNone || p.Frame == nil
	switch {
	case raw || f == pcapfile.FormatRaw:
		return len(p.Data)
	case f == pcapfile.FormatJuniperVN:
		n := len(p.Meta.TLVs)
		if p.Mode != mirror.ModeJuniper || n == 0 {
			n = 2 // an empty TLV list
		}
		return n + len(p.Frame)
	}
	return len(p.Frame)
}

// describesInterface reports whether b, whole pcapng blocks, holds an
// interface description block.
func describesInterface(b []byte) bool {
	for len(b) >= 12 {
		typ, n := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		if typ == blockIDB {
			return true
		}
		if n < 12 || uint64(n) > uint64(len(b)) {
			return false
		}
		b = b[n:]
	}
	return false
}

// blockIDB is the pcapng interface description block type.
const blockIDB = 1

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
