package extract

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Print writes s for people, as capinfos would, then the interfaces with
// their statistics blocks' counts, the VN pairs and the top conversations
// of the inner frames, in aligned columns.
func (s *Summary) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "n/a"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	fmt.Fprintf(tw, "Files:\t%d\n", len(s.Files))
	fmt.Fprintf(tw, "Packets:\t%d\n", s.Packets)
	fmt.Fprintf(tw, "Bytes:\t%d captured, %d on the wire\n", s.Bytes, s.WireBytes)
	fmt.Fprintf(tw, "First packet:\t%s\n", stamp(s.First))
	fmt.Fprintf(tw, "Last packet:\t%s\n", stamp(s.Last))
	fmt.Fprintf(tw, "Duration:\t%.6f s\n", s.Seconds)
	fmt.Fprintf(tw, "Packet rate:\t%.2f packets/s\n", s.PacketRate)
	fmt.Fprintf(tw, "Data rate:\t%.2f bytes/s, %.2f bits/s\n", s.ByteRate, 8*s.ByteRate)
	tw.Flush()

	fmt.Fprintf(w, "\nInterfaces:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  NAME\tLINK TYPE\tPACKETS\tRECEIVED\tIF DROPPED\tOS DROPPED\n")
	opt := func(v *uint64) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatUint(*v, 10)
	}
	for _, f := range s.Interfaces {
		name := f.Name
		if name == "" {
			name = "(unnamed)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\n", name, f.LinkType, f.Packets, opt(f.Received), opt(f.IfDropped), opt(f.OSDropped))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nVN pairs:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  SOURCE VN\t\tDESTINATION VN\tPACKETS\tBYTES\n")
	vn := func(s string) string {
		if s == "" {
			return "-"
		}
		return string(mirror.AppendName(nil, []byte(s)))
	}
	for _, p := range s.Pairs {
		fmt.Fprintf(tw, "  %s\t->\t%s\t%d\t%d\n", vn(p.SrcVN), vn(p.DstVN), p.Packets, p.Bytes)
	}
	if s.PairsOther > 0 {
		fmt.Fprintf(tw, "  (others)\t\t\t%d\t\n", s.PairsOther)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nTop conversations (inner frames):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  PROTO\tA\t\tB\tPACKETS\tBYTES\n")
	ep := func(a netip.Addr, port uint16) string {
		if port == 0 {
			return a.String()
		}
		return netip.AddrPortFrom(a, port).String()
	}
	for _, c := range s.Conversations {
		fmt.Fprintf(tw, "  %s\t%s\t<->\t%s\t%d\t%d\n", c.Proto, ep(c.A, c.APort), ep(c.B, c.BPort), c.Packets, c.Bytes)
	}
	tw.Flush()
	if s.NotIP > 0 {
		fmt.Fprintf(w, "  (%d packets without an IP header)\n", s.NotIP)
	}
}
