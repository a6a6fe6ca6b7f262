package inventory

import (
	"fmt"
	"io"
	"strings"
)

// Graph writes the group tree like `ansible-inventory --graph`, so users
// moving from Ansible can diff the two outputs: children and hosts in file
// order, as ansible-inventory prints them, hosts of "all" under "ungrouped".
//
//	@all:
//	  |--@ungrouped:
//	  |--@web:
//	  |  |--web1
func Graph(inv *Inventory, w io.Writer) {
	byName := map[string]*Group{}
	for _, g := range inv.groups {
		byName[g.Name] = g
	}
	var walk func(g *Group, depth int)
	walk = func(g *Group, depth int) {
		fmt.Fprintln(w, graphLine("@"+g.Name+":", depth))
		for _, c := range g.Children {
			if cg, ok := byName[c]; ok {
				walk(cg, depth+1)
			}
		}
		if g.Name == "all" {
			return
		}
		for _, h := range g.Hosts {
			fmt.Fprintln(w, graphLine(h, depth+1))
		}
	}
	if all, ok := byName["all"]; ok {
		walk(all, 0)
	}
}

func graphLine(name string, depth int) string {
	if depth == 0 {
		return name
	}
	return strings.Repeat("  |", depth) + "--" + name
}
