package pcapfile

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// statsBlock is a little-endian interface statistics block for interface
// id with the given uint64 options.
func statsBlock(id uint32, opts map[uint16]uint64) []byte {
	le := binary.LittleEndian
	var body []byte
	body = le.AppendUint32(body, id)
	body = le.AppendUint32(body, 0)
	body = le.AppendUint32(body, 0)
	for _, code := range []uint16{4, 5, 7} {
		if v, ok := opts[code]; ok {
			body = le.AppendUint16(body, code)
			body = le.AppendUint16(body, 8)
			body = le.AppendUint64(body, v)
		}
	}
	body = le.AppendUint32(body, 0)
	n := uint32(12 + len(body))
	b := le.AppendUint32(nil, blockISB)
	b = le.AppendUint32(b, n)
	b = append(b, body...)
	return le.AppendUint32(b, n)
}

func TestReaderStats(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Options{Format: FormatRaw})
	if err != nil {
		t.Fatal(err)
	}
	p := &mirror.Packet{Timestamp: time.Unix(1, 0), LinkType: 1, Data: make([]byte, 60), WireLen: 60}
	if err := w.WritePacket(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	buf.Write(statsBlock(0, map[uint16]uint64{4: 100, 5: 3}))
	buf.Write(statsBlock(7, map[uint16]uint64{5: 99})) // no such interface: passed over
	buf.Write(statsBlock(0, map[uint16]uint64{4: 1 << 40, 7: 5}))
	rd, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rd.Stats(0); ok {
		t.Error("stats before any statistics block")
	}
	var q mirror.Packet
	if err := rd.Next(&q); err != nil {
		t.Fatal(err)
	}
	if err := rd.Next(&q); err != io.EOF {
		t.Fatalf("after the blocks: %v, want EOF", err)
	}
	s, ok := rd.Stats(0)
	want := InterfaceStats{Received: 1 << 40, OSDropped: 5, HasReceived: true, HasOSDropped: true}
	if !ok || s != want {
		t.Errorf("Stats(0) = %+v, %v; want the last block's %+v", s, ok, want)
	}
}
