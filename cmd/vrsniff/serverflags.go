package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/vrsniff/vrsniff/internal/server"
)

// serverFlags are the limits of the HTTP API and the live stream.
type serverFlags struct {
	maxConns      int
	maxHeader     sizeFlag
	headerTimeout time.Duration
	writeTimeout  time.Duration
	streamClients int
	streamBuffer  sizeFlag
	sendBuffer    sizeFlag
}

func (f *serverFlags) register(fs *pflag.FlagSet) {
	fs.IntVar(&f.maxConns, "http-max-conns", server.DefaultMaxConns,
		"open HTTP connections at most; more wait to be accepted (live streams hold one each)")
	f.maxHeader = server.DefaultMaxHeaderBytes
	fs.Var(&f.maxHeader, "http-max-header", "`bytes` of request line and header at most (K, M suffixes); larger requests get 431")
	fs.DurationVar(&f.headerTimeout, "http-header-timeout", server.DefaultHeaderTimeout,
		"time a client has to send its request header")
	fs.DurationVar(&f.writeTimeout, "http-write-timeout", server.DefaultWriteTimeout,
		"a download or stream whose client reads nothing for this long is dropped")
	fs.IntVar(&f.streamClients, "stream-clients", server.DefaultStreamClients,
		"live stream clients at most; more get 503")
	f.sendBuffer = server.DefaultSendBuffer
	fs.Var(&f.sendBuffer, "http-send-buffer", "kernel send buffer of each HTTP connection, in `bytes` (K, M suffixes): what a client that stops reading can pin")
	f.streamBuffer = server.DefaultStreamBuffer
	fs.Var(&f.streamBuffer, "stream-buffer", "`bytes` of encoded packets kept for the live stream clients, shared (K, M, G suffixes): how far a client may fall behind before it loses packets")
}

// options checks the flags and fills them into o.
func (f *serverFlags) options(o server.Options) (server.Options, error) {
	switch {
	case f.maxConns < 1:
		return o, fmt.Errorf("--http-max-conns %d: want at least 1", f.maxConns)
	case f.maxHeader < 1<<10 || f.maxHeader > 1<<20:
		return o, fmt.Errorf("--http-max-header %d: want 1K to 1M", f.maxHeader)
	case f.headerTimeout <= 0:
		return o, fmt.Errorf("--http-header-timeout %v: want more than 0", f.headerTimeout)
	case f.writeTimeout <= 0:
		return o, fmt.Errorf("--http-write-timeout %v: want more than 0", f.writeTimeout)
	case f.sendBuffer < 4<<10 || f.sendBuffer > 64<<20:
		return o, fmt.Errorf("--http-send-buffer %d: want 4K to 64M", f.sendBuffer)
	case f.streamClients < 1:
		return o, fmt.Errorf("--stream-clients %d: want at least 1", f.streamClients)
	case f.streamBuffer < server.MinStreamBuffer || f.streamBuffer > 64<<30:
		return o, fmt.Errorf("--stream-buffer %d: want 1M to 64G", f.streamBuffer)
	}
	o.MaxConns, o.MaxHeaderBytes, o.HeaderTimeout, o.WriteTimeout = f.maxConns, int(f.maxHeader), f.headerTimeout, f.writeTimeout
	o.StreamClients, o.StreamBuffer, o.SendBuffer = f.streamClients, int(f.streamBuffer), int(f.sendBuffer)
	return o, nil
}
