// Package flowindex is the flow index of one capture file: one row per
// flow with its times, addresses, Community ID, mirror metadata, counts
// and the byte offsets of its packets in the file, written as Parquet
// with row-group statistics and bloom filters, so that a reader finds a
// host's or a flow's packets in a stored file without reading it whole.
package flowindex

import "time"

// Row is one flow of one capture file. A flow is the packets that share
// the inner 5-tuple (direction as seen) and the mirror metadata (VN pair,
// direction, mirroring host, VNI). Addresses are in netip text form, ""
// for a frame without IP; ports are 0 without TCP/UDP/SCTP.
type Row struct {
	First       time.Time `parquet:"first,timestamp(nanosecond)"`
	Last        time.Time `parquet:"last,timestamp(nanosecond)"`
	Proto       int32     `parquet:"proto"` // IP protocol number
	SrcAddr     string    `parquet:"src_addr"`
	DstAddr     string    `parquet:"dst_addr"`
	SrcPort     int32     `parquet:"src_port"`
	DstPort     int32     `parquet:"dst_port"`
	CommunityID string    `parquet:"community_id"` // Community ID v1, seed 0; "" when it has none
	SrcVN       string    `parquet:"src_vn"`
	DstVN       string    `parquet:"dst_vn"`
	Direction   string    `parquet:"direction"` // "ingress", "egress" or ""
	Host        string    `parquet:"host"`      // the mirroring vRouter, netip text
	VNI         int64     `parquet:"vni"`       // -1 when the encapsulation has none
	Packets     int64     `parquet:"packets"`
	Bytes       int64     `parquet:"bytes"`     // frame lengths as captured (original length)
	TCPFlags    int32     `parquet:"tcp_flags"` // OR of the TCP flags seen
	// Offsets are the byte offsets in the capture file of the flow's
	// records (whole pcapng blocks), ascending; Lengths their lengths.
	// A flow whose records did not all fit the builder's bound
	// (Options.MaxRecords) lists fewer than Packets: the rest lie in the
	// overflow row's ranges.
	Offsets []int64 `parquet:"offsets,list"`
	Lengths []int32 `parquet:"lengths,list"`
	// Overflow marks the one row of packets that found no room in the
	// index (Options.MaxFlows, MaxRecords, MaxNameBytes): its flow fields
	// are empty, its counts and times are those packets', and its Offsets
	// and Lengths are byte ranges of the file (ascending) that hold their
	// records whole, possibly among other blocks. Every query reads them
	// and filters the packets itself.
	Overflow bool `parquet:"overflow"`
}
