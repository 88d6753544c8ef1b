package flowindex

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Format is the version of the index's layout, in the Parquet key/value
// metadata under FormatKey. A reader refuses another.
const (
	FormatKey = "vrsniff.flowindex.format"
	Format    = "1"
)

// bloomBitsPerValue sizes the split-block bloom filters: 10 bits a value
// give about 1 % false positives.
const bloomBitsPerValue = 10

// WriteTo writes the index of the packets added since the last Reset as a
// Parquet file of Rows: sorted by source then destination address and first
// time (the overflow row first), in row groups of Options.RowGroupRows rows
// with min/max statistics, split-block bloom filters on src_addr, dst_addr
// and community_id, zstd compression, and the format version in the
// key/value metadata, and the checksums of its sections (ChecksumKey).
// It returns the bytes written.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	rows := b.Rows()
	b.out.Reset()
	pw := parquet.NewGenericWriter[Row](&b.out,
		parquet.MaxRowsPerRowGroup(int64(b.o.RowGroupRows)),
		parquet.Compression(&parquet.Zstd),
		parquet.BloomFilters(
			parquet.SplitBlockFilter(bloomBitsPerValue, "src_addr"),
			parquet.SplitBlockFilter(bloomBitsPerValue, "dst_addr"),
			parquet.SplitBlockFilter(bloomBitsPerValue, "community_id"),
		),
		parquet.KeyValueMetadata(FormatKey, Format),
	)
	if _, err := pw.Write(rows); err != nil {
		return 0, fmt.Errorf("flow index: writing rows: %w", err)
	}
	if err := pw.Close(); err != nil {
		return 0, fmt.Errorf("flow index: %w", err)
	}
	n, err := addChecksums(w, b.out.Bytes())
	if err != nil {
		return n, fmt.Errorf("flow index: %w", err)
	}
	return n, nil
}

// Rows returns the rows WriteTo writes, in its order. They share memory
// with the Builder until its next Rows, WriteTo or Reset.
func (b *Builder) Rows() []Row {
	rows := b.rows[:0]
	b.offsets, b.lengths = b.offsets[:0], b.lengths[:0]
	if len(b.spans) > 0 {
		r := Row{First: time.Unix(0, b.ovFirst).UTC(), Last: time.Unix(0, b.ovLast).UTC(),
			Packets: b.ovPackets, Bytes: b.ovBytes, VNI: -1, Overflow: true}
		start := len(b.offsets)
		for _, s := range b.spans {
			b.offsets = append(b.offsets, s.off)
			b.lengths = append(b.lengths, s.len)
		}
		r.Offsets, r.Lengths = b.offsets[start:len(b.offsets):len(b.offsets)], b.lengths[start:len(b.lengths):len(b.lengths)]
		rows = append(rows, r)
	}
	for i := range b.flows {
		f := &b.flows[i]
		k := &f.key
		r := Row{
			First:       time.Unix(0, f.first).UTC(),
			Last:        time.Unix(0, f.last).UTC(),
			Proto:       int32(k.proto),
			SrcAddr:     addrString(k.family, &k.src),
			DstAddr:     addrString(k.family, &k.dst),
			CommunityID: communityID(&k.tuple),
			SrcVN:       string(b.name(f.srcVN)),
			DstVN:       string(b.name(f.dstVN)),
			VNI:         -1,
			Packets:     f.packets,
			Bytes:       f.bytes,
			TCPFlags:    int32(f.tcpFlags),
		}
		if k.hasL4 && (k.proto == protoTCP || k.proto == protoUDP || k.proto == protoSCTP) {
			r.SrcPort, r.DstPort = int32(k.sport), int32(k.dport)
		}
		if k.dir != 0 {
			r.Direction = k.dir.String()
		}
		if k.hostLen == 4 {
			r.Host = addrString(4, &k.host)
		} else if k.hostLen == 16 {
			r.Host = addrString(6, &k.host)
		}
		if k.hasVNI {
			r.VNI = int64(k.vni)
		}
		start := len(b.offsets)
		for j := f.head; j >= 0; j = b.recs[j].next {
			b.offsets = append(b.offsets, b.recs[j].off)
			b.lengths = append(b.lengths, b.recs[j].len)
		}
		r.Offsets, r.Lengths = b.offsets[start:len(b.offsets):len(b.offsets)], b.lengths[start:len(b.lengths):len(b.lengths)]
		rows = append(rows, r)
	}
	// The offsets slices were taken before the arrays stopped growing:
	// take them again from the final arrays.
	n := 0
	for i := range rows {
		c := len(rows[i].Offsets)
		rows[i].Offsets, rows[i].Lengths = b.offsets[n:n+c:n+c], b.lengths[n:n+c:n+c]
		n += c
	}
	slices.SortStableFunc(rows, compareRows)
	b.rows = rows
	return rows
}

func compareRows(a, b Row) int {
	if a.Overflow != b.Overflow {
		if a.Overflow {
			return -1
		}
		return 1
	}
	return cmp.Or(strings.Compare(a.SrcAddr, b.SrcAddr), strings.Compare(a.DstAddr, b.DstAddr), a.First.Compare(b.First))
}
