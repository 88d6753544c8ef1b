//go:build cgo

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
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
)

// compileExpr is libpcap's compiler, the complete one.
var compileExpr = pcapCompile

// libpcapCompiler tells the tests which compiler compileExpr is.
const libpcapCompiler = true

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
