package graph

import (
	"fmt"
	"slices"
)

// Add adds one edge to a graph that is still being built: the policy adds
// declaration-order edges one at a time, each only when it contradicts no
// explicit edge (Reaches), so later checks see it. A Scheduler counts
// dependencies when it is made: do not Add once one exists. A duplicate
// edge is merged, as in New.
func (g *Graph) Add(e Edge) error {
	from, ok := g.index[e.From]
	if !ok {
		return fmt.Errorf("graph: edge %s → %s: unknown node %q", e.From, e.To, e.From)
	}
	to, ok := g.index[e.To]
	if !ok {
		return fmt.Errorf("graph: edge %s → %s: unknown node %q", e.From, e.To, e.To)
	}
	at, dup := slices.BinarySearch(g.succ[from], to)
	if dup {
		return nil
	}
	g.succ[from] = slices.Insert(g.succ[from], at, to)
	at, _ = slices.BinarySearch(g.pred[to], from)
	g.pred[to] = slices.Insert(g.pred[to], at, from)
	return nil
}

// Reaches reports whether a path of edges leads from one node to another
// (to must wait, transitively, for from). Unknown nodes reach nothing.
func (g *Graph) Reaches(from, to string) bool {
	f, ok := g.index[from]
	t, ok2 := g.index[to]
	if !ok || !ok2 {
		return false
	}
	seen := make([]bool, len(g.nodes))
	stack := []int{f}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i == t {
			return true
		}
		if seen[i] {
			continue
		}
		seen[i] = true
		stack = append(stack, g.succ[i]...)
	}
	return false
}

// Waits returns the nodes n waits for directly, in declaration order.
func (g *Graph) Waits(n string) []string {
	i, ok := g.index[n]
	if !ok {
		return nil
	}
	out := make([]string, len(g.pred[i]))
	for k, p := range g.pred[i] {
		out[k] = g.nodes[p]
	}
	return out
}
