package flowindex

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestCorruptIndexes opens and looks up indexes with a few bytes changed
// anywhere: each gives an error or rows, never a panic (parquet-go
// panicked on corrupt schemas, statistics and page headers before Open
// checked the footer and Lookup the checksums). FuzzOpen explores
// further.
func TestCorruptIndexes(t *testing.T) {
	ps, c := knownCapture(t)
	data := build(t, Options{RowGroupRows: 4}, ps, c)
	r := rand.New(rand.NewPCG(1, 1))
	failed := 0
	for range 1500 {
		d := bytes.Clone(data)
		for range 1 + r.IntN(4) {
			d[r.IntN(len(d))] = byte(r.Uint32())
		}
		ix, err := Open(bytes.NewReader(d), int64(len(d)))
		if err != nil {
			failed++
			continue
		}
		for _, q := range []Query{{}, {Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.2.3/32")}}} {
			if _, err := ix.Lookup(q); err != nil {
				failed++
			}
		}
	}
	if failed == 0 {
		t.Error("no corruption was noticed")
	}
}
