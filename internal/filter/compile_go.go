//go:build !cgo

package filter

// compileExpr is the pure-Go compiler: a build without cgo (the static
// release binary) has no libpcap.
var compileExpr = goCompile

// libpcapCompiler tells the tests which compiler compileExpr is.
const libpcapCompiler = false

// slotCount: the pure-Go compiler is reentrant.
func slotCount() int { return compileSlots }
