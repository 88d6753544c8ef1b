package capture

import (
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/source"
)

// sourceOptions are c.Source with the traffic the kernel filter lets
// through: the decoder's ports, VXLAN ports and mirror VLAN.
func sourceOptions(c Config) source.Options {
	so := c.Source
	d := c.Decoder
	so.Ports, so.VXLANPorts, so.MirrorVLAN, so.AllUDP = d.Ports, d.VXLANPorts, d.MirrorVLAN, d.AutoPorts
	return so
}

// newPipeline wires the source to the sinks through the decoder and the
// filter. The decoder keeps copies of held fragments only where a
// datagram that cannot be completed has somewhere to go (the rejects).
func newPipeline(c Config, src pipeline.Source, sinks []pipeline.Sink, rejects pipeline.Sink,
	stats *pipeline.Stats, sinkErr func(error) error) *pipeline.Pipeline {
	dc := c.Decoder
	dc.Reassembly.DiscardRaw = !c.KeepRejects
	return &pipeline.Pipeline{Source: src, Decoder: mirror.NewDecoder(dc), Filter: c.Filter,
		Sinks: sinks, Rejects: rejects, Stats: stats, SinkError: sinkErr}
}
