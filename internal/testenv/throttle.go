package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Throttle is a TCP proxy that forwards what clients send at a bounded
// rate, so that a transfer is still under way when a test acts on it.
type Throttle struct {
	Addr string // "127.0.0.1:port", where clients connect

	target string
	rate   int64 // bytes a second, client to target
	sent   atomic.Int64

	mu   sync.Mutex
	next time.Time // when the bytes scheduled so far are due
}

// throttleChunk is the most bytes forwarded at once.
const throttleChunk = 32 << 10

// NewThrottle starts a proxy to target ("host:port") that forwards the
// clients' bytes at rate bytes a second in all, and the target's answers
// at once. It stops when the test ends.
func NewThrottle(t testing.TB, target string, rate int64) *Throttle {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Throttle{Addr: l.Addr().String(), target: target, rate: rate}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				p.forward(s, c)
				s.(*net.TCPConn).CloseWrite()
			}()
			go func() {
				defer wg.Done()
				io.Copy(c, s)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return p
}

// Sent is how many bytes clients have sent through to the target.
func (p *Throttle) Sent() int64 { return p.sent.Load() }

// forward copies src to dst, each chunk after its turn in the schedule.
func (p *Throttle) forward(dst io.Writer, src io.Reader) {
	buf := make([]byte, throttleChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			now := time.Now()
			if p.next.Before(now) {
				p.next = now
			}
			p.next = p.next.Add(time.Duration(int64(n) * int64(time.Second) / p.rate))
			due := p.next
			p.mu.Unlock()
			time.Sleep(time.Until(due))
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
			p.sent.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}
