package push

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/herd-project/herd/internal/graph"
	"github.com/herd-project/herd/internal/plan"
)

// waitCycle finds hosts of one role that would wait for each other: a
// resource waits for what it depends on and for the exports it collects
// (from hosts of its own or an earlier serial batch), and an export waits
// for the resources its value comes from. A loop through two hosts (or one
// host collecting its own export before making it) would only end at
// collect_timeout, each side running with nothing; it is a policy error,
// found when the plans are made, before anything changes. The error names
// the loop "host:resource → host:export → …", each with its policy
// position, and the hosts in it.
func waitCycle(role string, plans map[string]*plan.Plan) ([]string, error) {
	hosts := slices.Sorted(func(yield func(string) bool) {
		for h, p := range plans {
			if p != nil && !yield(h) {
				return
			}
		}
	})
	var nodes []string
	label := map[string]string{}
	hostOf := map[string]string{}
	node := func(host, kind, name, pos string) string {
		n := host + "\x00" + kind + "\x00" + name
		if _, ok := label[n]; !ok {
			nodes = append(nodes, n)
			l := host + ":" + name
			if kind == "export" {
				l = host + ":export " + name
			}
			if pos != "" {
				l += " (" + pos + ")"
			}
			label[n], hostOf[n] = l, host
		}
		return n
	}
	deferred := map[string]bool{} // host\x00export\x00name of deferred exports
	for _, h := range hosts {
		p := plans[h]
		for _, r := range p.Resources {
			node(h, "res", r.ID, r.Pos)
		}
		for _, e := range p.Exports {
			if _, lit := e.Literal(); !lit {
				deferred[node(h, "export", e.Name, e.Pos)] = true
			}
		}
	}
	var edges []graph.Edge // From waits for To
	add := func(from, to string) {
		if _, ok := label[to]; ok {
			edges = append(edges, graph.Edge{From: from, To: to})
		}
	}
	for _, h := range hosts {
		p := plans[h]
		for _, r := range p.Resources {
			me := node(h, "res", r.ID, r.Pos)
			for _, d := range r.Deps() {
				add(me, h+"\x00res\x00"+d)
			}
			for _, n := range r.Notify {
				if _, ok := label[h+"\x00res\x00"+n]; ok {
					add(h+"\x00res\x00"+n, me)
				}
			}
			for _, c := range r.Collects() {
				if x := c.Host + "\x00export\x00" + c.Name; !c.Later && c.Role == role && deferred[x] {
					add(me, x)
				}
			}
		}
		for _, e := range p.Exports {
			x := h + "\x00export\x00" + e.Name
			if !deferred[x] {
				continue
			}
			for _, part := range e.Parts {
				if part.IsRef() {
					add(x, h+"\x00res\x00"+part.From)
				}
			}
		}
	}
	g, err := graph.New(nodes, edges)
	if err != nil {
		return hosts, fmt.Errorf("role %s: %v", role, err)
	}
	var ce *graph.CycleError
	if !errors.As(g.Cycle(), &ce) {
		return nil, nil
	}
	path := make([]string, len(ce.Path))
	var in []string
	for i, n := range ce.Path {
		path[i] = label[n]
		if !slices.Contains(in, hostOf[n]) {
			in = append(in, hostOf[n])
		}
	}
	return in, fmt.Errorf("role %s: hosts would wait for each other's exports until collect_timeout: %s (an export must not depend on what it collects)",
		role, strings.Join(path, " → "))
}
