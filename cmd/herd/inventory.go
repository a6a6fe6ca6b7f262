package main

import (
	"fmt"
	"io"
)

func runInventory(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "herd inventory: not built yet")
	return exitUsage
}
