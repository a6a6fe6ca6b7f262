package policy

import (
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/resource"
)

// builder collects one host's resources while a role's main runs.
type builder struct {
	policy *Policy
	role   *Role
	thread *starlark.Thread
	plan   *plan.Plan
	// sources is where the controller finds the files the plan references
	// by hash: kept beside the plan, never in it.
	sources fileserver.Sources
	decls   []*declaration
	byID    map[string]*declaration
	labels  map[string]*declaration
	running bool
	// misuse is the first misuse of a deferred value in a place that cannot
	// return an error (if, str()); it wins over whatever error followed.
	misuse *Error

	vars  map[string]any // host vars as templates see them
	facts facts.Facts
}

func newBuilder(p *Policy, r *Role, host string, thread *starlark.Thread) *builder {
	return &builder{
		policy: p, role: r, thread: thread,
		plan:    &plan.Plan{Version: plan.Version, Role: r.Name, Host: host},
		sources: fileserver.Sources{},
		byID:    map[string]*declaration{},
		labels:  map[string]*declaration{},
	}
}

func (b *builder) add(res plan.Resource, d *declaration) (starlark.Value, error) {
	if prev, dup := b.byID[res.ID]; dup {
		return nil, errorAt(d.pos, "duplicate resource %s (first declared at %s)", res.ID, prev.pos)
	}
	if d.label != "" {
		if prev, dup := b.labels[d.label]; dup {
			return nil, errorAt(d.pos, "label %q is already used by %s (declared at %s)", d.label, b.plan.Resources[prev.index].ID, prev.pos)
		}
		b.labels[d.label] = d
	}
	d.index = len(b.plan.Resources)
	b.plan.Resources = append(b.plan.Resources, res)
	b.decls = append(b.decls, d)
	b.byID[res.ID] = d
	var outputs []string
	if s, ok := resource.Lookup(res.Kind); ok {
		outputs = s.Outputs
	}
	return &ResourceRef{id: res.ID, kind: res.Kind, name: res.Name, outputs: outputs, b: b}, nil
}

// edgeWhy remembers why an edge exists so that a cycle error can tell the
// user which argument to change.
type edgeWhy struct {
	reason  string // "after=", "before=", "notify=", "value reference in x=", "declaration order"
	pos     string
	binding bool
}

// graph is "resource index → indices it runs after".
type graph struct {
	n    int
	deps []map[int][]edgeWhy
}

func (g *graph) add(from, to int, why edgeWhy) {
	if g.deps[from] == nil {
		g.deps[from] = map[int][]edgeWhy{}
	}
	g.deps[from][to] = append(g.deps[from][to], why)
}

func (g *graph) sortedDeps(i int) []int {
	out := make([]int, 0, len(g.deps[i]))
	for j := range g.deps[i] {
		out = append(out, j)
	}
	sort.Ints(out)
	return out
}

// reaches reports whether from depends, transitively, on to.
func (g *graph) reaches(from, to int) bool {
	seen := make([]bool, g.n)
	stack := []int{from}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i == to {
			return true
		}
		if seen[i] {
			continue
		}
		seen[i] = true
		for j := range g.deps[i] {
			stack = append(stack, j)
		}
	}
	return false
}

// cycle returns one cycle as a list of indices (first == last), or nil.
func (g *graph) cycle() []int {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, g.n)
	var path []int
	var found []int
	var visit func(i int) bool
	visit = func(i int) bool {
		color[i] = grey
		path = append(path, i)
		for _, j := range g.sortedDeps(i) {
			switch color[j] {
			case grey:
				for k, p := range path {
					if p == j {
						found = append(append([]int{}, path[k:]...), j)
						return true
					}
				}
			case white:
				if visit(j) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		color[i] = black
		return false
	}
	for i := 0; i < g.n; i++ {
		if color[i] == white && visit(i) {
			return found
		}
	}
	return nil
}

func (b *builder) resolve(t target, from *declaration, kwarg string) (int, error) {
	if t.ref != nil {
		d, ok := b.byID[t.ref.id]
		if !ok || t.ref.b != b {
			return 0, errorAt(from.pos, "%s: %s was declared for another host or role and cannot be used here", kwarg, t.ref.id)
		}
		return d.index, nil
	}
	if d, ok := b.labels[t.name]; ok {
		return d.index, nil
	}
	if d, ok := b.byID[t.name]; ok {
		return d.index, nil
	}
	known := make([]string, 0, len(b.byID)+len(b.labels))
	for id := range b.byID {
		known = append(known, id)
	}
	for l := range b.labels {
		known = append(known, l)
	}
	sort.Strings(known)
	hint := suggest(t.name, known)
	if hint == "" && !strings.Contains(t.name, ":") {
		hint = ` (use a "kind:name" id such as "service:nginx", or a label= given to a resource)`
	}
	return 0, errorAt(from.pos, "%s: unknown resource %q in role %s%s", kwarg, t.name, b.role.Name, hint)
}

// finish resolves edges, applies declaration order and rejects cycles.
//
// Declaration order is a default, not a constraint: a resource runs after
// the one declared before it unless the role is parallel, the resource gave
// after= itself, or the implicit edge would contradict an explicit one (for
// example a service declared before the file that notifies it). Explicit
// edges that contradict each other are a cycle error.
func (b *builder) finish() (*plan.Plan, error) {
	res := b.plan.Resources
	g := &graph{n: len(res), deps: make([]map[int][]edgeWhy, len(res))}
	explicitlyNeeded := make([]bool, len(res)) // someone explicitly runs after it
	for i, d := range b.decls {
		for _, t := range d.after {
			j, err := b.resolve(t, d, "after")
			if err != nil {
				return nil, err
			}
			g.add(i, j, edgeWhy{reason: "after=", pos: d.pos})
			explicitlyNeeded[j] = true
		}
		for _, t := range d.before {
			j, err := b.resolve(t, d, "before")
			if err != nil {
				return nil, err
			}
			g.add(j, i, edgeWhy{reason: "before=", pos: d.pos})
			explicitlyNeeded[i] = true
		}
		for _, t := range d.notify {
			j, err := b.resolve(t, d, "notify")
			if err != nil {
				return nil, err
			}
			// A refresh must reach a resource before it runs, so notify
			// implies order, as in Puppet.
			if id := res[j].ID; !contains(res[i].Notify, id) {
				res[i].Notify = append(res[i].Notify, id)
			}
			g.add(j, i, edgeWhy{reason: "notify=", pos: d.pos})
			explicitlyNeeded[i] = true
		}
		for _, bd := range res[i].Bind {
			for _, p := range bd.Parts {
				if p.IsRef() {
					j := b.byID[p.From].index
					g.add(i, j, edgeWhy{"value reference in " + bd.Param + "=", d.pos, true})
					explicitlyNeeded[j] = true
				}
			}
		}
	}
	if c := g.cycle(); c != nil {
		return nil, b.cycleError(g, c)
	}
	if !b.role.Parallel {
		for i := 1; i < len(res); i++ {
			if b.decls[i].explicitAfter {
				continue
			}
			// Only an explicit edge into i can make i-1 depend on i, so the
			// reachability walk is needed only then.
			if explicitlyNeeded[i] && g.reaches(i-1, i) {
				continue
			}
			g.add(i, i-1, edgeWhy{reason: "declaration order", pos: b.decls[i].pos})
		}
	}
	for i := range res {
		res[i].After = nil
		for _, j := range g.sortedDeps(i) {
			for _, why := range g.deps[i][j] {
				// Bindings are dependencies already (Resource.Deps); After
				// stays the list of ordering edges.
				if !why.binding {
					res[i].After = append(res[i].After, res[j].ID)
					break
				}
			}
		}
	}
	if err := b.plan.Validate(); err != nil {
		return nil, errorAt(b.role.Pos, "role %s: internal error in plan for host %s: %v", b.role.Name, b.plan.Host, err)
	}
	return b.plan, nil
}

func (b *builder) cycleError(g *graph, c []int) *Error {
	// Report at the declaration that appears first in the file.
	first := c[0]
	for _, i := range c {
		if i < first {
			first = i
		}
	}
	res := b.plan.Resources
	ids := make([]string, len(c))
	for k, i := range c {
		ids[k] = res[i].ID
	}
	var why []string
	for k := 0; k+1 < len(c); k++ {
		i, j := c[k], c[k+1]
		w := g.deps[i][j][0]
		why = append(why, fmt.Sprintf("%s runs after %s (%s at %s)", res[i].ID, res[j].ID, w.reason, w.pos))
	}
	return errorAt(b.decls[first].pos, "dependency cycle %s: %s", strings.Join(ids, " → "), strings.Join(why, "; "))
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}
