package capture

import (
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/source"
)

// sourceOptions are c.Source with the traffic the kernel filter lets
// through: the decoder's.
func sourceOptions(c Config) source.Options {
	so := c.Source
	so.Traffic = c.Decoder.Traffic
	return so
}

// newPipeline wires the source to the sinks through the decoder and the
// filter. rejects is nil without a rejects ring; pipeline.New then keeps
// no copies of held fragments.
func newPipeline(c Config, src pipeline.Source, sinks []pipeline.Sink, rejects pipeline.Sink,
	stats *pipeline.Stats, sinkErr func(error) error) (*pipeline.Pipeline, error) {
	return pipeline.New(pipeline.Config{Source: src, Decoder: c.Decoder, Filter: c.Filter,
		Sinks: sinks, Rejects: rejects, Stats: stats, SinkError: sinkErr})
}
