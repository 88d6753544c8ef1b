package query

import (
	"io"
	"net/netip"

	"github.com/vrsniff/vrsniff/internal/flowindex"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// FleetOptions are the options of a query over a fleet's bucket: the
// flow indexes the sniffers upload (OpenFlowIndex) and their Community
// IDs; the limits at their defaults.
func FleetOptions() Options {
	return Options{OpenIndex: OpenFlowIndex, CommunityID: CommunityID}
}

// OpenFlowIndex opens a flow index that internal/flowindex wrote, the one
// a sniffer uploads beside each file: Options.OpenIndex for a fleet's
// bucket. It reads the footer, then, at each Lookup, the row groups that
// the window, the addresses and the Community ID do not rule out.
func OpenFlowIndex(r io.ReaderAt, size int64) (Index, error) {
	ix, err := flowindex.Open(r, size)
	if err != nil {
		return nil, err
	}
	return flowIndex{ix}, nil
}

// CommunityID is Options.CommunityID for a fleet's files: the ID their
// flow indexes give the packet's frame.
func CommunityID(p *mirror.Packet) string { return flowindex.CommunityID(p.Frame) }

type flowIndex struct{ ix *flowindex.Index }

// Lookup asks the index for what it can prune on (the window, the
// addresses, the Community ID) and keeps, of what it returns, the rows q
// needs: the index's own port test takes single ports, where q may need
// port ranges. NoAddr asks nothing more of this index: it gives ARP and
// RARP frames their sender and target addresses, so its rows without
// addresses hold frames that no host or net primitive matches.
func (f flowIndex) Lookup(q IndexQuery) ([]flowindex.Row, error) {
	q.NoAddr = false
	fq := flowindex.Query{Since: q.Since, Until: q.Until, CommunityID: q.CommunityID, Addrs: q.Prefixes}
	rows, err := f.ix.Lookup(fq)
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, r := range rows {
		if r.Overflow || needed(&r, q) {
			out = append(out, r)
		}
	}
	return out, nil
}

// needed reports whether row r may hold packets q asks for, by its
// addresses and ports (IndexQuery's rules).
func needed(r *flowindex.Row, q IndexQuery) bool {
	if len(q.Prefixes) > 0 {
		src, _ := netip.ParseAddr(r.SrcAddr)
		dst, _ := netip.ParseAddr(r.DstAddr)
		in := false
		for _, p := range q.Prefixes {
			if src.IsValid() && p.Contains(src) || dst.IsValid() && p.Contains(dst) {
				in = true
				break
			}
		}
		if !in && !(q.NoAddr && !src.IsValid() && !dst.IsValid()) {
			return false
		}
	}
	if len(q.Ports) > 0 {
		switch r.Proto {
		case 6, 17, 132: // TCP, UDP, SCTP
		default:
			return false
		}
		if r.SrcPort == 0 && r.DstPort == 0 {
			return true
		}
		for _, pr := range q.Ports {
			if pr.Contains(uint16(r.SrcPort)) || pr.Contains(uint16(r.DstPort)) {
				return true
			}
		}
		return false
	}
	return true
}
