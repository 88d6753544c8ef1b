package flowindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// ChecksumKey is the key/value metadata entry that holds a CRC-32C of
// every column chunk and bloom filter of the index, as space-separated
// "offset:length:crc" (decimal offset and length, hexadecimal CRC).
//
// parquet-go decodes what page headers and bloom filter headers say
// without bounds on all of it, and panics on some corrupt ones; a page's
// own CRC leaves its header out. So the reader reads a column chunk or a
// bloom filter whole, checks it, and only then lets parquet-go decode it.
const ChecksumKey = "vrsniff.flowindex.crc32c"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// section is a byte range of the index that a checksum covers.
type section struct {
	off, len int64
	crc      uint32
}

// sections lists the column chunks and bloom filters of md, in file order.
func sections(md *format.FileMetaData) []section {
	var ss []section
	for _, g := range md.RowGroups {
		for _, c := range g.Columns {
			m := &c.MetaData
			base := m.DataPageOffset
			if m.DictionaryPageOffset != 0 {
				base = m.DictionaryPageOffset
			}
			ss = append(ss, section{off: base, len: m.TotalCompressedSize})
			if m.BloomFilterOffset != 0 {
				ss = append(ss, section{off: m.BloomFilterOffset, len: int64(m.BloomFilterLength)})
			}
		}
	}
	slices.SortFunc(ss, func(a, b section) int { return int(a.off - b.off) })
	return ss
}

// addChecksums rewrites the footer of the Parquet file in data with the
// checksums of its sections in ChecksumKey, and writes the file to w.
func addChecksums(w io.Writer, data []byte) (int64, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, err
	}
	md := *f.Metadata()
	ss := sections(&md)
	var b strings.Builder
	for i, s := range ss {
		if s.off < 0 || s.len < 0 || s.off+s.len > int64(len(data)) {
			return 0, fmt.Errorf("section %d+%d out of the file", s.off, s.len)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d:%08x", s.off, s.len, crc32.Checksum(data[s.off:s.off+s.len], castagnoli))
	}
	md.KeyValueMetadata = append(slices.Clone(md.KeyValueMetadata), format.KeyValue{Key: ChecksumKey, Value: b.String()})
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		return 0, err
	}
	start := len(data) - 8 - int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	var tail [8]byte
	binary.LittleEndian.PutUint32(tail[:], uint32(len(footer)))
	copy(tail[4:], "PAR1")
	var n int64
	for _, p := range [][]byte{data[:start], footer, tail[:]} {
		m, err := w.Write(p)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// parseChecksums reads ChecksumKey's value and checks that it covers
// exactly the sections of md, inside a file of size bytes.
func parseChecksums(v string, md *format.FileMetaData, size int64) ([]section, error) {
	want := sections(md)
	fields := strings.Fields(v)
	if len(fields) != len(want) {
		return nil, fmt.Errorf("%d checksums for %d sections", len(fields), len(want))
	}
	for i, fld := range fields {
		parts := strings.Split(fld, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("checksum %q", fld)
		}
		off, err1 := strconv.ParseInt(parts[0], 10, 64)
		n, err2 := strconv.ParseInt(parts[1], 10, 64)
		crc, err3 := strconv.ParseUint(parts[2], 16, 32)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("checksum %q: %w", fld, err)
		}
		if off != want[i].off || n != want[i].len || off < 4 || n <= 0 || off+n > size {
			return nil, fmt.Errorf("checksum of %d+%d where a section is %d+%d", off, n, want[i].off, want[i].len)
		}
		if i > 0 && off < want[i-1].off+want[i-1].len {
			return nil, fmt.Errorf("sections at %d and %d overlap", want[i-1].off, off)
		}
		want[i].crc = uint32(crc)
	}
	return want, nil
}

// checked is the ReaderAt parquet-go reads an opened index through: a read
// inside a section is served from the section, read whole and checked
// against its checksum first; a read elsewhere is refused.
type checked struct {
	r  io.ReaderAt
	ss []section
	mu sync.Mutex
	// cache holds the sections read since the last forget: those of the
	// row group being read, and bloom filters.
	cache map[int][]byte
	held  int64
}

// maxHeld bounds the bytes of sections checked kept at once: a row
// group's chunks are a few hundred kilobytes.
const maxHeld = 64 << 20

var errOutside = errors.New("flow index: a read outside the checked sections")

func (c *checked) ReadAt(p []byte, off int64) (int, error) {
	i, _ := slices.BinarySearchFunc(c.ss, off, func(s section, off int64) int {
		switch {
		case s.off+s.len <= off:
			return -1
		case s.off > off:
			return 1
		}
		return 0
	})
	if i == len(c.ss) || off < c.ss[i].off {
		return 0, errOutside
	}
	b, err := c.section(i)
	if err != nil {
		return 0, err
	}
	n := copy(p, b[off-c.ss[i].off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (c *checked) section(i int) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.cache[i]; ok {
		return b, nil
	}
	s := c.ss[i]
	if c.held+s.len > maxHeld {
		c.cache, c.held = nil, 0
	}
	b := make([]byte, s.len)
	if _, err := c.r.ReadAt(b, s.off); err != nil && !(err == io.EOF) {
		return nil, fmt.Errorf("flow index: reading %d+%d: %w", s.off, s.len, err)
	}
	if crc32.Checksum(b, castagnoli) != s.crc {
		return nil, fmt.Errorf("flow index: checksum mismatch in %d+%d", s.off, s.len)
	}
	if c.cache == nil {
		c.cache = map[int][]byte{}
	}
	c.cache[i] = b
	c.held += s.len
	return b, nil
}

// forget drops the sections held.
func (c *checked) forget() {
	c.mu.Lock()
	c.cache, c.held = nil, 0
	c.mu.Unlock()
}
