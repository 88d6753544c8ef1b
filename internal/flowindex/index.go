package flowindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// MaxFooter bounds the Parquet footer Open reads: an index of a few
// hundred row groups has a footer of tens of kilobytes, so a larger one is
// not an index of ours and is refused before it is allocated.
const MaxFooter = 4 << 20

// maxGroupRows bounds the rows of one row group Lookup decodes at a time,
// whatever the footer claims.
const maxGroupRows = 1 << 16

// schema is Row's Parquet schema.
var schema = parquet.SchemaOf(Row{})

// Index is an opened flow index. It holds the footer only; Lookup reads
// the bloom filters and the pages of the row groups it cannot skip. An
// Index is safe for concurrent Lookups when its ReaderAt is.
type Index struct {
	f       *parquet.File
	checked *checked
	cols    columns
	kinds   []parquet.Kind // by leaf column index
}

// switchable reads from r until told to read through a checked reader:
// parquet-go keeps the ReaderAt it opened a file with, and Open must read
// the footer before it knows the checksums.
type switchable struct {
	r io.ReaderAt
	c atomic.Pointer[checked]
	// tail is the footer and the last 8 bytes, read already, at tailOff.
	tail    []byte
	tailOff int64
}

func (s *switchable) to(c *checked) { s.c.Store(c) }

func (s *switchable) ReadAt(p []byte, off int64) (int, error) {
	if c := s.c.Load(); c != nil {
		return c.ReadAt(p, off)
	}
	if off >= s.tailOff && off+int64(len(p)) <= s.tailOff+int64(len(s.tail)) {
		return copy(p, s.tail[off-s.tailOff:]), nil
	}
	return s.r.ReadAt(p, off)
}

// columns are the leaf column indexes Lookup prunes on.
type columns struct {
	first, last, proto, src, dst, sport, dport, cid, srcVN, dstVN, dir, overflow int
	offsets, lengths                                                             int
}

// Open opens the flow index of size bytes in r, reading its footer only
// (two reads: its last 8 bytes and the footer). It fails on a file that is
// not Parquet, whose footer is over MaxFooter, or whose schema or format
// version (FormatKey) is not this package's.
func Open(r io.ReaderAt, size int64) (*Index, error) {
	if size < 12 {
		return nil, fmt.Errorf("flow index: %d bytes: too short for Parquet", size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return nil, fmt.Errorf("flow index: reading the footer length: %w", err)
	}
	if string(tail[4:]) != "PAR1" {
		return nil, errors.New("flow index: not a Parquet file (no PAR1 at its end)")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > MaxFooter || n > size-12 {
		return nil, fmt.Errorf("flow index: footer of %d bytes in a file of %d", n, size)
	}
	// parquet-go panics on some corrupt schemas: the footer is decoded
	// and its schema compared with Row's before parquet-go sees it.
	footer := make([]byte, n+8)
	if _, err := r.ReadAt(footer, size-8-n); err != nil {
		return nil, fmt.Errorf("flow index: reading the footer: %w", err)
	}
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), footer[:n], &md); err != nil {
		return nil, fmt.Errorf("flow index: decoding the footer: %w", err)
	}
	if err := checkFooter(&md); err != nil {
		return nil, fmt.Errorf("flow index: %w", err)
	}
	c := &switchable{r: r, tail: footer, tailOff: size - 8 - n}
	f, err := parquet.OpenFile(c, size,
		parquet.SkipPageIndex(true),
		parquet.SkipBloomFilters(true)) // read lazily, per row group, by Lookup
	if err != nil {
		return nil, fmt.Errorf("flow index: %w", err)
	}
	if v, _ := f.Lookup(FormatKey); v != Format {
		return nil, fmt.Errorf("flow index: format %q, want %q", v, Format)
	}
	ix := &Index{f: f}
	if err := ix.checkSchema(); err != nil {
		return nil, err
	}
	v, _ := f.Lookup(ChecksumKey)
	ss, err := parseChecksums(v, f.Metadata(), size)
	if err != nil {
		return nil, fmt.Errorf("flow index: %w", err)
	}
	ix.checked = &checked{r: r, ss: ss}
	c.to(ix.checked)
	return ix, nil
}

// checkSchema finds the columns Lookup prunes on and checks that the file
// has Row's leaf columns with Row's types, so that reading rows cannot
// meet a column of another shape.
func (ix *Index) checkSchema() error {
	want := map[string]parquet.Kind{}
	for _, p := range schema.Columns() {
		leaf, _ := schema.Lookup(p...)
		want[pathKey(p)] = leaf.Node.Type().Kind()
	}
	got := ix.f.Schema().Columns()
	if len(got) != len(want) {
		return fmt.Errorf("flow index: %d columns, want %d", len(got), len(want))
	}
	idx := map[string]int{}
	for _, p := range got {
		leaf, ok := ix.f.Schema().Lookup(p...)
		k := pathKey(p)
		if kind, found := want[k]; !ok || !found || leaf.Node.Type().Kind() != kind {
			return fmt.Errorf("flow index: unexpected column %s", k)
		}
		idx[k] = leaf.ColumnIndex
		for len(ix.kinds) <= leaf.ColumnIndex {
			ix.kinds = append(ix.kinds, 0)
		}
		ix.kinds[leaf.ColumnIndex] = leaf.Node.Type().Kind()
	}
	c := &ix.cols
	c.first, c.last, c.proto = idx["first"], idx["last"], idx["proto"]
	c.src, c.dst, c.sport, c.dport = idx["src_addr"], idx["dst_addr"], idx["src_port"], idx["dst_port"]
	c.cid, c.srcVN, c.dstVN, c.dir, c.overflow = idx["community_id"], idx["src_vn"], idx["dst_vn"], idx["direction"], idx["overflow"]
	c.offsets, c.lengths = idx["offsets.list.element"], idx["lengths.list.element"]
	// parquet-go trusts the footer's column types and statistics: a
	// statistic of the wrong size for its type makes it panic.
	for i, g := range ix.f.Metadata().RowGroups {
		if len(g.Columns) != len(ix.kinds) || len(ix.f.RowGroups()[i].ColumnChunks()) != len(ix.kinds) {
			return fmt.Errorf("flow index: row group %d has %d columns, want %d", i, len(g.Columns), len(ix.kinds))
		}
		for j, cc := range g.Columns {
			md := &cc.MetaData
			if parquet.Kind(md.Type) != ix.kinds[j] {
				return fmt.Errorf("flow index: row group %d column %d of type %v, want %v", i, j, md.Type, ix.kinds[j])
			}
			if n := fixedSize(ix.kinds[j]); n > 0 {
				st := &md.Statistics
				if st.MinValue != nil && len(st.MinValue) != n || st.MaxValue != nil && len(st.MaxValue) != n {
					return fmt.Errorf("flow index: row group %d column %d: statistics of %d and %d bytes, want %d",
						i, j, len(st.MinValue), len(st.MaxValue), n)
				}
			}
		}
	}
	return nil
}

// wantSchema is the schema elements of an index's footer, Row's.
var wantSchema = func() []format.SchemaElement {
	var buf bytes.Buffer
	if _, err := NewBuilder(Options{}).WriteTo(&buf); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	n := binary.LittleEndian.Uint32(b[len(b)-8:])
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), b[len(b)-8-int(n):len(b)-8], &md); err != nil {
		panic(err)
	}
	return md.Schema
}()

// checkFooter holds a decoded footer to what parquet-go can open without
// panicking: Row's schema, and row groups of its columns.
func checkFooter(md *format.FileMetaData) error {
	if !reflect.DeepEqual([]format.SchemaElement(md.Schema), wantSchema) {
		return errors.New("not the schema of a flow index")
	}
	leaves := len(schema.Columns())
	for i, g := range md.RowGroups {
		if len(g.Columns) != leaves || g.NumRows < 0 {
			return fmt.Errorf("row group %d: %d columns, %d rows", i, len(g.Columns), g.NumRows)
		}
		for j, c := range g.Columns {
			if len(c.MetaData.PathInSchema) == 0 || c.MetaData.NumValues < 0 || c.MetaData.TotalCompressedSize < 0 {
				return fmt.Errorf("row group %d column %d: bad metadata", i, j)
			}
		}
	}
	return nil
}

// fixedSize is the size of a value of kind k, 0 when it varies.
func fixedSize(k parquet.Kind) int {
	switch k {
	case parquet.Boolean:
		return 1
	case parquet.Int32, parquet.Float:
		return 4
	case parquet.Int64, parquet.Double:
		return 8
	case parquet.Int96:
		return 12
	}
	return 0
}

func pathKey(p []string) string {
	var b bytes.Buffer
	for i, s := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// Flows is the number of rows in the index, the overflow row included.
func (ix *Index) Flows() int64 { return ix.f.NumRows() }

// RowGroups is the number of row groups in the index.
func (ix *Index) RowGroups() int { return len(ix.f.RowGroups()) }

// Query selects flows. Every field that is set must match; a zero field
// matches every flow.
type Query struct {
	// Since and Until select flows that had a packet in [Since, Until].
	Since, Until time.Time
	// Addrs selects flows whose source or destination address is in one
	// of the prefixes; single addresses (a /32 or /128) use the bloom
	// filters.
	Addrs []netip.Prefix
	// Ports selects flows whose source or destination port is one of
	// them (TCP, UDP, SCTP).
	Ports []uint16
	// Proto is an IP protocol number; 0 is any.
	Proto int
	// CommunityID is a Community ID v1 (seed 0), as "1:..." text.
	CommunityID string
	// Direction is "ingress" or "egress".
	Direction string
	// VNs selects flows whose source or destination VN is one of them,
	// as fully qualified names.
	VNs []string
}

// Lookup returns the rows that match q, and the overflow row whatever q
// is: its ranges may hold matching packets that only reading them tells.
// It skips the row groups whose statistics or bloom filters rule q out and
// reads the rows of the others.
func (ix *Index) Lookup(q Query) ([]Row, error) {
	hosts := make([]parquet.Value, 0, len(q.Addrs))
	for _, p := range q.Addrs {
		if p.IsValid() && p.IsSingleIP() {
			hosts = append(hosts, parquet.ValueOf(p.Addr().String()))
		}
	}
	if len(hosts) != len(q.Addrs) {
		hosts = nil // a prefix: the bloom filters cannot rule it out
	}
	var out []Row
	defer ix.checked.forget()
	for i, g := range ix.f.RowGroups() {
		may, err := ix.mayMatch(g, &q, hosts)
		if err != nil {
			return nil, fmt.Errorf("flow index: row group %d: %w", i, err)
		}
		if !may {
			continue
		}
		if n := g.NumRows(); n < 0 || n > maxGroupRows {
			return nil, fmt.Errorf("flow index: row group %d claims %d rows", i, n)
		}
		if out, err = ix.readGroup(g, &q, out); err != nil {
			return nil, fmt.Errorf("flow index: row group %d: %w", i, err)
		}
		ix.checked.forget()
	}
	return out, nil
}

// readGroup reads a row group's rows as Parquet values, builds the
// fields q looks at from them, and reconstructs as Rows only those that
// match: reconstructing every row, record lists included, costs several
// times more than reading it.
func (ix *Index) readGroup(g parquet.RowGroup, q *Query, out []Row) ([]Row, error) {
	rows := g.Rows()
	defer rows.Close()
	buf := make([]parquet.Row, 64)
	var head Row
	for {
		n, err := rows.ReadRows(buf)
		for _, pr := range buf[:n] {
			if err := ix.head(pr, &head); err != nil {
				return out, err
			}
			if head.Overflow || q.Match(&head) {
				var r Row
				if err := schema.Reconstruct(&r, pr); err != nil {
					return out, err
				}
				if len(r.Offsets) != len(r.Lengths) {
					return out, fmt.Errorf("a row of %d offsets and %d lengths", len(r.Offsets), len(r.Lengths))
				}
				out = append(out, r)
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// head fills in the fields of r that Query.Match looks at from the
// values of a row. It checks that each value has its column's kind:
// parquet-go hands on what corrupt pages decode to, and would panic
// reconstructing a Row from a value of another kind.
func (ix *Index) head(pr parquet.Row, r *Row) error {
	*r = Row{}
	c := &ix.cols
	prev, seen := -1, 0
	for _, v := range pr {
		col := v.Column()
		if col < 0 || col >= len(ix.kinds) || col < prev {
			return fmt.Errorf("a value of column %d after column %d", col, prev)
		}
		if col != prev {
			seen++
		} else if col != c.offsets && col != c.lengths {
			return fmt.Errorf("two values in column %d", col)
		}
		prev = col
		if v.IsNull() {
			continue
		}
		if v.Kind() != ix.kinds[col] {
			return fmt.Errorf("a %v value in a column of %v", v.Kind(), ix.kinds[col])
		}
		switch col {
		case c.first:
			r.First = time.Unix(0, v.Int64())
		case c.last:
			r.Last = time.Unix(0, v.Int64())
		case c.proto:
			r.Proto = v.Int32()
		case c.src:
			r.SrcAddr = string(v.ByteArray())
		case c.dst:
			r.DstAddr = string(v.ByteArray())
		case c.sport:
			r.SrcPort = v.Int32()
		case c.dport:
			r.DstPort = v.Int32()
		case c.cid:
			r.CommunityID = string(v.ByteArray())
		case c.srcVN:
			r.SrcVN = string(v.ByteArray())
		case c.dstVN:
			r.DstVN = string(v.ByteArray())
		case c.dir:
			r.Direction = string(v.ByteArray())
		case c.overflow:
			r.Overflow = v.Boolean()
		}
	}
	if seen != len(ix.kinds) {
		return fmt.Errorf("a row with values in %d of %d columns", seen, len(ix.kinds))
	}
	return nil
}

// mayMatch tells from a row group's statistics and bloom filters whether
// it may hold a row q matches or the overflow row.
func (ix *Index) mayMatch(g parquet.RowGroup, q *Query, hosts []parquet.Value) (bool, error) {
	cc := g.ColumnChunks()
	c := &ix.cols
	if _, max, ok := bounds(cc[c.overflow]); !ok || max.Boolean() {
		return true, nil
	}
	if !q.Since.IsZero() {
		if _, max, ok := bounds(cc[c.last]); ok && max.Int64() < q.Since.UnixNano() {
			return false, nil
		}
	}
	if !q.Until.IsZero() {
		if min, _, ok := bounds(cc[c.first]); ok && min.Int64() > q.Until.UnixNano() {
			return false, nil
		}
	}
	if q.Proto != 0 {
		if min, max, ok := bounds(cc[c.proto]); ok && (int64(q.Proto) < int64(min.Int32()) || int64(q.Proto) > int64(max.Int32())) {
			return false, nil
		}
	}
	if len(q.Ports) > 0 && !anyPortIn(cc[c.sport], q.Ports) && !anyPortIn(cc[c.dport], q.Ports) {
		return false, nil
	}
	if q.Direction != "" && !inBounds(cc[c.dir], q.Direction) {
		return false, nil
	}
	if len(q.VNs) > 0 && !slices.ContainsFunc(q.VNs, func(vn string) bool {
		return inBounds(cc[c.srcVN], vn) || inBounds(cc[c.dstVN], vn)
	}) {
		return false, nil
	}
	if q.CommunityID != "" {
		if !inBounds(cc[c.cid], q.CommunityID) {
			return false, nil
		}
		if ok, err := bloomMay(cc[c.cid], parquet.ValueOf(q.CommunityID)); !ok || err != nil {
			return false, err
		}
	}
	if len(hosts) > 0 {
		may := false
		for _, h := range hosts {
			s := string(h.ByteArray())
			for _, col := range [2]int{c.src, c.dst} {
				if !inBounds(cc[col], s) {
					continue
				}
				ok, err := bloomMay(cc[col], h)
				if err != nil {
					return false, err
				}
				if ok {
					may = true
					break
				}
			}
			if may {
				break
			}
		}
		if !may {
			return false, nil
		}
	}
	return true, nil
}

func bounds(c parquet.ColumnChunk) (min, max parquet.Value, ok bool) {
	if fc, isFile := c.(*parquet.FileColumnChunk); isFile {
		return fc.Bounds()
	}
	return min, max, false
}

// inBounds says whether the string s may be in the chunk by its min/max.
func inBounds(c parquet.ColumnChunk, s string) bool {
	min, max, ok := bounds(c)
	if !ok {
		return true
	}
	return s >= string(min.ByteArray()) && s <= string(max.ByteArray())
}

func anyPortIn(c parquet.ColumnChunk, ports []uint16) bool {
	min, max, ok := bounds(c)
	if !ok {
		return true
	}
	for _, p := range ports {
		if int32(p) >= min.Int32() && int32(p) <= max.Int32() {
			return true
		}
	}
	return false
}

// bloomMay says whether the chunk's bloom filter may hold v; true when it
// has none.
func bloomMay(c parquet.ColumnChunk, v parquet.Value) (bool, error) {
	bf := c.BloomFilter()
	if bf == nil {
		return true, nil
	}
	return bf.Check(v)
}

// Match says whether row r matches q on every field q sets. The overflow
// row matches no query by its fields: Lookup returns it whatever q is.
func (q *Query) Match(r *Row) bool {
	if r.Overflow {
		return false
	}
	if !q.Since.IsZero() && r.Last.Before(q.Since) || !q.Until.IsZero() && r.First.After(q.Until) {
		return false
	}
	if q.Proto != 0 && int(r.Proto) != q.Proto {
		return false
	}
	if q.CommunityID != "" && r.CommunityID != q.CommunityID {
		return false
	}
	if q.Direction != "" && r.Direction != q.Direction {
		return false
	}
	if len(q.VNs) > 0 && !slices.Contains(q.VNs, r.SrcVN) && !slices.Contains(q.VNs, r.DstVN) {
		return false
	}
	if len(q.Ports) > 0 && (r.Proto != protoTCP && r.Proto != protoUDP && r.Proto != protoSCTP ||
		!slices.Contains(q.Ports, uint16(r.SrcPort)) && !slices.Contains(q.Ports, uint16(r.DstPort))) {
		return false
	}
	if len(q.Addrs) > 0 {
		src, _ := netip.ParseAddr(r.SrcAddr)
		dst, _ := netip.ParseAddr(r.DstAddr)
		if !slices.ContainsFunc(q.Addrs, func(p netip.Prefix) bool {
			return src.IsValid() && p.Contains(src) || dst.IsValid() && p.Contains(dst)
		}) {
			return false
		}
	}
	return true
}
