package main

import (
	"fmt"
	"os"
)

func runGen(args []string) int {
	fmt.Fprintln(os.Stderr, "vrsniff gen: not built yet")
	return exitFailure
}
