package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/ui"
)

// inventoryFlags are herd inventory's flags.
type inventoryFlags struct {
	graph, list bool
	host        string
	sources     sourcesFlag
	vault       vaultFlags
}

// newInventoryCmd is `herd inventory`: prints the inventory: hosts with
// groups and vars (default), or like ansible-inventory --list / --host H
// (JSON) or --graph; secrets masked. Sources are -i options and/or
// positional paths, merged in order.
func newInventoryCmd(a *app) *cobra.Command {
	var f inventoryFlags
	cmd := &cobra.Command{
		Use:   "inventory [--list | --host H | --graph] [-i] FILE|DIR...",
		Short: "print an inventory (TOML, Ansible INI/YAML, directory or script) as herd reads it",
		Run: func(cmd *cobra.Command, args []string) {
			a.code = runInventory(f, args, a.stdout, a.stderr)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&f.graph, "graph", false, "print the group tree like ansible-inventory --graph")
	fs.BoolVar(&f.list, "list", false, "print JSON like ansible-inventory --list")
	fs.StringVar(&f.host, "host", "", "print one host's vars as JSON like ansible-inventory --host")
	fs.VarP(&f.sources, "inventory", "i", "inventory file or directory (repeatable)")
	f.vault.register(fs)
	cmd.RegisterFlagCompletionFunc("host", completeHostsAndGroups(&f.sources, false))
	return cmd
}

func runInventory(f inventoryFlags, pos []string, stdout, stderr io.Writer) int {
	sources := append(f.sources, pos...)
	if len(sources) == 0 {
		fmt.Fprintln(stderr, "herd inventory: want an inventory (FILE, DIR or -i)")
		return exitUsage
	}
	if n := btoi(f.graph) + btoi(f.list) + btoi(f.host != ""); n > 1 {
		fmt.Fprintln(stderr, "herd inventory: use only one of --graph, --list, --host")
		return exitUsage
	}
	vf := f.vault
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
	case f.graph:
		inventory.Graph(inv, stdout)
	case f.list:
		err = inventory.WriteList(inv, stdout)
	case f.host != "":
		err = inventory.WriteHost(inv, f.host, stdout)
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
