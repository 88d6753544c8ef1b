package server

import (
	"runtime"
	"runtime/debug"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/vnpair"
)

// maxPairSeries caps the VN pair series on /metrics: the busiest pairs are
// exported, the rest only counted in vrsniff_vn_pairs, so that a scrape stays
// small whatever the traffic.
const maxPairSeries = 200

// collector reads the pipeline's atomic counters at scrape time, so the
// capture goroutine never calls into the Prometheus client.
type collector struct {
	s *Server

	read, readBytes, merged, decoded, malformed, truncated, filtered, written, sinkErrs *prometheus.Desc
	received, kernelDrops                                                               *prometheus.Desc
	streamClients, streamSent, streamDrops, streamRejected                              *prometheus.Desc
	pairPackets, pairBytes, pairs, diskUsage                                            *prometheus.Desc
	storeDropped, diskFull, storeWriting                                                *prometheus.Desc
	lastPacket, buildInfo, filesRotated, filesRemoved                                   *prometheus.Desc
	uploadFiles, uploadBytes, uploadFailures, uploadLag, spoolFiles, spoolBytes         *prometheus.Desc

	version string // the build_info label
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("vrsniff_"+name, help, labels, nil)
	}
	return &collector{
		s:              s,
		read:           d("packets_read_total", "Packets read from the capture source."),
		readBytes:      d("read_bytes_total", "Captured bytes read from the capture source."),
		merged:         d("fragments_merged_total", "Outer IP fragments merged into a reassembled datagram they did not end."),
		decoded:        d("packets_decoded_total", "Packets decoded, by mirror encapsulation.", "mode"),
		malformed:      d("packets_malformed_total", "Packets that could not be decoded, by reason.", "reason"),
		truncated:      d("packets_truncated_total", "Decoded packets whose inner frame was cut by the snap length."),
		filtered:       d("packets_filtered_total", "Decoded packets dropped by the capture filter."),
		written:        d("packets_written_total", "Packets handed to the sinks."),
		sinkErrs:       d("sink_errors_total", "Failed sink writes."),
		received:       d("source_packets_received_total", "Packets the capture source saw."),
		kernelDrops:    d("kernel_drops_total", "Packets the kernel dropped before the capture source read them."),
		streamClients:  d("stream_clients", "Connected live stream clients."),
		streamSent:     d("stream_packets_total", "Packets sent to live stream clients, summed over clients."),
		streamDrops:    d("stream_drops_total", "Packets lost by live stream clients that did not keep up, summed over clients."),
		streamRejected: d("stream_rejected_total", "Live stream requests refused because the client limit was reached."),
		pairPackets:    d("vn_pair_packets_total", "Decoded packets by source and destination VN (busiest pairs only).", "src_vn", "dst_vn"),
		pairBytes:      d("vn_pair_bytes_total", "Bytes of the decoded inner frames, original length, by source and destination VN (busiest pairs only).", "src_vn", "dst_vn"),
		pairs:          d("vn_pairs", "Distinct VN pairs seen."),
		diskUsage:      d("store_disk_usage_bytes", "Bytes used by the capture files."),
		storeDropped:   d("store_dropped_total", "Packets the capture files lost: full disk, failed writes, VN pairs without a split file."),
		diskFull:       d("store_disk_full", "1 while the capture files' disk is full and writing is paused."),
		storeWriting:   d("store_writing", "1 while packets reach the capture files, 0 while the store cannot write."),
		lastPacket:     d("last_packet_timestamp_seconds", "Capture time of the last packet read, in seconds since 1970; 0 before the first."),
		buildInfo:      d("build_info", "Always 1; the labels say which build runs.", "version", "goversion"),
		filesRotated:   d("files_rotated_total", "Capture files closed and kept (rotation, SIGHUP, end of capture)."),
		filesRemoved:   d("files_removed_total", "Closed capture files deleted, by reason: max_files and max_bytes (retention), api (DELETE).", "reason"),
		uploadFiles:    d("upload_files_total", "Capture files stored in object storage (manifest written)."),
		uploadBytes:    d("upload_bytes_total", "Bytes of the capture files and flow indexes stored in object storage."),
		uploadFailures: d("upload_failures_total", "Failed attempts to store a capture file or the sniffer record; each is retried."),
		uploadLag:      d("upload_lag_seconds", "Age of the oldest capture file waiting for upload, since it was closed; 0 when none waits."),
		spoolFiles:     d("spool_files", "Closed capture files waiting for upload."),
		spoolBytes:     d("spool_bytes", "Bytes of the capture files and flow indexes waiting for upload."),
		version:        buildVersion(s.opts.Version),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.opts.Stats.Summary()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, c.version, runtime.Version())
	var last int64
	if !st.LastPacket.IsZero() {
		last = st.LastPacket.UnixNano()
	}
	gauge(c.lastPacket, float64(last/1e9)+float64(last%1e9)/1e9)
	counter(c.read, st.Read)
	counter(c.readBytes, st.ReadBytes)
	counter(c.merged, st.Merged)
	for _, m := range mirror.Modes() {
		counter(c.decoded, st.Decoded[m.String()], m.String())
	}
	for _, r := range mirror.Reasons() {
		counter(c.malformed, st.Malformed[r.String()], r.String())
	}
	counter(c.truncated, st.Truncated)
	counter(c.filtered, st.Filtered)
	counter(c.written, st.Written)
	counter(c.sinkErrs, st.SinkErrs)
	if c.s.opts.Source != nil {
		src := c.s.opts.Source()
		counter(c.received, src.Received)
		counter(c.kernelDrops, src.KernelDrops)
	}
	h := c.s.hub
	gauge(c.streamClients, float64(h.Clients()))
	counter(c.streamSent, h.Sent())
	counter(c.streamDrops, h.Dropped())
	counter(c.streamRejected, h.Rejected())
	pairs := st.Pairs
	gauge(c.pairs, float64(len(pairs)))
	labels, counts := pairSeries(pairs[:min(len(pairs), maxPairSeries)])
	for i, l := range labels {
		counter(c.pairPackets, counts[i].Packets, l[0], l[1])
		counter(c.pairBytes, counts[i].Bytes, l[0], l[1])
	}
	if c.s.opts.Store != nil {
		gauge(c.diskUsage, float64(c.s.opts.Store.DiskUsage()))
		ok := 1.0
		if c.s.health() != nil {
			ok = 0
		}
		gauge(c.storeWriting, ok)
	}
	if sc, ok := c.s.opts.Store.(StoreCounters); ok {
		st := sc.StoreStats()
		counter(c.storeDropped, st.Dropped)
		full := 0.0
		if st.DiskFull {
			full = 1
		}
		gauge(c.diskFull, full)
		counter(c.filesRotated, st.Rotated)
		counter(c.filesRemoved, st.RemovedMaxFiles, "max_files")
		counter(c.filesRemoved, st.RemovedMaxBytes, "max_bytes")
		counter(c.filesRemoved, st.Deleted, "api")
	}
	if uc, ok := c.s.opts.Store.(UploadCounters); ok {
		st := uc.UploadStats()
		counter(c.uploadFiles, st.Files)
		counter(c.uploadBytes, st.Bytes)
		counter(c.uploadFailures, st.Failures)
		gauge(c.uploadLag, st.Lag.Seconds())
		gauge(c.spoolFiles, float64(st.SpoolFiles))
		gauge(c.spoolBytes, float64(st.SpoolBytes))
	}
}

// pairSeries gives the label values of the VN pair series, in the order of
// pairs, with the counts of pairs whose labels are the same summed: a
// label value must be valid UTF-8 and a series unique, while VN names are
// any bytes (docs/decoding.md). A name that is not valid UTF-8 is shown as
// mirror.AppendName shows it, a Go string literal.
func pairSeries(pairs []vnpair.Pair) (labels [][2]string, counts []vnpair.Pair) {
	at := make(map[[2]string]int, len(pairs))
	for _, p := range pairs {
		l := [2]string{labelValue(p.SrcVN), labelValue(p.DstVN)}
		if i, ok := at[l]; ok {
			counts[i].Packets += p.Packets
			counts[i].Bytes += p.Bytes
			continue
		}
		at[l] = len(labels)
		labels, counts = append(labels, l), append(counts, vnpair.Pair{Packets: p.Packets, Bytes: p.Bytes})
	}
	return labels, counts
}

func labelValue(name string) string {
	if utf8.ValidString(name) {
		return name
	}
	return string(mirror.AppendName(nil, []byte(name)))
}

// buildVersion is v, or else the main module's version as the Go build
// recorded it ("(devel)" for a build from a work tree).
func buildVersion(v string) string {
	if v != "" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
