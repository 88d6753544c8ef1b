package gen_test

import (
	"bytes"
	"fmt"

	"github.com/vrsniff/vrsniff/internal/gen"
)

func Example() {
	g, err := gen.New(gen.Options{Seed: 1, Mix: gen.Profiles["seed114"]})
	if err != nil {
		panic(err)
	}
	c := g.Next()
	w := c.Packets[0]
	fmt.Println(c.Mode, *c.SrcVN, *c.DstVN, c.Direction)
	fmt.Println("inner frame at byte 114:", bytes.Equal(w.Data[114:], c.Frame))

	// Output:
	// juniper default-domain:demo:vn-left default-domain:demo:vn-east egress
	// inner frame at byte 114: true
}
