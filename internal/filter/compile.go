package filter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/net/bpf"
)

// Limits on a tcpdump expression. libpcap's code generator and optimizer
// take time that grows faster than linearly with the number of terms (a
// 100 KB expression of 3000 terms takes minutes and gigabytes), and an
// expression may come from any client of the HTTP stream, so every one is
// bounded before libpcap sees it and again on what libpcap produces.
const (
	// MaxExprLen is the longest expression accepted, in bytes.
	MaxExprLen = 4096
	// MaxTerms is the most primitives ("host X", "port N", …) an
	// expression may join with and / or (&&, ||).
	MaxTerms = 64
	// MaxInstructions bounds the compiled program, before and after
	// libpcap's optimizer: the Linux kernel's own limit (BPF_MAXINSNS). The
	// optimizer only runs on a program within it, which bounds its time.
	MaxInstructions = 4096
	// CompileTimeout is how long New waits for a compile, including for a
	// free compile slot.
	CompileTimeout = 3 * time.Second
	// compileSlots is how many compiles may run at once. libpcap 1.8 and
	// later compile concurrently; a slot, not one lock, keeps one slow
	// compile from holding up every other.
	compileSlots = 4
)

// ErrTooComplex is returned (wrapped) for an expression over one of the
// limits above.
var ErrTooComplex = errors.New("expression too complex")

var slots = make(chan struct{}, slotCount())

// testHookCompile, when set, runs at the start of every compile while its
// slot is held.
var testHookCompile func(expr string)

// compile turns a tcpdump expression into a classic BPF program with
// compileExpr (libpcap's compiler in a cgo build, goCompile without) and loads it into a pure-Go
// machine, so that it runs on frames that never were on a wire of their own.
//
// The compile runs in a goroutine of its own: when ctx ends first, compile
// returns and the goroutine finishes (bounded by the limits) and frees
// what it made without anyone waiting for it.
func compile(ctx context.Context, expr string) (*bpf.VM, error) {
	if err := checkExpr(expr); err != nil {
		return nil, err
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("filter %s: no compile slot free in time (too many filters being compiled at once)", short(expr))
	}
	type result struct {
		raw []bpf.RawInstruction
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-slots }()
		if testHookCompile != nil {
			testHookCompile(expr)
		}
		raw, err := compileExpr(expr)
		done <- result{raw, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("filter %s: compile timed out", short(expr))
	}
	if r.err != nil {
		return nil, fmt.Errorf("filter %s: %w", short(expr), r.err)
	}
	prog, ok := bpf.Disassemble(r.raw)
	if !ok {
		return nil, fmt.Errorf("filter %s: libpcap produced an instruction the BPF machine cannot run", short(expr))
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		return nil, fmt.Errorf("filter %s: %w", short(expr), err)
	}
	return vm, nil
}

// checkExpr applies the limits that need no compiler.
func checkExpr(expr string) error {
	if len(expr) > MaxExprLen {
		return fmt.Errorf("filter %s: %w: %d bytes, the limit is %d", short(expr), ErrTooComplex, len(expr), MaxExprLen)
	}
	if n := terms(expr); n > MaxTerms {
		return fmt.Errorf("filter %s: %w: %d terms joined by and/or, the limit is %d", short(expr), ErrTooComplex, n, MaxTerms)
	}
	return nil
}

// terms counts the primitives of a tcpdump expression as one more than its
// and / or operators. A word that only looks like one (a host named "or")
// makes the count too high, never too low.
func terms(expr string) int {
	n := 1 + strings.Count(expr, "&&") + strings.Count(expr, "||")
	for w := range strings.FieldsFuncSeq(expr, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' || r == '.' || r == ':')
	}) {
		if strings.EqualFold(w, "and") || strings.EqualFold(w, "or") {
			n++
		}
	}
	return n
}

// short quotes an expression for an error message, cut to a readable
// length: a refused expression may be 100 KB long.
func short(expr string) string {
	const max = 60
	if len(expr) <= max {
		return fmt.Sprintf("%q", expr)
	}
	cut := max
	for cut > 0 && expr[cut]&0xc0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return fmt.Sprintf("%q…", expr[:cut])
}
