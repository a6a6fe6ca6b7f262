package graph

import "slices"

type nodeState int

const (
	waiting nodeState = iota // some dependency has not finished
	ready                    // all dependencies done, not yet handed out
	handed                   // returned by Ready, running
	done                     // finished successfully (or skipped harmlessly)
	failed                   // finished with a failure
	blocked                  // will never run: a dependency failed or was blocked
)

// Scheduler tracks which nodes can run given what finished. It is not safe
// for concurrent use: the caller's dispatch loop owns it and runs the nodes
// themselves elsewhere.
type Scheduler struct {
	g       *Graph
	state   []nodeState
	pending []int // unfinished dependencies per node
	fresh   []int // nodes that became ready since the last Ready call
}

// Blocked is a node that will never run because Cause, one of its direct
// dependencies, failed or was itself blocked.
type Blocked struct {
	Node, Cause string
}

// NewScheduler starts with nothing finished. It does not check for cycles:
// nodes on a cycle would simply never become ready, so call Cycle first.
func (g *Graph) NewScheduler() *Scheduler {
	s := &Scheduler{g: g, state: make([]nodeState, len(g.nodes)), pending: make([]int, len(g.nodes))}
	for i := range g.nodes {
		s.pending[i] = len(g.pred[i])
		if s.pending[i] == 0 {
			s.state[i] = ready
			s.fresh = append(s.fresh, i)
		}
	}
	return s
}

// Ready returns the nodes that can run now and were not returned before, in
// declaration order. Each node is returned at most once.
func (s *Scheduler) Ready() []string {
	slices.Sort(s.fresh)
	out := make([]string, 0, len(s.fresh))
	for _, i := range s.fresh {
		s.state[i] = handed
		out = append(out, s.g.nodes[i])
	}
	s.fresh = s.fresh[:0]
	return out
}

// Done records that n finished so its dependents may run. Unknown or already
// finished nodes are ignored.
func (s *Scheduler) Done(n string) {
	i, ok := s.g.index[n]
	if !ok || s.state[i] >= done {
		return
	}
	s.state[i] = done
	for _, d := range s.g.succ[i] {
		s.pending[d]--
		if s.pending[d] == 0 && s.state[d] == waiting {
			s.state[d] = ready
			s.fresh = append(s.fresh, d)
		}
	}
}

// Fail records that n failed and returns every node that can now never run
// (its dependents, transitively), in declaration order, each with the direct
// dependency that blocked it. Unknown or already finished nodes are ignored.
func (s *Scheduler) Fail(n string) []Blocked {
	i, ok := s.g.index[n]
	if !ok || s.state[i] >= done {
		return nil
	}
	s.state[i] = failed
	type hit struct{ node, cause int }
	var hits []hit
	queue := []int{i}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		for _, d := range s.g.succ[c] {
			if s.state[d] != waiting {
				continue
			}
			s.state[d] = blocked
			hits = append(hits, hit{d, c})
			queue = append(queue, d)
		}
	}
	slices.SortFunc(hits, func(a, b hit) int { return a.node - b.node })
	out := make([]Blocked, len(hits))
	for k, h := range hits {
		out[k] = Blocked{Node: s.g.nodes[h.node], Cause: s.g.nodes[h.cause]}
	}
	return out
}

// Unstarted returns, in declaration order, the nodes that were neither handed
// out by Ready nor blocked: what a caller that stops early must still report.
func (s *Scheduler) Unstarted() []string {
	var out []string
	for i, st := range s.state {
		if st == waiting || st == ready {
			out = append(out, s.g.nodes[i])
		}
	}
	return out
}

// Finished reports whether every node is done, failed or blocked.
func (s *Scheduler) Finished() bool {
	for _, st := range s.state {
		if st < done {
			return false
		}
	}
	return true
}
