package inventory

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// builder collects what the parsers read, before precedence is applied.
// Parsers only add; resolve decides what wins.
type builder struct {
	groups     map[string]*groupData
	groupOrder []string
	hosts      map[string]*hostData
	hostOrder  []string
	vault      *Vault
}

type groupData struct {
	name     string
	hosts    []string
	hostSet  map[string]bool
	children []string
	childSet map[string]bool
	parents  []string
	vars     map[string]any // from the inventory source
	fileVars map[string]any // from group_vars/
	pbVars   map[string]any // from the policy directory's group_vars/
	depth    int
	priority int
}

type hostData struct {
	name     string
	vars     map[string]any // from the inventory source
	fileVars map[string]any // from host_vars/
	pbVars   map[string]any // from the policy directory's host_vars/
	groups   []string       // direct groups
}

func newBuilder() *builder {
	b := &builder{groups: map[string]*groupData{}, hosts: map[string]*hostData{}}
	b.group("all")
	b.group("ungrouped")
	b.addChild("all", "ungrouped") // first child, as Ansible's InventoryData
	return b
}

func (b *builder) group(name string) *groupData {
	g, ok := b.groups[name]
	if !ok {
		g = &groupData{name: name, hostSet: map[string]bool{}, childSet: map[string]bool{}, vars: map[string]any{}, fileVars: map[string]any{}, pbVars: map[string]any{}}
		b.groups[name] = g
		b.groupOrder = append(b.groupOrder, name)
	}
	return g
}

func (b *builder) host(name string) *hostData {
	h, ok := b.hosts[name]
	if !ok {
		h = &hostData{name: name, vars: map[string]any{}, fileVars: map[string]any{}, pbVars: map[string]any{}}
		b.hosts[name] = h
		b.hostOrder = append(b.hostOrder, name)
	}
	return h
}

// addHost declares host in group and overlays vars on its inline vars: a
// host listed twice keeps both lines' vars, the later winning per key.
func (b *builder) addHost(group, host string, vars map[string]any) {
	h := b.host(host)
	g := b.group(group)
	if !g.hostSet[host] {
		g.hostSet[host] = true
		g.hosts = append(g.hosts, host)
		h.groups = append(h.groups, group)
	}
	for k, v := range vars {
		h.vars[k] = v
	}
}

// addHostPort is addHost for a "host:port" entry. As in Ansible, the port
// of the shorthand is the host's ansible_port only when this line declares
// the host for the first time; vars written on the line still win, and a
// later "host:port" for a known host is ignored (Ansible's Host(name, port)
// is built once).
func (b *builder) addHostPort(group, host string, port int, hasPort bool, vars map[string]any) {
	_, known := b.hosts[host]
	if hasPort && !known {
		if _, set := vars["ansible_port"]; !set {
			v := map[string]any{"ansible_port": port}
			merge(v, vars)
			vars = v
		}
	}
	b.addHost(group, host, vars)
}

// checkName refuses host and group names with control characters (or
// bytes that are not UTF-8): no real host has one, and in messages they
// could break the one-line error or drive the operator's terminal.
func checkName(what, name string) error {
	for i, r := range name {
		if unicode.IsControl(r) || r == utf8.RuneError && !strings.HasPrefix(name[i:], "\uFFFD") {
			return fmt.Errorf("%s name %q contains a control character or is not UTF-8", what, name)
		}
	}
	return nil
}

func (b *builder) addChild(parent, child string) error {
	if child == "all" {
		return fmt.Errorf("group %q cannot have \"all\" as a child", parent)
	}
	if parent == child {
		return fmt.Errorf("group %q cannot be its own child", parent)
	}
	p, c := b.group(parent), b.group(child)
	if !p.childSet[child] {
		p.childSet[child] = true
		p.children = append(p.children, child)
		c.parents = append(c.parents, parent)
	}
	return nil
}

// removeFromGroup takes h out of group g's direct hosts.
func (b *builder) removeFromGroup(g string, h *hostData) {
	gd := b.groups[g]
	delete(gd.hostSet, h.name)
	gd.hosts = slices.DeleteFunc(gd.hosts, func(n string) bool { return n == h.name })
	h.groups = slices.DeleteFunc(h.groups, func(n string) bool { return n == g })
}

// resolve completes the tree the way Ansible does (parentless groups go under
// "all", groupless hosts into "ungrouped"), reads group_vars/ and host_vars/
// from dir, and merges every host's vars.
func (b *builder) resolve(dirs []string, playbookDir string) (*Inventory, error) {
	for _, name := range b.groupOrder {
		if g := b.groups[name]; name != "all" && len(g.parents) == 0 {
			if err := b.addChild("all", name); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range b.hostOrder {
		h := b.hosts[name]
		if len(h.groups) == 0 || (len(h.groups) == 1 && h.groups[0] == "all") {
			b.addHost("ungrouped", name, nil)
		} else if len(h.groups) > 1 && slices.Contains(h.groups, "ungrouped") {
			// Listed at the top of an INI file and later in a group: like
			// Ansible's reconcile_inventory, it leaves "ungrouped".
			b.removeFromGroup("ungrouped", h)
		}
	}
	if err := b.computeDepths(); err != nil {
		return nil, err
	}
	for _, name := range b.groupOrder {
		g := b.groups[name]
		if p, ok := g.vars["ansible_group_priority"]; ok {
			n, ok := toInt(p)
			if !ok {
				return nil, fmt.Errorf("group %s: ansible_group_priority must be an integer, got %#v", name, p)
			}
			g.priority = n
		}
	}
	for _, dir := range dirs {
		if err := b.readVarsDirs(dir, false); err != nil {
			return nil, err
		}
	}
	if playbookDir != "" {
		if err := b.readVarsDirs(playbookDir, true); err != nil {
			return nil, err
		}
	}

	inv := &Inventory{byName: map[string]*Host{}}
	for _, name := range b.groupOrder {
		g := b.groups[name]
		vars := map[string]any{}
		merge(vars, g.vars)
		merge(vars, g.fileVars)
		merge(vars, g.pbVars)
		inv.groups = append(inv.groups, &Group{
			Name: name, Hosts: slices.Clone(g.hosts), Children: slices.Clone(g.children), Vars: vars, Depth: g.depth,
		})
	}
	for _, name := range b.hostOrder {
		h, err := b.resolveHost(b.hosts[name])
		if err != nil {
			return nil, err
		}
		inv.hosts = append(inv.hosts, h)
		inv.byName[name] = h
	}
	return inv, nil
}

// resolveHost applies Ansible's variable precedence (see the package doc).
func (b *builder) resolveHost(h *hostData) (*Host, error) {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		for _, p := range b.groups[name].parents {
			walk(p)
		}
	}
	for _, g := range h.groups {
		walk(g)
	}
	walk("all")
	var groups []*groupData
	for name := range seen {
		if name != "all" {
			groups = append(groups, b.groups[name])
		}
	}
	slices.SortFunc(groups, func(x, y *groupData) int {
		return cmp.Or(cmp.Compare(x.depth, y.depth), cmp.Compare(x.priority, y.priority), strings.Compare(x.name, y.name))
	})
	all := b.groups["all"]
	layers := []map[string]any{all.vars}
	for _, g := range groups {
		layers = append(layers, g.vars)
	}
	layers = append(layers, all.fileVars, all.pbVars)
	for _, g := range groups {
		layers = append(layers, g.fileVars)
	}
	for _, g := range groups {
		layers = append(layers, g.pbVars)
	}
	layers = append(layers, h.vars, h.fileVars, h.pbVars)

	out := &Host{Name: h.name, Vars: map[string]any{}, Groups: []string{"all"}}
	for _, g := range groups {
		out.Groups = append(out.Groups, g.name)
	}
	for _, l := range layers {
		merge(out.Vars, l)
	}
	// A group's priority orders groups; Ansible does not show it as a host
	// variable.
	delete(out.Vars, "ansible_group_priority")
	conn, err := connFromLayers(layers)
	if err != nil {
		return nil, fmt.Errorf("inventory: host %s: %w", h.name, err)
	}
	out.Conn = conn
	return out, nil
}

// computeDepths gives each group its longest distance from "all", and
// rejects cycles, naming them.
func (b *builder) computeDepths() error {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string, depth int) error
	visit = func(name string, depth int) error {
		g := b.groups[name]
		if state[name] == active {
			i := slices.Index(stack, name)
			return fmt.Errorf("inventory: groups form a cycle: %s", strings.Join(append(stack[i:], name), " → "))
		}
		if depth <= g.depth && state[name] == done {
			return nil
		}
		g.depth = max(g.depth, depth)
		state[name] = active
		stack = append(stack, name)
		for _, c := range g.children {
			if err := visit(c, depth+1); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return nil
	}
	if err := visit("all", 0); err != nil {
		return err
	}
	// Groups unreachable from "all" can only be part of a parent cycle.
	for _, name := range b.groupOrder {
		if state[name] == unvisited {
			if err := visit(name, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// merge overlays src on dst key by key: like Ansible's default
// hash_behaviour=replace, a dict in a later layer replaces, not merges.
func merge(dst, src map[string]any) {
	for k, v := range src {
		dst[k] = v
	}
}
