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

// runInventory prints the inventory: hosts with groups and vars (default),
// or like ansible-inventory --list / --host H (JSON) or --graph; secrets
// masked. Sources are -i options and/or positional paths, merged in order.
func runInventory(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd inventory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	graph := fs.Bool("graph", false, "print the group tree like ansible-inventory --graph")
	list := fs.Bool("list", false, "print JSON like ansible-inventory --list")
	host := fs.String("host", "", "print one host's vars as JSON like ansible-inventory --host")
	var sources sourcesFlag
	fs.Var(&sources, "i", "inventory file or directory (repeatable)")
	var vf vaultFlags
	vf.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	sources = append(sources, pos...)
	if len(sources) == 0 {
		fmt.Fprintln(stderr, "herd inventory: want an inventory (FILE, DIR or -i)")
		return exitUsage
	}
	if n := btoi(*graph) + btoi(*list) + btoi(*host != ""); n > 1 {
		fmt.Fprintln(stderr, "herd inventory: use only one of --graph, --list, --host")
		return exitUsage
	}
	vault, err := vf.vault()
	if err != nil {
		fmt.Fprintf(stderr, "herd: %v\n", err)
		return exitUsage
	}
	inv, err := loadSources(sources, "", vault)
	if err != nil {
		fmt.Fprintf(stderr, "herd: %v\n", err)
		return exitUsage
	}
	for _, w := range inv.Warnings() {
		fmt.Fprintf(stderr, "herd: warning: %s\n", w)
	}
	switch {
	case *graph:
		inventory.Graph(inv, stdout)
	case *list:
		err = inventory.WriteList(inv, stdout)
	case *host != "":
		err = inventory.WriteHost(inv, *host, stdout)
	default:
		printHosts(inv, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "herd: %v\n", err)
		return exitUsage
	}
	return exitOK
}

func printHosts(inv *inventory.Inventory, stdout io.Writer) {
	for _, h := range inv.Hosts() {
		fmt.Fprintf(stdout, "%s\n  groups: %s\n", ui.Escape(h.Name), ui.Escape(fmt.Sprint(h.Groups)))
		vars := inv.MaskedVars(h)
		keys := make([]string, 0, len(vars))
		for k := range vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stdout, "  %s = %s\n", ui.Escape(k), ui.Escape(fmt.Sprint(vars[k])))
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
