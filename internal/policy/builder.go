package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/graph"
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

// deps is the plan's graph (package graph) plus why each edge exists, by
// [i, j]: resource i runs after resource j.
type deps struct {
	g   *graph.Graph
	ids []string
	why map[[2]int][]edgeWhy
}

// after records that resource i runs after resource j.
func (d *deps) after(i, j int, why edgeWhy) {
	// Both are nodes of the graph, so Add cannot fail.
	_ = d.g.Add(graph.Edge{From: d.ids[j], To: d.ids[i]})
	d.why[[2]int{i, j}] = append(d.why[[2]int{i, j}], why)
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
	if !strings.Contains(t.name, ":") {
		if d, err := b.byBareName(t.name, from, kwarg); d != nil || err != nil {
			if err != nil {
				return 0, err
			}
			return d.index, nil
		}
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

// byBareName finds the one resource of the role named name, whatever its
// kind, so notify="nginx" works as Ansible users write it; two kinds with
// that name are ambiguous and must be spelled "kind:name".
func (b *builder) byBareName(name string, from *declaration, kwarg string) (*declaration, error) {
	var found []string
	for id := range b.byID {
		if _, n, ok := strings.Cut(id, ":"); ok && n == name {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return b.byID[found[0]], nil
	}
	sort.Strings(found)
	return nil, errorAt(from.pos, "%s: %q is ambiguous in role %s: say which, one of %s", kwarg, name, b.role.Name, strings.Join(found, ", "))
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
	ids := make([]string, len(res))
	for i := range res {
		ids[i] = res[i].ID
	}
	g, err := graph.New(ids, nil)
	if err != nil {
		return nil, errorAt(b.role.Pos, "role %s: internal error in plan for host %s: %v", b.role.Name, b.plan.Host, err)
	}
	dg := &deps{g: g, ids: ids, why: map[[2]int][]edgeWhy{}}
	explicitlyNeeded := make([]bool, len(res)) // someone explicitly runs after it
	for i, d := range b.decls {
		for _, t := range d.after {
			j, err := b.resolve(t, d, "after")
			if err != nil {
				return nil, err
			}
			dg.after(i, j, edgeWhy{reason: "after=", pos: d.pos})
			explicitlyNeeded[j] = true
		}
		for _, t := range d.before {
			j, err := b.resolve(t, d, "before")
			if err != nil {
				return nil, err
			}
			dg.after(j, i, edgeWhy{reason: "before=", pos: d.pos})
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
			dg.after(j, i, edgeWhy{reason: "notify=", pos: d.pos})
			explicitlyNeeded[i] = true
		}
		for _, bd := range res[i].Bind {
			for _, p := range bd.Parts {
				if p.IsRef() {
					j := b.byID[p.From].index
					dg.after(i, j, edgeWhy{"value reference in " + bd.Param + "=", d.pos, true})
					explicitlyNeeded[j] = true
				}
			}
		}
	}
	if err := g.Cycle(); err != nil {
		return nil, b.cycleError(dg, err.(*graph.CycleError))
	}
	if !b.role.Parallel {
		for i := 1; i < len(res); i++ {
			if b.decls[i].explicitAfter {
				continue
			}
			// Only an explicit edge into i can make i-1 depend on i, so the
			// reachability walk is needed only then.
			if explicitlyNeeded[i] && g.Reaches(ids[i], ids[i-1]) {
				continue
			}
			dg.after(i, i-1, edgeWhy{reason: "declaration order", pos: b.decls[i].pos})
		}
	}
	for i := range res {
		res[i].After = nil
		for _, id := range g.Waits(ids[i]) {
			j := b.byID[id].index
			for _, why := range dg.why[[2]int{i, j}] {
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

// cycleError names the cycle in "runs after" order, starting and ending at
// its earliest declared resource, with the argument behind each step.
func (b *builder) cycleError(dg *deps, ce *graph.CycleError) *Error {
	// The graph's path runs "before → after"; the user reads "a runs after b".
	ids := slices.Clone(ce.Path)
	slices.Reverse(ids)
	var why []string
	for k := 0; k+1 < len(ids); k++ {
		i, j := b.byID[ids[k]].index, b.byID[ids[k+1]].index
		w := dg.why[[2]int{i, j}][0]
		why = append(why, fmt.Sprintf("%s runs after %s (%s at %s)", ids[k], ids[k+1], w.reason, w.pos))
	}
	return errorAt(b.decls[b.byID[ids[0]].index].pos, "dependency cycle %s: %s", strings.Join(ids, " → "), strings.Join(why, "; "))
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}
