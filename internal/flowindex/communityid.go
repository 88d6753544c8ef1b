package flowindex

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
)

// Community ID v1 (https://github.com/corelight/community-id-spec), seed
// 0. github.com/satta/gommunityid is not served by the module proxy this
// project builds from, and the hash is a few lines: it is checked against
// tshark's communityid post-dissector in the tests.

// icmpPeer maps an ICMP type to the type of its answer (or question), as
// the specification's ICMP tables (taken from Zeek) do; a type not here is
// one-way.
var icmpPeer = map[uint8]uint8{
	8: 0, 0: 8, // echo
	13: 14, 14: 13, // timestamp
	15: 16, 16: 15, // information
	10: 9, 9: 10, // router solicitation / advertisement
	17: 18, 18: 17, // address mask
}

var icmpv6Peer = map[uint8]uint8{
	128: 129, 129: 128, // echo
	130: 131, 131: 130, // multicast listener query / report
	133: 134, 134: 133, // router solicitation / advertisement
	135: 136, 136: 135, // neighbor solicitation / advertisement
	139: 140, 140: 139, // node information query / response
	144: 145, 145: 144, // home agent address discovery
}

// communityID is the Community ID v1 of t with seed 0 ("1:" and the base64
// of the SHA-1), or "" for a frame without IP (ARP has none either).
func communityID(t *tuple) string {
	if t.family == 0 || t.arp {
		return ""
	}
	n := 4
	if t.family == 6 {
		n = 16
	}
	src, dst := t.src[:n], t.dst[:n]
	sport, dport := t.sport, t.dport
	oneWay := false
	if t.hasL4 && (t.family == 4 && t.proto == protoICMP || t.family == 6 && t.proto == protoICMPv6) {
		peers := icmpPeer
		if t.family == 6 {
			peers = icmpv6Peer
		}
		typ, code := uint8(t.sport), uint8(t.dport)
		if p, ok := peers[typ]; ok {
			dport = uint16(p)
		} else {
			dport, oneWay = uint16(code), true
		}
		sport = uint16(typ)
	}
	// Both directions of a flow get one ID: the endpoint that sorts first
	// goes first, unless the ICMP message is one-way.
	c := bytes.Compare(src, dst)
	if !oneWay && (c > 0 || c == 0 && sport > dport) {
		src, dst, sport, dport = dst, src, dport, sport
	}
	var buf [2 + 16 + 16 + 2 + 4]byte
	b := append(buf[:0], 0, 0) // seed
	b = append(b, src...)
	b = append(b, dst...)
	b = append(b, t.proto, 0)
	if t.hasL4 {
		b = binary.BigEndian.AppendUint16(b, sport)
		b = binary.BigEndian.AppendUint16(b, dport)
	}
	sum := sha1.Sum(b)
	return "1:" + base64.StdEncoding.EncodeToString(sum[:])
}

// CommunityID returns the Community ID v1 (seed 0) of an Ethernet frame's
// flow, as "1:…" text, or "" for a frame without IP: the ID the index
// keeps for the frame's row.
func CommunityID(frame []byte) string {
	var t tuple
	parseFrame(frame, &t)
	return communityID(&t)
}
