package main

import (
	"fmt"
	"os"
)

func runMirror(args []string) int {
	fmt.Fprintln(os.Stderr, "vrsniff mirror: not built yet")
	return exitFailure
}
