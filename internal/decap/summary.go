package decap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
)

// Report says where RunAndReport writes a run's summary.
type Report struct {
	W    io.Writer // nil: no summary
	JSON bool      // the pipeline.Summary as indented JSON instead of PrintSummary's text
}

// RunAndReport runs RunFiles and writes the summary of a run that read
// something (a run that failed before has none to give). incomplete is
// true when the run ended but some packets were malformed or mirror
// traffic went to a UDP port not decoded (the summary names it). An
// interface limit error points at --max-interfaces.
func RunAndReport(ctx context.Context, f Files, o Options, r Report) (incomplete bool, err error) {
	stats, err := RunFiles(ctx, f, o)
	if se := (*SameFileError)(nil); errors.As(err, &se) {
		return false, err
	}
	sum := stats.Summary()
	if r.W != nil && (err == nil || sum.Read > 0) {
		if r.JSON {
			enc := json.NewEncoder(r.W)
			enc.SetIndent("", "  ")
			enc.Encode(sum)
		} else {
			PrintSummary(r.W, &sum)
		}
	}
	if errors.Is(err, pcapfile.ErrInterfaceLimit) {
		err = fmt.Errorf("%w; see --max-interfaces", err)
	}
	if err != nil {
		return false, err
	}
	return malformed(&sum) > 0 || len(sum.CandidatePorts) > 0, nil
}

// malformed counts packets that failed to decode, leaving out non-mirror
// traffic dropped on request.
func malformed(s *pipeline.Summary) uint64 {
	return s.TotalMalformed() - s.Malformed[mirror.ErrNotMirror.String()]
}

// PrintSummary writes the summary of a run for people: what was read,
// decoded, filtered and written, why packets did not decode, what would
// decode more of the input, and the ten busiest VN pairs.
func PrintSummary(w io.Writer, s *pipeline.Summary) {
	fmt.Fprintf(w, "%d packets read (%d bytes)", s.Read, s.ReadBytes)
	if s.Merged > 0 {
		fmt.Fprintf(w, ", %d outer fragments merged", s.Merged)
	}
	if s.Duplicates > 0 {
		fmt.Fprintf(w, ", %d duplicate fragments", s.Duplicates)
	}
	fmt.Fprintln(w)
	var dec []string
	var total uint64
	var onPorts uint64
	for _, c := range s.CandidatePorts {
		onPorts += c.Count
	}
	for _, m := range mirror.Modes() {
		if n := s.Decoded[m.String()]; n > 0 {
			d := fmt.Sprintf("%d %s", n, m)
			if m == mirror.ModeOther && onPorts > 0 {
				d += fmt.Sprintf(", %d of them mirror traffic on a port not decoded", onPorts)
			}
			if m == mirror.ModeJuniper && len(s.Overlays) > 0 {
				var in []string
				for _, o := range slices.Sorted(maps.Keys(s.Overlays)) {
					in = append(in, fmt.Sprintf("%d in %s", s.Overlays[o], o))
				}
				d += " (" + strings.Join(in, ", ") + ")"
			}
			dec = append(dec, d)
			total += n
		}
	}
	fmt.Fprintf(w, "%d decoded", total)
	if len(dec) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(dec, ", "))
	}
	fmt.Fprintf(w, ", %d filtered out, %d written", s.Filtered, s.Written)
	if s.Truncated > 0 {
		fmt.Fprintf(w, ", %d truncated by the snap length", s.Truncated)
	}
	if s.SinkErrs > 0 {
		fmt.Fprintf(w, ", %d not writable in this format", s.SinkErrs)
	}
	fmt.Fprintln(w)
	if s.TimeClamped > 0 {
		fmt.Fprintf(w, "%d timestamps out of range (before 1970 or after 2262), clamped\n", s.TimeClamped)
	}
	if n := s.TotalMalformed(); n > 0 {
		var rs []string
		for _, r := range mirror.Reasons() {
			if c := s.Malformed[r.String()]; c > 0 {
				rs = append(rs, fmt.Sprintf("%d %s", c, r))
			}
		}
		fmt.Fprintf(w, "%d not decoded (%s)\n", n, strings.Join(rs, ", "))
	}
	printHints(w, s)
	if len(s.Pairs) > 0 {
		fmt.Fprintln(w, "top VN pairs decoded, before filters (source -> destination):")
		for i, p := range s.Pairs {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more\n", len(s.Pairs)-10)
				break
			}
			fmt.Fprintf(w, "  %10d  %s -> %s\n", p.Packets, orDash(p.SrcVN), orDash(p.DstVN))
		}
	}
}

// printHints tells the user what would decode more of the input.
func printHints(w io.Writer, s *pipeline.Summary) {
	for _, c := range s.CandidatePorts {
		fmt.Fprintf(w, "UDP port %d carries mirror traffic (%d datagrams): decode it with --port %d (or --port auto)\n", c.Port, c.Count, c.Port)
	}
	if s.ShortSnap > 0 {
		fmt.Fprintf(w, "%d mirror datagrams were cut by the snap length inside their metadata: capture with a larger snap length (tcpdump -s 0)\n", s.ShortSnap)
	}
	var mirrored uint64
	for m, n := range s.Decoded {
		if m != mirror.ModeOther.String() {
			mirrored += n
		}
	}
	if s.Read > 0 && mirrored == 0 && s.TotalMalformed()-s.Malformed[mirror.ErrNotMirror.String()] == 0 && len(s.CandidatePorts) == 0 {
		fmt.Fprintln(w, "no mirror traffic found: check the mirror's UDP port (--port, --vxlan-port) or --mirror-vlan")
	}
}

// orDash shows a VN name as comments do, and "-" for none.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return string(mirror.AppendName(nil, []byte(s)))
}
