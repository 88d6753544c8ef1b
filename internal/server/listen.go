package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// shutdownGrace is how long a shutdown waits for requests to finish: less
// than the 5 s within which `vrsniff capture` ends on SIGTERM.
const shutdownGrace = 3 * time.Second

// CheckListen refuses to serve without a token on anything but loopback:
// the API can delete captures and stream tenant traffic.
func CheckListen(addr string, tokenSet bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if tokenSet {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("listen address %q is not loopback: set a token to serve on it", addr)
}

// ListenAndServe listens on addr (see Listen) and serves until ctx is
// done. With certFile and keyFile it serves HTTPS.
func (s *Server) ListenAndServe(ctx context.Context, addr, certFile, keyFile string) error {
	ln, err := s.Listen(addr, certFile, keyFile)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln, certFile, keyFile)
}

// Listen checks addr with CheckListen and the TLS files, and listens on
// addr, so that a daemon finds a taken port or a bad certificate when it
// starts, before it reads a packet.
func (s *Server) Listen(addr, certFile, keyFile string) (net.Listener, error) {
	if err := CheckListen(addr, s.opts.Token != ""); err != nil {
		return nil, err
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("TLS needs both a certificate and a key")
	}
	if certFile != "" {
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.allowHost(addr)
	return ln, nil
}

// Serve serves on ln until ctx is done, then ends the live streams (each
// with a complete pcapng) and shuts down. It closes ln. At most MaxConns
// connections are open at once; the others wait to be accepted.
func (s *Server) Serve(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	s.allowHost(ln.Addr().String())
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.opts.HeaderTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr()
	ln = netutil.LimitListener(sendBufferListener{ln, s.opts.SendBuffer}, s.opts.MaxConns)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.sampleHistory(ctx)
	stopped := make(chan error, 1)
	go func() {
		<-ctx.Done()
		// Streams never go idle by themselves: end them first.
		s.hub.Close()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		err := srv.Shutdown(sctx)
		if err != nil {
			err = errors.Join(err, srv.Close())
		}
		stopped <- err
	}()
	scheme := "http"
	if certFile != "" {
		scheme = "https"
	}
	s.log.Info("serving", "url", scheme+"://"+addr.String()+"/", "auth", s.opts.Token != "",
		"max_conns", s.opts.MaxConns, "max_header_bytes", s.opts.MaxHeaderBytes, "stream_clients", s.opts.StreamClients)
	var err error
	if certFile != "" {
		err = srv.ServeTLS(ln, certFile, keyFile)
	} else {
		err = srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		cancel()
		<-stopped
		return fmt.Errorf("serve on %s: %w", addr, err)
	}
	if err := <-stopped; err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// sendBufferListener caps the kernel send buffer of each accepted TCP
// connection (Options.SendBuffer).
type sendBufferListener struct {
	net.Listener
	size int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		_ = tc.SetWriteBuffer(l.size) // a failure leaves the kernel's default
	}
	return c, err
}
