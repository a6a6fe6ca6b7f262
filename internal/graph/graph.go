// Package graph is the dependency DAG of a plan: stable topological order,
// cycle errors that name the cycle, and a ready-set scheduler. Nodes are
// string IDs; declaration order is kept because users expect resources to
// run (and be reported) in the order they wrote them when edges allow it.
package graph

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"
)

// Edge says From must finish before To starts.
type Edge struct {
	From, To string
}

// Graph is immutable once built, so one graph can feed several schedulers.
type Graph struct {
	nodes []string
	index map[string]int
	succ  [][]int // succ[i]: nodes that wait for i, in declaration order
	pred  [][]int // pred[i]: nodes i waits for, in declaration order
}

// New builds a graph. Nodes keep their order; duplicate edges are merged.
// It fails on duplicate nodes and on edges that name unknown nodes; cycles
// are reported by Cycle, not here, so callers can choose where to check.
func New(nodes []string, edges []Edge) (*Graph, error) {
	g := &Graph{
		nodes: append([]string(nil), nodes...),
		index: make(map[string]int, len(nodes)),
		succ:  make([][]int, len(nodes)),
		pred:  make([][]int, len(nodes)),
	}
	for i, n := range nodes {
		if _, dup := g.index[n]; dup {
			return nil, fmt.Errorf("graph: duplicate node %q", n)
		}
		g.index[n] = i
	}
	seen := make(map[[2]int]bool, len(edges))
	for _, e := range edges {
		from, ok := g.index[e.From]
		if !ok {
			return nil, fmt.Errorf("graph: edge %s → %s: unknown node %q", e.From, e.To, e.From)
		}
		to, ok := g.index[e.To]
		if !ok {
			return nil, fmt.Errorf("graph: edge %s → %s: unknown node %q", e.From, e.To, e.To)
		}
		if seen[[2]int{from, to}] {
			continue
		}
		seen[[2]int{from, to}] = true
		g.succ[from] = append(g.succ[from], to)
		g.pred[to] = append(g.pred[to], from)
	}
	for i := range g.nodes {
		slices.Sort(g.succ[i])
		slices.Sort(g.pred[i])
	}
	return g, nil
}

// CycleError names the nodes of one cycle in edge order; the first node is
// repeated at the end so the message reads as a loop.
type CycleError struct {
	Path []string
}

func (e *CycleError) Error() string {
	return "cycle: " + strings.Join(e.Path, " → ")
}

// Cycle returns a *CycleError for one cycle, or nil when the graph is a DAG.
// The search starts from nodes in declaration order, so the same graph always
// reports the same cycle, starting at its earliest declared node.
func (g *Graph) Cycle() error {
	const (
		white = iota // not visited
		grey         // on the current path
		black        // fully explored, no cycle through it
	)
	color := make([]int, len(g.nodes))
	for root := range g.nodes {
		if color[root] != white {
			continue
		}
		stack := []frame{{node: root}}
		color[root] = grey
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == len(g.succ[top.node]) {
				color[top.node] = black
				stack = stack[:len(stack)-1]
				continue
			}
			child := g.succ[top.node][top.next]
			top.next++
			switch color[child] {
			case white:
				color[child] = grey
				stack = append(stack, frame{node: child})
			case grey:
				return g.cycleFrom(stack, child)
			}
		}
	}
	return nil
}

// frame is one step of the iterative depth-first search: a node and the
// index of its next successor to visit.
type frame struct{ node, next int }

// cycleFrom cuts the DFS path at the node that closed the loop and rotates it
// to start at the earliest declared node of the cycle.
func (g *Graph) cycleFrom(stack []frame, closing int) error {
	var loop []int
	for i, f := range stack {
		if f.node == closing {
			for _, f := range stack[i:] {
				loop = append(loop, f.node)
			}
			break
		}
	}
	start := 0
	for i, n := range loop {
		if n < loop[start] {
			start = i
		}
	}
	path := make([]string, 0, len(loop)+1)
	for i := range loop {
		path = append(path, g.nodes[loop[(start+i)%len(loop)]])
	}
	path = append(path, path[0])
	return &CycleError{Path: path}
}

// Order returns a topological order in which, among the nodes that could go
// next, the earliest declared goes first. A plan without edges therefore
// runs in declaration order. It returns the cycle error when there is one.
func (g *Graph) Order() ([]string, error) {
	if err := g.Cycle(); err != nil {
		return nil, err
	}
	waiting := make([]int, len(g.nodes))
	h := &intHeap{}
	for i := range g.nodes {
		waiting[i] = len(g.pred[i])
		if waiting[i] == 0 {
			heap.Push(h, i)
		}
	}
	out := make([]string, 0, len(g.nodes))
	for h.Len() > 0 {
		n := heap.Pop(h).(int)
		out = append(out, g.nodes[n])
		for _, s := range g.succ[n] {
			waiting[s]--
			if waiting[s] == 0 {
				heap.Push(h, s)
			}
		}
	}
	return out, nil
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
