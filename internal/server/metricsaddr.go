package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// A metric that cannot be collected is logged and left out: the
		// others still reach the scraper.
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// ServeMetrics serves GET /metrics alone, without the API's token, on ln
// until ctx is done, then closes ln: for a Prometheus that cannot hold the
// token, on an address only it reaches (the metrics name VNs). Everything
// else is answered 404.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	srv := &http.Server{
		Handler:           s.secure(mux),
		ReadHeaderTimeout: s.opts.HeaderTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		// A scrape is small: it never needs long.
		WriteTimeout: time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	stopped := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		stopped <- srv.Shutdown(sctx)
	}()
	s.log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return <-stopped
	}
	if err != nil {
		err = fmt.Errorf("metrics server: %w", err)
	}
	return err
}
