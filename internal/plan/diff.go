package plan

import (
	"encoding/json"
	"slices"
	"sort"
)

// Watch mode (herd watch) sends a host a new plan only when it differs from
// the last one, and the agent re-checks only what changed. Both sides need
// the same two answers: which resources differ (Diff) and which resources a
// partial run must include so that refreshes and bound values still work
// (Subset).

// ResourceHash is a stable digest of what a resource asks for: kind, name,
// params (file contents are in params by hash), edges, bindings and meta.
// Pos is left out: moving a resource down the policy file changes nothing
// on the target.
func ResourceHash(r Resource) string {
	r.Pos = ""
	b, err := json.Marshal(r)
	if err != nil {
		// Params hold only JSON values (the policy builds them); a marshal
		// failure still must not hide a change.
		return "unhashable:" + r.ID
	}
	return Hash(b)
}

// Diff compares two plans of one role for one host: changed lists the IDs
// of resources that are new in next or whose hash differs, in next's
// order; removed the IDs of prev that next no longer has. prev may be nil.
func Diff(prev, next *Plan) (changed, removed []string) {
	old := map[string]string{}
	if prev != nil {
		for _, r := range prev.Resources {
			old[r.ID] = ResourceHash(r)
		}
	}
	seen := map[string]bool{}
	if next != nil {
		for _, r := range next.Resources {
			seen[r.ID] = true
			if h, ok := old[r.ID]; !ok || h != ResourceHash(r) {
				changed = append(changed, r.ID)
			}
		}
	}
	if prev != nil {
		for _, r := range prev.Resources {
			if !seen[r.ID] {
				removed = append(removed, r.ID)
			}
		}
	}
	return changed, removed
}

// Subset is the part of p a partial run executes for the resources ids:
// those resources, the resources they notify (a change owes them a
// refresh), the resources that consume their values, and the producers of
// every value a member consumes (a binding needs its source's output),
// repeated until nothing is added. Resources merely ordered after a member
// (after=, declaration order) are not included: their own inputs did not
// change. Inside the subset the order of p is kept: a member waits for
// every member it reached through edges of p, even via non-members.
func Subset(p *Plan, ids []string) *Plan {
	byID := make(map[string]*Resource, len(p.Resources))
	consumers := map[string][]string{}
	for i := range p.Resources {
		r := &p.Resources[i]
		byID[r.ID] = r
		for _, b := range r.Bind {
			for _, part := range b.Parts {
				if part.IsRef() {
					consumers[part.From] = append(consumers[part.From], r.ID)
				}
			}
		}
	}
	in := map[string]bool{}
	queue := []string{}
	add := func(id string) {
		if _, ok := byID[id]; ok && !in[id] {
			in[id] = true
			queue = append(queue, id)
		}
	}
	for _, id := range ids {
		add(id)
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		r := byID[id]
		for _, n := range r.Notify {
			add(n)
		}
		for _, c := range consumers[id] {
			add(c)
		}
		for _, b := range r.Bind {
			for _, part := range b.Parts {
				if part.IsRef() {
					add(part.From)
				}
			}
		}
	}
	sub := &Plan{Version: p.Version, Role: p.Role, Host: p.Host, Blobs: p.Blobs, Files: p.Files}
	for _, r := range p.Resources {
		if !in[r.ID] {
			continue
		}
		c := r
		c.After = reachedMembers(byID, r.ID, in)
		c.Notify = nil
		for _, n := range r.Notify {
			if in[n] {
				c.Notify = append(c.Notify, n)
			}
		}
		sub.Resources = append(sub.Resources, c)
	}
	// The exports whose sources all run in the subset: a watch's agent
	// reports them after the run, so a changed command output reaches
	// the hosts that collect it.
	for _, e := range p.Exports {
		if !slices.ContainsFunc(e.Parts, func(part Part) bool { return part.IsRef() && !in[part.From] }) {
			sub.Exports = append(sub.Exports, e)
		}
	}
	return sub
}

// reachedMembers are the members of in that id waits for in p, directly or
// through non-members, without duplicates and sorted. Binding sources are
// members already (Subset adds them) and stay implicit edges.
func reachedMembers(byID map[string]*Resource, id string, in map[string]bool) []string {
	var out []string
	seen := map[string]bool{id: true}
	stack := append([]string{}, byID[id].After...)
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[d] {
			continue
		}
		seen[d] = true
		if in[d] {
			out = append(out, d)
			continue // its own edges order the rest
		}
		if r, ok := byID[d]; ok {
			stack = append(stack, r.Deps()...)
		}
	}
	sort.Strings(out)
	return out
}
