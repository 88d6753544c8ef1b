package ring

import (
	"errors"
	"fmt"
	"io"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Format selects the file format (stand-in until pcapfile is available).
type Format int

const (
	FormatPcapNG Format = iota
	FormatPcap
	FormatJuniperVN
	FormatRaw
)

func extension(f Format) (string, error) {
	switch f {
	case FormatPcap:
		return ".pcap", nil
	case FormatPcapNG, FormatJuniperVN, FormatRaw:
		return ".pcapng", nil
	}
	return "", fmt.Errorf("unknown format %d", f)
}

func newEncoder(w io.Writer, f Format) (encoder, error) {
	return nil, errors.New("no encoder")
}

func scanFile(path string) (fileScan, error) {
	_ = mirror.Packet{}
	return fileScan{}, errNoReader
}
