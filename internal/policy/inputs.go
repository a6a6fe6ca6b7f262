package policy

import (
	"path/filepath"
	"sort"
	"sync"
)

// inputs records every controller path a policy read while loading and
// planning: .star files, templates, served files and trees, and what its
// inventories read. herd watch watches exactly these, wherever they live,
// so an edit of any input of a plan re-plans the hosts.
type inputs struct {
	mu     sync.Mutex
	paths  map[string]bool
	notify func(string) // LoadOptions.OnInput / OnInput
}

func (in *inputs) add(paths ...string) {
	var fresh []string
	in.mu.Lock()
	if in.paths == nil {
		in.paths = map[string]bool{}
	}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if !in.paths[p] {
			in.paths[p] = true
			fresh = append(fresh, p)
		}
	}
	notify := in.notify
	in.mu.Unlock()
	if notify != nil {
		for _, p := range fresh {
			notify(p)
		}
	}
}

// Inputs returns, as absolute paths, every file and directory the policy
// has read so far (loading, and every Plan since): the policy and its
// load()ed files, templates, served files and copy trees (both the path
// named and where a symlink leads), and the inventories' sources and vars
// directories (where vault-encrypted vars files live). A directory stands
// for everything under it; a path may not exist yet (a group_vars/ not
// made yet). Planning adds to the list: see OnInput.
func (p *Policy) Inputs() []string {
	p.inputs.mu.Lock()
	defer p.inputs.mu.Unlock()
	out := make([]string, 0, len(p.inputs.paths))
	for k := range p.inputs.paths {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// OnInput calls fn with every input (see Inputs) read so far, and then
// with each new one as planning reads it, on the planning goroutine. It
// replaces LoadOptions.OnInput.
func (p *Policy) OnInput(fn func(path string)) {
	p.inputs.mu.Lock()
	p.inputs.notify = fn
	p.inputs.mu.Unlock()
	for _, k := range p.Inputs() {
		fn(k)
	}
}
