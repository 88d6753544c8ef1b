package capture

import (
	"fmt"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/source"
)

// DefaultDropWarnEvery is the default of Config.DropWarnEvery.
const DefaultDropWarnEvery = 30 * time.Second

// sourceName is what the capture reads: the interface, the UDP address or
// the file.
func sourceName(c Config) string {
	switch {
	case c.Interface != "":
		return c.Interface
	case c.Listen != "":
		return c.Listen
	}
	return c.Read
}

// fileInterface describes the capture in the interface description of its
// files (if_name, if_description, if_filter); rejects describes the
// rejects files, which hold packets as captured and are not filtered.
func fileInterface(c Config, rejects bool) pcapfile.Interface {
	name := sourceName(c)
	ports := mirror.FormatPorts(c.Decoder.Traffic.Ports, c.Decoder.Traffic.AutoPorts)
	if rejects {
		return pcapfile.Interface{Name: name,
			Description: fmt.Sprintf("vrsniff mirror traffic from %s, ports %s, that failed to decode", name, ports)}
	}
	d := pcapfile.Interface{Name: name,
		Description: fmt.Sprintf("vrsniff decoded mirror traffic from %s, ports %s", name, ports)}
	if id := c.Upload.Sniffer; c.Upload.Bucket != nil && id != "" {
		// A fleet query merges the files of many sniffers: the same
		// interface name on two of them must stay two interfaces.
		d.Name = id + ":" + name
		d.Description += " on sniffer " + id
	}
	if c.Filter != nil {
		d.Filter = c.Filter.Options().String()
	}
	return d
}

// ringSource gives a worker's rings its socket's counters, counted into
// each file's statistics.
func ringSource(src source.Source) func() ring.SourceStats {
	return func() ring.SourceStats {
		st := src.Stats()
		return ring.SourceStats{Received: st.Received, Dropped: st.Dropped}
	}
}

// dropCounts are the cumulative counters drop warnings are made of, in
// packets.
type dropCounts struct {
	received, kernel uint64 // read by the source; dropped by the kernel
	kept, store      uint64 // handed to the files; lost by them
	full, overflow   uint64 // of store: for a full disk; of VN pairs without a split file
}

// dropWarner logs a warning when packets are lost, at most once per
// period: each line sums up what was lost since the previous one.
type dropWarner struct {
	last   dropCounts // at the last line, or the start
	lastAt time.Time
}

// dropTicker starts the period of drop warnings.
func (s *Service) dropTicker() *time.Ticker {
	every := s.c.DropWarnEvery
	if every <= 0 {
		every = DefaultDropWarnEvery
	}
	s.drops.lastAt = time.Now()
	return time.NewTicker(every)
}

// warnDrops logs what was lost since the last warning, if anything, with
// the cause and the flag that helps. Run calls it every DropWarnEvery and
// once at the end.
func (s *Service) warnDrops(now time.Time) {
	st := s.Stats()
	c := dropCounts{received: st.Source.Received, kernel: st.Source.Dropped}
	if s.c.Dir != "" {
		c.kept, c.store = st.Pipeline.Written, st.Files.Dropped
		c.full, c.overflow = st.Files.DroppedDiskFull, st.Files.SplitOverflow
	}
	w := &s.drops
	d := dropCounts{c.received - w.last.received, c.kernel - w.last.kernel, c.kept - w.last.kept, c.store - w.last.store,
		c.full - w.last.full, c.overflow - w.last.overflow}
	since := now.Sub(w.lastAt)
	if d.kernel == 0 && d.store == 0 {
		return
	}
	w.last, w.lastAt = c, now
	if d.kernel > 0 {
		s.log.Warn("the kernel dropped packets before vrsniff read them: "+s.kernelDropCause(),
			"dropped", d.kernel, "drop_percent", percent(d.kernel, d.received+d.kernel),
			"over", since.Round(time.Second).String(), "total_dropped", c.kernel)
	}
	if d.store > 0 {
		s.log.Warn("the capture files lost packets: "+s.storeDropCause(d, st),
			"dropped", d.store, "drop_percent", percent(d.store, d.kept),
			"over", since.Round(time.Second).String(), "total_dropped", c.store)
	}
}

// percent is n of total in percent, to a tenth.
func percent(n, total uint64) float64 {
	if n >= total {
		return 100
	}
	return float64(n*1000/total) / 10
}

func (s *Service) kernelDropCause() string {
	switch {
	case s.c.Interface != "":
		return "an AF_PACKET ring was full; raise --ring-mb or --workers (up to the CPUs), or share the traffic among processes with --fanout"
	case s.c.Listen != "":
		return "a UDP socket buffer was full; raise net.core.rmem_max (vrsniff asks for 32 MiB) or --workers (up to the CPUs), or share the traffic among receivers"
	}
	return "packets were lost reading the source"
}

// storeDropCause names the cause of the store drops in d, the growth of
// the counters since the last warning.
func (s *Service) storeDropCause(d dropCounts, st Stats) string {
	switch {
	case d.full > 0:
		return "the capture disk is full; free space, or lower --max-bytes or --max-files"
	case d.overflow > 0 && s.c.Files.DropOther:
		return "more active VN pairs than split files and --split-other=false; raise --split-max-open"
	case st.Files.Problem != "" && !st.Ended: // once ended, the problem is that the files are closed
		return st.Files.Problem + "; check the capture directory"
	}
	return "writes failed; see the earlier warnings"
}
