package policy

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/herd-project/herd/internal/inventory"
)

// inventories remembers every inventory a policy loaded, so push mode can
// resolve herd_via parents that are not targets of any role.
type inventories struct {
	mu     sync.Mutex
	list   []*inventory.Inventory
	byPath map[string]*inventory.Inventory
}

// Inventories returns the inventories the policy loaded, in load order.
func Inventories(p *Policy) []*inventory.Inventory {
	p.invs.mu.Lock()
	defer p.invs.mu.Unlock()
	return append([]*inventory.Inventory(nil), p.invs.list...)
}

// inventoryBuiltin is inventory(path): load an inventory relative to the
// calling file. Loading the same file twice returns the same inventory.
func inventoryBuiltin(p *Policy) *starlark.Builtin {
	return starlark.NewBuiltin("inventory", func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		pos := callerPos(thread)
		var path string
		if err := starlark.UnpackPositionalArgs("inventory", args, kwargs, 1, &path); err != nil {
			return nil, errorAt(pos, "%v", err)
		}
		if !filepath.IsAbs(path) {
			from, _ := thread.Local(fileKey).(string)
			dir := p.Dir
			if from != "" {
				dir = filepath.Dir(from)
			}
			path = filepath.Join(dir, path)
		}
		path = filepath.Clean(path)
		p.invs.mu.Lock()
		defer p.invs.mu.Unlock()
		if inv, ok := p.invs.byPath[path]; ok {
			return &inventoryValue{inv: inv, path: path}, nil
		}
		// As Ansible reads a playbook directory's group_vars/ and
		// host_vars/, the policy file's directory's apply on top.
		p.inputs.add(path)
		inv, err := inventory.LoadWith(path, inventory.Options{PlaybookDir: p.Dir, Vault: p.vault})
		if err != nil {
			return nil, errorAt(pos, "inventory: %s", oneLine(err.Error()))
		}
		if p.invs.byPath == nil {
			p.invs.byPath = map[string]*inventory.Inventory{}
		}
		p.invs.byPath[path] = inv
		p.inputs.add(inv.Inputs...)
		p.invs.list = append(p.invs.list, inv)
		return &inventoryValue{inv: inv, path: path}, nil
	})
}

// inventoryValue is the Starlark face of an inventory.
type inventoryValue struct {
	inv  *inventory.Inventory
	path string
}

func (v *inventoryValue) String() string        { return fmt.Sprintf("<inventory %s>", v.path) }
func (v *inventoryValue) Type() string          { return "inventory" }
func (v *inventoryValue) Freeze()               {}
func (v *inventoryValue) Truth() starlark.Bool  { return starlark.True }
func (v *inventoryValue) Hash() (uint32, error) { return starlark.String(v.path).Hash() }
func (v *inventoryValue) AttrNames() []string   { return []string{"filter", "groups", "hosts"} }

func (v *inventoryValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "hosts":
		return &HostSet{inv: v.inv, hosts: v.inv.Hosts()}, nil
	case "groups":
		var names []starlark.Value
		for _, g := range v.inv.Groups() {
			names = append(names, starlark.String(g.Name))
		}
		return starlark.NewList(names), nil
	case "filter":
		return starlark.NewBuiltin("filter", v.filter), nil
	}
	return nil, nil
}

// filter(groups=, hosts=) selects hosts by fnmatch patterns, each a string
// or a list of strings; filter(pattern=) by an Ansible host pattern
// ("web:&prod:!db1", "~web\\d+"), narrowing groups=/hosts= when both are
// given.
func (v *inventoryValue) filter(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	pos := callerPos(thread)
	var groups, hosts starlark.Value = starlark.None, starlark.None
	var pattern string
	if err := starlark.UnpackArgs("filter", args, kwargs, "groups?", &groups, "hosts?", &hosts, "pattern?", &pattern); err != nil {
		return nil, errorAt(pos, "%v", err)
	}
	gs, err := patterns("groups", groups)
	if err != nil {
		return nil, errorAt(pos, "filter: %v", err)
	}
	hs, err := patterns("hosts", hosts)
	if err != nil {
		return nil, errorAt(pos, "filter: %v", err)
	}
	for _, p := range append(append([]string{}, gs...), hs...) {
		if err := inventory.CheckPattern(p); err != nil {
			return nil, errorAt(pos, "filter: %v", err)
		}
	}
	selected := v.inv.Filter(gs, hs)
	if pattern != "" {
		p, err := inventory.ParsePattern(pattern, nil)
		if err != nil {
			return nil, errorAt(pos, "filter: %v", err)
		}
		p.Bind(v.inv)
		var narrowed []*inventory.Host
		for _, h := range selected {
			if p.Match(h, v.inv.IsGroup) {
				narrowed = append(narrowed, h)
			}
		}
		selected = narrowed
	}
	return &HostSet{inv: v.inv, hosts: selected}, nil
}

func patterns(what string, v starlark.Value) ([]string, error) {
	switch x := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.String:
		return []string{string(x)}, nil
	case *starlark.List, starlark.Tuple:
		var out []string
		it := starlark.Iterate(x)
		defer it.Done()
		var e starlark.Value
		for it.Next(&e) {
			s, ok := starlark.AsString(e)
			if !ok {
				return nil, fmt.Errorf("%s: want strings, got %s", what, e.Type())
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: want a pattern or a list of patterns, got %s", what, v.Type())
}

// HostSet is a selection of inventory hosts, given to role(hosts=...).
type HostSet struct {
	inv   *inventory.Inventory
	hosts []*inventory.Host
}

func (s *HostSet) String() string {
	names := make([]string, len(s.hosts))
	for i, h := range s.hosts {
		names[i] = h.Name
	}
	return "<hosts " + strings.Join(names, " ") + ">"
}
func (s *HostSet) Type() string          { return "hosts" }
func (s *HostSet) Freeze()               {}
func (s *HostSet) Truth() starlark.Bool  { return len(s.hosts) > 0 }
func (s *HostSet) Hash() (uint32, error) { return starlark.String(s.String()).Hash() }
func (s *HostSet) Len() int              { return len(s.hosts) }
func (s *HostSet) Iterate() starlark.Iterator {
	names := make([]starlark.Value, len(s.hosts))
	for i, h := range s.hosts {
		names[i] = starlark.String(h.Name)
	}
	return starlark.NewList(names).Iterate()
}

// RoleHosts returns the hosts a role selected with hosts=. ok is false when
// the role named none. hosts= accepts a selection (inv.filter(...),
// inv.hosts) or a list of them, joined without duplicates.
func RoleHosts(r *Role) (hosts []*inventory.Host, ok bool, err error) {
	if r.Hosts == nil || r.Hosts == starlark.None {
		return nil, false, nil
	}
	seen := map[string]bool{}
	add := func(s *HostSet) {
		for _, h := range s.hosts {
			if !seen[h.Name] {
				seen[h.Name] = true
				hosts = append(hosts, h)
			}
		}
	}
	switch v := r.Hosts.(type) {
	case *HostSet:
		add(v)
	case *starlark.List, starlark.Tuple:
		it := starlark.Iterate(v)
		defer it.Done()
		var e starlark.Value
		for it.Next(&e) {
			s, isSet := e.(*HostSet)
			if !isSet {
				return nil, false, errorAt(r.Pos, "role %q: hosts= list must hold inventory selections, got %s", r.Name, e.Type())
			}
			add(s)
		}
	default:
		return nil, false, errorAt(r.Pos, "role %q: hosts= must be an inventory selection such as inventory(\"inv.toml\").filter(groups=\"web*\"), got %s", r.Name, r.Hosts.Type())
	}
	return hosts, true, nil
}

// localBuiltin is local(cmd, check=True, timeout=60): run a shell command on
// the controller (for hooks such as load balancer drains). It returns a
// struct with rc, stdout and stderr; a non-zero exit is an error unless
// check=False.
func localBuiltin(p *Policy) *starlark.Builtin {
	return starlark.NewBuiltin("local", func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		pos := callerPos(thread)
		var cmd string
		check := true
		timeout := 60
		if err := starlark.UnpackArgs("local", args, kwargs, "cmd", &cmd, "check?", &check, "timeout?", &timeout); err != nil {
			return nil, errorAt(pos, "%v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeout)*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
		c.Dir = p.Dir
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		rc := 0
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				rc = ee.ExitCode()
			} else {
				return nil, errorAt(pos, "local(%q): %v", cmd, err)
			}
		}
		if ctx.Err() != nil {
			return nil, errorAt(pos, "local(%q): timed out after %ds", cmd, timeout)
		}
		if rc != 0 && check {
			return nil, errorAt(pos, "local(%q): exit code %d: %s", cmd, rc, oneLine(lastLines(stderr.String(), 3)))
		}
		return starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
			"rc": starlark.MakeInt(rc), "stdout": starlark.String(stdout.String()), "stderr": starlark.String(stderr.String()),
		}), nil
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
