package filter

/*
#cgo LDFLAGS: -lpcap
#include <stdio.h>
#include <stdlib.h>
#include <pcap.h>

// vrs_compile compiles expr for Ethernet on a handle of its own, so that
// concurrent calls share nothing. On failure errbuf holds the reason.
static int vrs_compile(const char *expr, int optimize, struct bpf_program *prog, char *errbuf) {
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 262144);
	if (p == NULL) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "pcap_open_dead failed");
		return -1;
	}
	int rc = pcap_compile(p, prog, expr, optimize, PCAP_NETMASK_UNKNOWN);
	if (rc < 0)
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s", pcap_geterr(p));
	pcap_close(p);
	return rc;
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

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

// slotCount allows a single compile at a time with a libpcap older than
// 1.8, whose compiler is not reentrant.
func slotCount() int {
	var major, minor int
	v := C.GoString(C.pcap_lib_version())
	if _, err := fmt.Sscanf(v, "libpcap version %d.%d", &major, &minor); err != nil || major < 1 || major == 1 && minor < 8 {
		return 1
	}
	return compileSlots
}

// testHookCompile, when set, runs at the start of every compile while its
// slot is held.
var testHookCompile func(expr string)

// compile turns a tcpdump expression into a classic BPF program with
// libpcap's compiler (the only complete one) and loads it into a pure-Go
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
		raw, err := pcapCompile(expr)
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

// pcapCompile compiles expr twice: first without the optimizer, whose
// time grows with the size of that program, and then, when that size is
// within MaxInstructions, with it. Sizes are checked before anything is
// copied.
func pcapCompile(expr string) ([]bpf.RawInstruction, error) {
	cexpr := C.CString(expr)
	defer C.free(unsafe.Pointer(cexpr))
	var errbuf [C.PCAP_ERRBUF_SIZE]C.char
	var prog C.struct_bpf_program
	for _, stage := range []string{"before", "after"} {
		optimize := C.int(0)
		if stage == "after" {
			C.pcap_freecode(&prog)
			optimize = 1
		}
		if C.vrs_compile(cexpr, optimize, &prog, &errbuf[0]) < 0 {
			return nil, errors.New(C.GoString(&errbuf[0]))
		}
		if n := int(prog.bf_len); n > MaxInstructions {
			C.pcap_freecode(&prog)
			return nil, fmt.Errorf("%w: %d BPF instructions %s optimization, the limit is %d", ErrTooComplex, n, stage, MaxInstructions)
		}
	}
	defer C.pcap_freecode(&prog)
	raw := make([]bpf.RawInstruction, prog.bf_len)
	for i, in := range unsafe.Slice(prog.bf_insns, len(raw)) {
		raw[i] = bpf.RawInstruction{Op: uint16(in.code), Jt: uint8(in.jt), Jf: uint8(in.jf), K: uint32(in.k)}
	}
	return raw, nil
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
