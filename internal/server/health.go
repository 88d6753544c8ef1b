package server

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// unhealthy says why the capture is not doing its job, nil while it is:
// the store first (it cannot write), then the capture's own checks
// (Options.Health: a failed source, no packet for too long).
func (s *Server) unhealthy() error {
	if err := s.health(); err != nil {
		return fmt.Errorf("store cannot write: %w", err)
	}
	if s.opts.Health != nil {
		return s.opts.Health()
	}
	return nil
}

// healthGauge is vrsniff_healthy: 1 while /healthz answers ok, 0 while it
// answers 503.
func healthGauge(s *Server) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vrsniff_healthy",
		Help: "1 while /healthz answers ok, 0 while it answers 503 (store not writing, source failed, no packet for --stale-after).",
	}, func() float64 {
		if s.unhealthy() != nil {
			return 0
		}
		return 1
	})
}
