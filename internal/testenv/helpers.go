package testenv

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
)

// FreeAddr returns a loopback address, "127.0.0.1:port", whose port on
// network ("udp" or "tcp") was free a moment ago. Another process may take
// it before the test binds it.
func FreeAddr(t testing.TB, network string) string {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	default:
		t.Fatalf("FreeAddr: network %q, want udp or tcp", network)
		return ""
	}
}

// waitLimit bounds WaitFor: a condition that never holds fails the test
// instead of hanging it. It is no timing assertion: conditions hold within
// milliseconds.
const waitLimit = 30 * time.Second

// WaitFor polls cond until it holds; what names the condition in the
// failure when it has not held after 30 s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pause)
	}
}

// SendUDP sends each payload as one datagram to addr, in order.
func SendUDP(t testing.TB, addr string, payloads [][]byte) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, p := range payloads {
		if _, err := c.Write(p); err != nil {
			t.Fatalf("send datagram %d to %s: %v", i, addr, err)
		}
		if i%32 == 31 {
			// Loopback has no flow control: let the receiver keep up.
			time.Sleep(time.Millisecond)
		}
	}
}

// Serialize encodes layers into one packet, lengths and checksums computed.
func Serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// SyncBuffer is a buffer that a running command or a server's goroutines
// write while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Request sends an HTTP request to base+path with the bearer token (when
// not empty) and the headers of hdr, and returns the response with its
// whole body. A failed request fails the test.
func Request(t testing.TB, base, token, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, body
}
