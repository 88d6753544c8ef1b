package main

import (
	"fmt"
	"os"
)

func runDecap(args []string) int {
	fmt.Fprintln(os.Stderr, "vrsniff decap: not built yet")
	return exitFailure
}
