package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

func readToken(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	b, err := os.ReadFile(name)
	return strings.TrimSpace(string(b)), err
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
}

// streams opens n live streams at once and keeps them for a while. A
// reading client counts the packet blocks it receives; a client with
// -read=false sends its request and then never reads a byte, not even the
// answer's header.
func streams(args []string) error {
	fs := flag.NewFlagSet("streams", flag.ExitOnError)
	u := fs.String("url", "", "stream `URL`, e.g. http://127.0.0.1:8080/api/stream")
	tokenFile := fs.String("token-file", "", "bearer token `file`")
	n := fs.Int("n", 200, "clients")
	read := fs.Bool("read", true, "read the streams (false: never read)")
	dur := fs.Duration("for", 30*time.Second, "how long to keep the streams")
	fs.Parse(args)
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	if *u == "" || *n <= 0 {
		return errors.New("need -url and a positive -n")
	}
	end := time.Now().Add(*dur)
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		status  = map[string]int{}
		packets []uint64
		bytes   uint64
	)
	note := func(s string) {
		mu.Lock()
		status[s]++
		mu.Unlock()
	}
	for range *n {
		wg.Go(func() {
			if !*read {
				if err := silentStream(*u, token, end); err != nil {
					note("error")
					return
				}
				note("sent")
				return
			}
			ctx, cancel := context.WithDeadline(context.Background(), end)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", *u, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := newClient().Do(req)
			if err != nil {
				note("error")
				return
			}
			defer resp.Body.Close()
			note(fmt.Sprint(resp.StatusCode))
			if resp.StatusCode != http.StatusOK {
				return
			}
			pk, by := countBlocks(resp.Body)
			mu.Lock()
			packets = append(packets, pk)
			bytes += by
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(packets)
	var total uint64
	for _, p := range packets {
		total += p
	}
	fmt.Printf("clients=%d status=%s", *n, histogram(status))
	if len(packets) > 0 {
		fmt.Printf(" packets_min=%d packets_median=%d packets_max=%d packets_total=%d bytes_total=%d",
			packets[0], packets[len(packets)/2], packets[len(packets)-1], total, bytes)
	}
	fmt.Println()
	return nil
}

// silentStream sends a stream request and holds the connection, unread,
// until end.
func silentStream(rawURL, token string, end time.Time) error {
	pu, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", pu.Host, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	req := "GET " + pu.RequestURI() + " HTTP/1.1\r\nHost: " + pu.Host + "\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return err
	}
	time.Sleep(time.Until(end))
	return nil
}

// countBlocks reads a pcapng stream to its end and counts its packet
// blocks (enhanced and simple) and bytes.
func countBlocks(r io.Reader) (packets, bytes uint64) {
	br := bufio.NewReaderSize(r, 256<<10)
	order := binary.ByteOrder(binary.LittleEndian)
	var h [12]byte
	for {
		if _, err := io.ReadFull(br, h[:8]); err != nil {
			return
		}
		typ := order.Uint32(h[:])
		if typ == 0x0a0d0d0a { // section header: its byte-order magic follows
			if _, err := io.ReadFull(br, h[8:12]); err != nil {
				return
			}
			if binary.BigEndian.Uint32(h[8:]) == 0x1a2b3c4d {
				order = binary.BigEndian
			} else {
				order = binary.LittleEndian
			}
		}
		n := int64(order.Uint32(h[4:]))
		if n < 12 {
			return
		}
		skip := n - 8
		if typ == 0x0a0d0d0a {
			skip -= 4
		}
		if _, err := br.Discard(int(skip)); err != nil {
			return
		}
		bytes += uint64(n)
		if typ == 6 || typ == 3 {
			packets++
		}
	}
}

func histogram(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// headers opens conns connections at once, each sending a request whose
// header is size bytes long and no token, and notes how each ends.
func headers(args []string) error {
	fs := flag.NewFlagSet("headers", flag.ExitOnError)
	addr := fs.String("addr", "", "server `host:port`")
	conns := fs.Int("conns", 1000, "connections")
	size := sizeFlag(900 << 10)
	fs.Var(&size, "bytes", "header bytes per request (K, M suffixes)")
	timeout := fs.Duration("timeout", 60*time.Second, "how long a connection may take")
	fs.Parse(args)
	if *addr == "" || *conns <= 0 {
		return errors.New("need -addr and a positive -conns")
	}
	// One header of size bytes: lines of 1000 bytes.
	var hb strings.Builder
	hb.WriteString("GET /api/captures HTTP/1.1\r\nHost: " + *addr + "\r\n")
	for i := 0; hb.Len() < int(size); i++ {
		fmt.Fprintf(&hb, "X-Fill-%06d: %s\r\n", i, strings.Repeat("a", 980))
	}
	hb.WriteString("\r\n")
	req := []byte(hb.String())

	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		status  = map[string]int{}
		written int64
		slowest time.Duration
	)
	start := time.Now()
	for range *conns {
		wg.Go(func() {
			t0 := time.Now()
			res, w := oversized(*addr, req, t0.Add(*timeout))
			mu.Lock()
			status[res]++
			written += w
			slowest = max(slowest, time.Since(t0))
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Printf("conns=%d request_bytes=%d status=%s sent_mib=%.1f seconds=%.2f slowest_s=%.2f\n",
		*conns, len(req), histogram(status), float64(written)/(1<<20), time.Since(start).Seconds(), slowest.Seconds())
	return nil
}

// oversized sends req on a new connection while reading the answer, and
// returns its status code (or how the connection failed) and the bytes the
// server took.
func oversized(addr string, req []byte, deadline time.Time) (string, int64) {
	c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return "dial-error", 0
	}
	defer c.Close()
	c.SetDeadline(deadline)
	var written int64
	done := make(chan struct{})
	go func() {
		n, _ := c.Write(req)
		written = int64(n)
		close(done)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	var res string
	switch {
	case err == nil:
		res = fmt.Sprint(resp.StatusCode)
	case errors.Is(err, os.ErrDeadlineExceeded):
		res = "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		res = "closed"
	default:
		res = "reset"
	}
	c.Close() // ends the writer, if the server stopped reading
	<-done
	return res, written
}

// bpf asks for a stream with the filter of a file and, while that request
// is under way, for others streams with a small filter; it reports how
// soon each got its answer.
func bpf(args []string) error {
	fs := flag.NewFlagSet("bpf", flag.ExitOnError)
	base := fs.String("url", "", "server `URL`, e.g. http://127.0.0.1:8080")
	tokenFile := fs.String("token-file", "", "bearer token `file`")
	exprFile := fs.String("expr-file", "", "`file` holding the large filter expression")
	others := fs.Int("others", 20, "other streams attaching meanwhile")
	delay := fs.Duration("delay", 50*time.Millisecond, "time between the large request and the others")
	fs.Parse(args)
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	expr, err := os.ReadFile(*exprFile)
	if err != nil {
		return err
	}
	ask := func(filter string) (int, time.Duration, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", *base+"/api/stream?bpf="+url.QueryEscape(filter), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		t0 := time.Now()
		resp, err := newClient().Do(req)
		if err != nil {
			return 0, time.Since(t0), err.Error()
		}
		defer resp.Body.Close()
		d := time.Since(t0)
		var msg []byte
		if resp.StatusCode != http.StatusOK {
			msg, _ = io.ReadAll(io.LimitReader(resp.Body, 200))
		}
		return resp.StatusCode, d, strings.TrimSpace(string(msg))
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		bigCode  int
		bigTime  time.Duration
		bigMsg   string
		status   = map[string]int{}
		slowest  time.Duration
		urlBytes = len(url.QueryEscape(string(expr)))
	)
	wg.Go(func() { bigCode, bigTime, bigMsg = ask(strings.TrimSpace(string(expr))) })
	time.Sleep(*delay)
	for i := range *others {
		wg.Go(func() {
			code, d, _ := ask(fmt.Sprintf("udp port %d or tcp", 1000+i))
			mu.Lock()
			status[fmt.Sprint(code)]++
			slowest = max(slowest, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Printf("big_status=%d big_ms=%d big_url_bytes=%d others=%d others_status=%s others_slowest_ms=%d big_answer=%q\n",
		bigCode, bigTime.Milliseconds(), urlBytes, *others, histogram(status), slowest.Milliseconds(), bigMsg)
	return nil
}
