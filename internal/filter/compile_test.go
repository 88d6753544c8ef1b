package filter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

func join(n int, op string, term func(i int) string) string {
	t := make([]string, n)
	for i := range t {
		t[i] = term(i)
	}
	return strings.Join(t, op)
}

// The 3000-term expression is refused by its length alone: libpcap never
// sees it, and refusing it allocates next to nothing.
func TestHostileExpression(t *testing.T) {
	b, err := os.ReadFile(testenv.HostileCase(t, "bpf-3000-terms.txt"))
	if err != nil {
		t.Fatal(err)
	}
	expr := strings.TrimSpace(string(b))
	setHook(t, func(string) { t.Error("libpcap was handed the expression") })
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = New(Options{BPF: expr})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooComplex) {
		t.Fatalf("got %v, want ErrTooComplex", err)
	}
	msg := err.Error()
	if want := fmt.Sprintf("%d bytes, the limit is %d", len(expr), MaxExprLen); !strings.Contains(msg, want) || len(msg) > 200 {
		t.Errorf("error %q: want it short and to contain %q", msg, want)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<10 {
		t.Errorf("refusing the expression allocated %d bytes", n)
	}
	if _, err := FromQuery(map[string][]string{"bpf": {expr}}); !errors.Is(err, ErrTooComplex) {
		t.Errorf("FromQuery: %v", err)
	}
}

func TestLimits(t *testing.T) {
	port := func(i int) string { return fmt.Sprintf("port %d", i+1) }
	for _, tc := range []struct {
		name, expr string
		want       string // in the error; "" means accepted
	}{
		{"longest", "tcp" + strings.Repeat(" ", MaxExprLen-3), ""},
		{"too long", "tcp" + strings.Repeat(" ", MaxExprLen-2), "4097 bytes, the limit is 4096"},
		{"most terms", join(MaxTerms, " or ", port), ""},
		{"too many terms", join(MaxTerms+1, " or ", port), "65 terms joined by and/or, the limit is 64"},
		{"too many terms, symbols", join(MaxTerms+1, "||", port), "65 terms"},
		{"too many terms, mixed case", join(MaxTerms+1, " AnD ", port), "65 terms"},
		// 64 terms, but 5980 instructions before libpcap's optimizer runs
		// (the pure-Go compiler makes 2 to 3 times fewer).
		{"program", join(MaxTerms, " or ", func(i int) string { return fmt.Sprintf("portrange %d-%d", i, i+5) }), "BPF instructions before optimization, the limit is 4096"},
	} {
		_, err := New(Options{BPF: tc.expr})
		if tc.name == "program" && !libpcapCompiler {
			tc.want = ""
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.Is(err, ErrTooComplex) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want ErrTooComplex and %q", tc.name, err, tc.want)
		}
	}
}

func TestTerms(t *testing.T) {
	for expr, want := range map[string]int{
		"":                              1,
		"tcp":                           1,
		"tcp and udp":                   2,
		"tcp&&udp||(icmp)":              3,
		"host 10.0.0.1 or 10.0.0.2":     2,
		"not (port 1 or port 2) AND ip": 3,
		"host oracle.example.com":       1,
		"tcp[tcpflags] & tcp-syn != 0":  1,
		"ip[0] | 1 = 1":                 1,
	} {
		if got := terms(expr); got != want {
			t.Errorf("terms(%q) = %d, want %d", expr, got, want)
		}
	}
}

// A compile that does not finish holds one slot: other compiles go on, the
// caller gets its error when its context ends, and a caller that finds
// every slot taken gets an error instead of waiting for ever.
func TestCompileNotBlocked(t *testing.T) {
	const slow = "udp port 7"
	entered, release := make(chan struct{}), make(chan struct{})
	setHook(t, func(expr string) {
		if strings.HasPrefix(expr, slow) {
			entered <- struct{}{}
			<-release
		}
	})
	defer close(release)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := compile(ctx, slow)
		errc <- err
	}()
	<-entered

	// While the slow compile is held, a normal one completes and works.
	f, err := New(Options{BPF: "tcp port 443"})
	if err != nil {
		t.Fatal(err)
	}
	p := &mirror.Packet{Mode: mirror.ModeJuniper, Frame: tcpFrame(443), FrameLen: 54}
	if !f.Match(p) {
		t.Error("tcp port 443 does not match a frame to port 443")
	}

	cancel()
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "compile timed out") {
		t.Errorf("abandoned compile: %v", err)
	}

	// Take every other slot with slow compiles: the next caller is refused.
	for i := 1; i < cap(slots); i++ {
		go compile(context.Background(), fmt.Sprintf("%s or udp port %d", slow, i))
		<-entered
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		_, err := compile(ctx, "tcp")
		errc <- err
	}()
	cancel()
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "no compile slot free") {
		t.Errorf("with every slot taken: %v", err)
	}
}

// setHook installs testHookCompile for one test and removes it once every
// compile has released its slot.
func setHook(t *testing.T, h func(expr string)) {
	testHookCompile = h
	t.Cleanup(func() {
		for range cap(slots) {
			slots <- struct{}{}
		}
		testHookCompile = nil
		for range cap(slots) {
			<-slots
		}
	})
}

// tcpFrame is an Ethernet/IPv4/TCP frame (no options, no payload) to port.
func tcpFrame(port uint16) []byte {
	f := make([]byte, 54)
	f[12], f[13] = 0x08, 0x00
	ip := f[14:]
	ip[0], ip[3], ip[8], ip[9] = 0x45, 40, 64, 6
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	tcp := ip[20:]
	tcp[0], tcp[1] = 0x30, 0x39
	tcp[2], tcp[3] = byte(port>>8), byte(port)
	tcp[12] = 5 << 4
	return f
}
