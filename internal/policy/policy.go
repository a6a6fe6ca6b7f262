package policy

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/resource"
)

// Host is what the controller knows about one target when planning it.
type Host struct {
	Name string
	// Vars come from the inventory: string, int64, bool, []any, map[string]any.
	Vars  map[string]any
	Facts facts.Facts
}

// LoadOptions tune Load.
type LoadOptions struct {
	// Vars are extra variables (-e); they override inventory vars per host.
	Vars map[string]any
	// Stdout receives print() output; nil discards it.
	Stdout io.Writer
	// Predeclared adds (or replaces) builtins, e.g. inventory(). It is the
	// extension point for builtins that live outside this package.
	Predeclared starlark.StringDict
	// MaxSteps bounds each evaluation (DefaultMaxSteps if 0).
	MaxSteps uint64
	// Stop, when closed, cancels every evaluation in progress and later:
	// they fail with "interrupted" at the line they were on.
	Stop <-chan struct{}
	// Vault decrypts Ansible Vault values in inventories the policy loads.
	Vault *inventory.Vault
	// OnInput hears every path the policy reads, while loading and
	// planning, also when loading fails (herd watch watches them): see
	// Policy.Inputs.
	OnInput func(path string)
	// CacheDir keeps what download() and archive(url=) fetched, by sha256
	// (default DefaultCacheDir(): ~/.herd/cache).
	CacheDir string
}

// Policy is a loaded policy file. It is immutable after Load, so Plan can
// run for many hosts concurrently.
type Policy struct {
	File  string
	Dir   string
	Roles []*Role

	vars        map[string]any
	predeclared starlark.StringDict
	out         io.Writer
	outMu       sync.Mutex

	tmplMu    sync.Mutex
	templates map[string]*parsedTemplate

	invs  inventories
	vault *inventory.Vault

	maxSteps uint64
	stop     <-chan struct{}

	files *fileServing // fileserving() patterns and hash cache; see fileserving.go

	inputs   inputs // every path read, for herd watch; see inputs.go
	cacheDir string
	dl       downloads // URL fetches in flight; see download.go
}

// Role is one role() declaration: what planning uses, and in RolePush
// what only push uses to reach and pace the role's hosts.
type Role struct {
	Name string
	Pos  string
	Main starlark.Callable
	// Parallel drops declaration order between resources.
	Parallel bool
	// FileservingPaths are the role's own file-serving directories.
	FileservingPaths []string

	RolePush
}

// RolePush is the part of a role that planning never reads: which hosts,
// how to log in and become, how many at once and how many may fail, and
// the connection hooks push calls.
type RolePush struct {
	Hosts         starlark.Value // nil = all hosts (or localhost)
	SSHUser       string
	Sudo          bool
	SudoUser      string
	BecomeMethod  string
	Serial        int
	CheckHostKeys bool
	MaxFail       int

	BeforeConnect, AfterConnect, ShouldContact *Hook
}

// Hook is a role's connection hook (before_connect, after_connect,
// should_contact) bound to its policy, so push calls it per host without
// going back to the policy.
type Hook struct {
	fn  starlark.Callable
	pol *Policy
}

// Call runs the hook with the host as its argument.
func (h *Hook) Call(host Host) (starlark.Value, error) {
	return h.pol.call(h.fn, host)
}

// Role returns the role with the given name, or nil.
func (p *Policy) Role(name string) *Role {
	for _, r := range p.Roles {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// fileOptions are the Starlark dialect of policies: top-level if/for are
// allowed (policies often loop over data), while and recursion are not, so
// every policy terminates.
var fileOptions = &syntax.FileOptions{Set: true, TopLevelControl: true}

const (
	fileKey    = "herd.file"    // thread-local: the module being executed
	loadingKey = "herd.loading" // thread-local: set while Load runs top level code
)

// Load executes the policy's top level (and the modules it loads), which
// declares roles. Nothing host-specific happens here.
func Load(path string, opts LoadOptions) (*Policy, error) {
	p := &Policy{
		File:      path,
		Dir:       filepath.Dir(path),
		vars:      opts.Vars,
		out:       opts.Stdout,
		templates: map[string]*parsedTemplate{},
		maxSteps:  opts.MaxSteps,
		stop:      opts.Stop,
		vault:     opts.Vault,
		inputs:    inputs{notify: opts.OnInput},
		cacheDir:  opts.CacheDir,
	}
	if p.cacheDir == "" {
		p.cacheDir = DefaultCacheDir()
	}
	if p.maxSteps == 0 {
		p.maxSteps = DefaultMaxSteps
	}
	if p.out == nil {
		p.out = io.Discard
	}
	p.predeclared = starlark.StringDict{
		"role":        starlark.NewBuiltin("role", p.roleBuiltin),
		"struct":      starlark.NewBuiltin("struct", starlarkstruct.Make),
		"template":    templateBuiltin(p),
		"inventory":   inventoryBuiltin(p),
		"local":       localBuiltin(p),
		"fileserving": fileservingBuiltin(p),
	}
	for _, k := range resource.Kinds() {
		s, _ := resource.Lookup(k)
		p.predeclared[k] = kindBuiltin(p, s)
	}
	p.predeclared["template"] = templateBuiltin(p)
	maps.Copy(p.predeclared, opts.Predeclared)

	l := &loader{p: p, modules: map[string]*module{}}
	if _, err := l.exec(filepath.Clean(path), ""); err != nil {
		return nil, p.asError(err, path)
	}
	return p, nil
}

type module struct {
	globals starlark.StringDict
	err     error
	loading bool
}

// loader caches modules so each file runs once, and detects load cycles.
type loader struct {
	p       *Policy
	modules map[string]*module
	stack   []string
}

func (l *loader) exec(filename, loadPos string) (starlark.StringDict, error) {
	if m, ok := l.modules[filename]; ok {
		if m.loading {
			cycle := append(l.stackFrom(filename), filename)
			return nil, errorAt(loadPos, "load cycle: %s", strings.Join(cycle, " → "))
		}
		return m.globals, m.err
	}
	m := &module{loading: true}
	l.modules[filename] = m
	l.stack = append(l.stack, filename)
	defer func() {
		l.stack = l.stack[:len(l.stack)-1]
		m.loading = false
	}()

	l.p.inputs.add(filename)
	src, err := os.ReadFile(filename)
	if err != nil {
		if loadPos == "" {
			m.err = errorAt(filename, "cannot read policy: %s", pathError(err))
		} else {
			m.err = errorAt(loadPos, "cannot load %s", pathError(err))
		}
		return nil, m.err
	}
	thread := l.p.newThread("load " + filename)
	defer l.p.limit(thread)()
	thread.SetLocal(fileKey, filename)
	thread.SetLocal(loadingKey, true)
	thread.Load = l.load
	f, err := fileOptions.Parse(filename, src, 0)
	if err == nil {
		err = checkModeLiterals(f)
	}
	if err == nil {
		m.globals, err = starlark.ExecFileOptions(fileOptions, thread, filename, src, l.p.predeclared)
	}
	if err != nil {
		m.err = l.p.asError(err, filename)
	}
	return m.globals, m.err
}

func (l *loader) stackFrom(filename string) []string {
	for i, f := range l.stack {
		if f == filename {
			return append([]string{}, l.stack[i:]...)
		}
	}
	return nil
}

// load resolves a load() relative to the directory of the loading file.
func (l *loader) load(thread *starlark.Thread, module string) (starlark.StringDict, error) {
	from, _ := thread.Local(fileKey).(string)
	pos := callerPos(thread)
	path := module
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(from), module)
	}
	return l.exec(filepath.Clean(path), pos)
}

func (p *Policy) newThread(name string) *starlark.Thread {
	return &starlark.Thread{
		Name: name,
		Print: func(thread *starlark.Thread, msg string) {
			prefix := ""
			if b := builderOf(thread); b != nil {
				prefix = "[" + b.plan.Host + "] "
			}
			p.outMu.Lock()
			defer p.outMu.Unlock()
			fmt.Fprintf(p.out, "%s%s\n", prefix, msg)
		},
	}
}

// hostVars merges inventory vars with the -e vars, which win.
func (p *Policy) hostVars(h Host) map[string]any {
	out := make(map[string]any, len(h.Vars)+len(p.vars))
	maps.Copy(out, h.Vars)
	maps.Copy(out, p.vars)
	return out
}

// Plan runs the role's main for one host and returns its plan. Each call
// uses its own thread, so calls for different hosts may run concurrently.
// Use PlanWithSources to also learn where the controller finds the files
// the plan references.
func (p *Policy) Plan(r *Role, h Host) (*plan.Plan, error) {
	pl, _, err := p.PlanWithSources(r, h)
	return pl, err
}

// PlanWithSources is Plan, plus the controller files the plan's agent may
// fetch by hash: what a file server (push) or a local run serves.
func (p *Policy) PlanWithSources(r *Role, h Host) (*plan.Plan, fileserver.Sources, error) {
	thread := p.newThread("plan " + r.Name + " " + h.Name)
	defer p.limit(thread)()
	b := newBuilder(p, r, h.Name, thread)
	b.vars = p.hostVars(h)
	b.facts = h.Facts
	hv, err := newHostValue(h, b.vars)
	if err != nil {
		return nil, nil, errorAt(r.Pos, "role %s: %v", r.Name, err)
	}
	thread.SetLocal(builderKey, b)
	b.running = true
	_, err = starlark.Call(thread, r.Main, starlark.Tuple{hv}, nil)
	b.running = false
	if b.misuse != nil {
		return nil, nil, b.misuse
	}
	if err != nil {
		return nil, nil, p.asError(err, r.Pos)
	}
	pl, err := b.finish()
	if err != nil {
		return nil, nil, err
	}
	return pl, b.sources, nil
}

// call runs a hook (before_connect, …) with the host as its argument.
func (p *Policy) call(fn starlark.Callable, h Host) (starlark.Value, error) {
	thread := p.newThread("call " + fn.Name() + " " + h.Name)
	defer p.limit(thread)()
	hv, err := newHostValue(h, p.hostVars(h))
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	v, err := starlark.Call(thread, fn, starlark.Tuple{hv}, nil)
	if err != nil {
		return nil, p.asError(err, p.File)
	}
	return v, nil
}

func (p *Policy) roleBuiltin(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	pos := callerPos(thread)
	if thread.Local(loadingKey) == nil {
		return nil, errorAt(pos, "role() can only be called at the top level of a policy, not inside a function that runs per host")
	}
	r := &Role{Pos: pos, RolePush: RolePush{Serial: 80, CheckHostKeys: true}}
	var main, hosts, before, after, should starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None, starlark.None
	var paths *starlark.List
	if err := starlark.UnpackArgs("role", args, kwargs,
		"name", &r.Name, "main", &main, "hosts?", &hosts,
		"ssh_user?", &r.SSHUser, "sudo?", &r.Sudo, "sudo_user?", &r.SudoUser,
		"become_method?", &r.BecomeMethod, "serial?", &r.Serial, "check_host_keys?", &r.CheckHostKeys,
		"before_connect?", &before, "after_connect?", &after, "should_contact?", &should,
		"max_fail?", &r.MaxFail, "parallel?", &r.Parallel, "fileserving_paths?", &paths,
	); err != nil {
		return nil, errorAt(pos, "%v", err)
	}
	if r.Name == "" {
		return nil, errorAt(pos, "role(): name must not be empty")
	}
	if p.Role(r.Name) != nil {
		return nil, errorAt(pos, "duplicate role %q (first declared at %s)", r.Name, p.Role(r.Name).Pos)
	}
	var ok bool
	if r.Main, ok = main.(starlark.Callable); !ok {
		return nil, errorAt(pos, "role %q: main must be a function taking the host, got %s", r.Name, main.Type())
	}
	if f, isFn := main.(*starlark.Function); isFn && f.NumParams() == 0 && !f.HasVarargs() {
		return nil, errorAt(pos, "role %q: main function %s must take one parameter (the host)", r.Name, f.Name())
	}
	if r.Serial < 1 {
		return nil, errorAt(pos, "role %q: serial must be at least 1, got %d", r.Name, r.Serial)
	}
	if r.MaxFail < 0 {
		return nil, errorAt(pos, "role %q: max_fail must not be negative", r.Name)
	}
	if hosts != starlark.None {
		r.Hosts = hosts
	}
	for _, h := range []struct {
		name string
		v    starlark.Value
		dst  **Hook
	}{{"before_connect", before, &r.BeforeConnect}, {"after_connect", after, &r.AfterConnect}, {"should_contact", should, &r.ShouldContact}} {
		if h.v == starlark.None {
			continue
		}
		c, ok := h.v.(starlark.Callable)
		if !ok {
			return nil, errorAt(pos, "role %q: %s must be a function, got %s", r.Name, h.name, h.v.Type())
		}
		*h.dst = &Hook{fn: c, pol: p}
	}
	if paths != nil {
		l, err := stringList(fmt.Sprintf("role %q", r.Name), "fileserving_paths", paths)
		if err != nil {
			return nil, errorAt(pos, "%v", err)
		}
		r.FileservingPaths = l
	}
	// Plan calls these from many goroutines; frozen values are safe to share
	// (module globals are frozen by Load, but a lambda passed inline is not).
	for _, v := range []starlark.Value{main, hosts, before, after, should} {
		v.Freeze()
	}
	p.Roles = append(p.Roles, r)
	return starlark.None, nil
}
