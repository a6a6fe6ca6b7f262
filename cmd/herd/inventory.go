package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/ui"
)

// runInventory prints hosts with their groups and resolved vars (secrets
// masked), or the group tree with --graph.
func runInventory(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd inventory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	graph := fs.Bool("graph", false, "print the group tree")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "herd inventory: want one inventory file")
		return exitUsage
	}
	inv, err := inventory.Load(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "herd: %v\n", err)
		return exitUsage
	}
	for _, w := range inv.Warnings() {
		fmt.Fprintf(stderr, "herd: warning: %s\n", w)
	}
	if *graph {
		inventory.Graph(inv, stdout)
		return exitOK
	}
	for _, h := range inv.Hosts() {
		fmt.Fprintf(stdout, "%s\n  groups: %s\n", ui.Escape(h.Name), ui.Escape(fmt.Sprint(h.Groups)))
		vars := inventory.Masked(h.Vars)
		keys := make([]string, 0, len(vars))
		for k := range vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stdout, "  %s = %s\n", ui.Escape(k), ui.Escape(fmt.Sprint(vars[k])))
		}
	}
	return exitOK
}
