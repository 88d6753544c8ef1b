package main

import (
	"fmt"
	"os"
)

func runExtcap(args []string) int {
	fmt.Fprintln(os.Stderr, "vrsniff extcap: not built yet")
	return exitFailure
}
