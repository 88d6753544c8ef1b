package extcap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/secret"
)

// Timeouts of the remote stream request. Only the connection and the
// response headers are bounded: a stream may stay quiet for a long time.
const (
	dialTimeout   = 10 * time.Second
	headerTimeout = 15 * time.Second
)

// streamPath is where vrsniff capture serves its live stream.
const streamPath = "/api/stream"

// pcapngMagic starts every pcapng stream (the section header block type).
var pcapngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

// StreamURL builds the stream request URL from the address the user gave
// (with or without the /api/stream path) and the filter.
func StreamURL(base string, f filter.Options) (*url.URL, error) {
	if base == "" {
		return nil, errors.New("no server URL given (option url)")
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", secret.RedactURL(base), errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server URL %q: want http or https", secret.RedactURL(base))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server URL %q: no host", secret.RedactURL(base))
	}
	if !strings.HasSuffix(u.Path, streamPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + streamPath
	}
	q := u.Query()
	for k, v := range f.Query() {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u, nil
}

func (pr *Program) client(o Options) (*http.Client, error) {
	if pr.Client != nil {
		return pr.Client, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = dialTimeout
	tr.ResponseHeaderTimeout = headerTimeout
	// The stream is already compressed as well as it gets and must not
	// be buffered by a decompressor.
	tr.DisableCompression = true
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", o.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// captureRemote copies the server's live pcapng stream into the FIFO as it
// comes: the stream already holds decoded frames with their metadata as
// comments, so nothing is re-encoded.
func (pr *Program) captureRemote(ctx context.Context, o Options, flt filter.Options) error {
	u, err := StreamURL(o.URL, flt)
	if err != nil {
		return err
	}
	c, err := pr.client(o)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("stream request: %w", err)
	}
	token := o.Token
	if o.TokenFile != "" {
		// The server decides what token is long enough.
		if token, err = secret.ReadToken(o.TokenFile, 1); err != nil {
			return fmt.Errorf("token file: %w", err)
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept", "application/x-pcapng")
	// The URL in messages leaves out the query, which may be long.
	where := u.Scheme + "://" + u.Host + u.Path

	fifo, err := openFIFO(ctx, o.FIFO)
	if fifo == nil {
		return err
	}
	defer fifo.Close()
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("connect to %s: %w", where, err)
	}
	defer resp.Body.Close()
	if err := responseError(resp, where); err != nil {
		return err
	}
	head := make([]byte, len(pcapngMagic))
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read stream from %s: %w", where, err)
	}
	if !bytes.Equal(head, pcapngMagic) {
		return fmt.Errorf("%s did not send a pcapng stream: is it a vrsniff capture server?", where)
	}

	// Wireshark stops a capture with SIGTERM and by closing the FIFO; the
	// first cancels the request, the second fails the next write.
	if _, err := fifo.Write(head); err != nil {
		return stopErr(ctx, fmt.Errorf("write fifo: %w", err))
	}
	_, err = io.CopyBuffer(fifoWriter{fifo}, resp.Body, make([]byte, 64<<10))
	if err == nil {
		return nil // the server ended the stream (it shut down), after a whole block
	}
	return stopErr(ctx, fmt.Errorf("stream from %s: %w", where, err))
}

// fifoWriter marks write errors so that they can be told apart from read
// errors after io.Copy; it also hides os.File's ReadFrom, which would try
// splice and make that distinction harder.
type fifoWriter struct{ f *os.File }

func (w fifoWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	if err != nil {
		err = fmt.Errorf("write fifo: %w", err)
	}
	return n, err
}

// openFIFO opens Wireshark's FIFO before anything can fail: Wireshark 4.0
// may already wait in its own open of the FIFO, and only a writer that opens
// and closes it lets it go on to report the error. The open blocks until
// Wireshark reads; a cancelled context gives nil, nil.
func openFIFO(ctx context.Context, path string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		ch <- result{f, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("open fifo: %w", r.err)
		}
		return r.f, nil
	case <-ctx.Done():
		return nil, nil
	}
}

func stopErr(ctx context.Context, err error) error {
	if stopped(ctx, err) {
		return nil
	}
	return err
}

// responseError turns a failed response into a message fit for
// Wireshark's error dialog.
func responseError(resp *http.Response, where string) error {
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/x-pcapng") &&
			!strings.HasPrefix(ct, "application/octet-stream") {
			return fmt.Errorf("%s answered with %s, not a pcapng stream: is it a vrsniff capture server?", where, ct)
		}
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(string(body))
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if !printableText(msg) {
		msg = ""
	}
	var hint string
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = "check the token"
	case http.StatusNotFound:
		hint = "is the URL that of a vrsniff capture server?"
	case http.StatusBadRequest:
		hint = "check the filter options"
	}
	s := fmt.Sprintf("%s: %s", where, resp.Status)
	if msg != "" {
		s += ": " + msg
	}
	if hint != "" {
		s += " (" + hint + ")"
	}
	return errors.New(s)
}

func printableText(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
