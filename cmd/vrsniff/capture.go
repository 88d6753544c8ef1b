package main

import (
	"fmt"
	"os"
)

func runCapture(args []string) int {
	fmt.Fprintln(os.Stderr, "vrsniff capture: not built yet")
	return exitFailure
}
