package policy

import (
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/plan"
)

// ResourceRef is what a resource builtin returns: a handle usable in
// after=/before=/notify= and whose outputs (pw.value, cmd.stdout) are
// deferred values bound on the target.
type ResourceRef struct {
	id, kind, name string
	outputs        []string
	b              *builder
}

var (
	_ starlark.HasAttrs  = (*ResourceRef)(nil)
	_ starlark.HasAttrs  = (*hostValue)(nil)
	_ starlark.HasBinary = (*Deferred)(nil)
)

func (r *ResourceRef) String() string        { return fmt.Sprintf("<resource %s>", r.id) }
func (r *ResourceRef) Type() string          { return "resource" }
func (r *ResourceRef) Freeze()               {}
func (r *ResourceRef) Truth() starlark.Bool  { return starlark.True }
func (r *ResourceRef) Hash() (uint32, error) { return starlark.String(r.id).Hash() }

func (r *ResourceRef) Attr(name string) (starlark.Value, error) {
	switch name {
	case "id":
		return starlark.String(r.id), nil
	case "kind":
		return starlark.String(r.kind), nil
	case "name":
		return starlark.String(r.name), nil
	}
	for _, o := range r.outputs {
		if o == name {
			return &Deferred{parts: []plan.Part{{From: r.id, Field: name}}, b: r.b}, nil
		}
	}
	return nil, nil // starlark reports "resource has no .x field or method" with a suggestion
}

func (r *ResourceRef) AttrNames() []string {
	return append([]string{"id", "kind", "name"}, r.outputs...)
}

// Deferred is a string that only exists on the target, after the resource
// that produces it ran (send/recv). The controller can carry it around and
// concatenate it with strings, but cannot look at it: every attempt to
// branch on it or format it records a misuse error and stops evaluation.
type Deferred struct {
	parts []plan.Part
	b     *builder
}

func (d *Deferred) Type() string { return "deferred" }
func (d *Deferred) Freeze()      {}

// String is called by str(), print(), "%s" and format(): all of them would
// need the value now, so they are misuses. The returned text is only a
// placeholder for the error path.
func (d *Deferred) String() string {
	d.misuse()
	return "<deferred " + d.describe() + ">"
}

// Truth is called by if/and/or/not; it cannot return an error, so the
// misuse is recorded on the builder and the thread is cancelled.
func (d *Deferred) Truth() starlark.Bool {
	d.misuse()
	return starlark.False
}

func (d *Deferred) Hash() (uint32, error) { return 0, d.misuseError() }

func (d *Deferred) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	if op != syntax.PLUS {
		return nil, d.misuseError()
	}
	var other []plan.Part
	switch y := y.(type) {
	case starlark.String:
		other = []plan.Part{{Lit: string(y)}}
	case *Deferred:
		other = y.parts
	default:
		return nil, d.misuseError()
	}
	var parts []plan.Part
	if side == starlark.Left {
		parts = joinParts(d.parts, other)
	} else {
		parts = joinParts(other, d.parts)
	}
	return &Deferred{parts: parts, b: d.b}, nil
}

// joinParts concatenates, merging adjacent literals so bindings stay short.
func joinParts(a, b []plan.Part) []plan.Part {
	out := append([]plan.Part(nil), a...)
	for _, p := range b {
		if n := len(out); n > 0 && p.IsLit() && out[n-1].IsLit() {
			out[n-1].Lit += p.Lit
			continue
		}
		out = append(out, p)
	}
	return out
}

func (d *Deferred) firstRef() plan.Part {
	for _, p := range d.parts {
		if p.IsRef() {
			return p
		}
	}
	return plan.Part{}
}

func (d *Deferred) describe() string {
	if c := d.firstCollected(); c != nil {
		return fmt.Sprintf("%s's export %s", c.Host, c.Name)
	}
	r := d.firstRef()
	return r.From + "." + r.Field
}

func (d *Deferred) firstCollected() *plan.Collected {
	for _, p := range d.parts {
		if p.Xch != nil {
			return p.Xch
		}
		if p.IsRef() {
			return nil
		}
	}
	return nil
}

func (d *Deferred) misuseError() *Error {
	r := d.firstRef()
	pos := ""
	if d.b != nil && d.b.thread != nil {
		pos = callerPos(d.b.thread)
	}
	if c := d.firstCollected(); c != nil {
		return errorAt(pos, "collect(%q)'s value from %s is only known on the target once %s exported it in this run; it can be used as a string argument of a resource or joined with + to strings, not inspected or formatted in the policy",
			c.Name, c.Host, c.Host)
	}
	return errorAt(pos, "%s.%s is only known on the target when %s runs; it can be used as a string argument of a resource (also in argv lists and env dicts) or joined with + to strings, not inspected or formatted in the policy",
		r.From, r.Field, r.From)
}

func (d *Deferred) misuse() {
	if d.b == nil || !d.b.running {
		return
	}
	if d.b.misuse == nil {
		d.b.misuse = d.misuseError()
	}
	d.b.thread.Cancel("deferred value misused")
}

// hostValue is the argument of a role's main function.
type hostValue struct {
	name  string
	vars  *starlark.Dict
	facts *starlarkstruct.Struct
}

func (h *hostValue) String() string        { return fmt.Sprintf("<host %s>", h.name) }
func (h *hostValue) Type() string          { return "host" }
func (h *hostValue) Freeze()               {}
func (h *hostValue) Truth() starlark.Bool  { return starlark.True }
func (h *hostValue) Hash() (uint32, error) { return starlark.String(h.name).Hash() }
func (h *hostValue) AttrNames() []string   { return []string{"facts", "name", "vars"} }

func (h *hostValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(h.name), nil
	case "vars":
		return h.vars, nil
	case "facts":
		return h.facts, nil
	}
	return nil, nil
}

func newHostValue(h Host, vars map[string]any) (*hostValue, error) {
	sv, err := toStarlark(vars)
	if err != nil {
		return nil, fmt.Errorf("host %s: vars: %v", h.Name, err)
	}
	env := starlark.NewDict(len(h.Facts.Env))
	for _, k := range sortedKeys(h.Facts.Env) {
		_ = env.SetKey(starlark.String(k), starlark.String(h.Facts.Env[k]))
	}
	f := h.Facts
	fs := starlarkstruct.FromStringDict(starlark.String("facts"), starlark.StringDict{
		"hostname":  starlark.String(f.Hostname),
		"os_family": starlark.String(f.OSFamily),
		"distro":    starlark.String(f.Distro),
		"version":   starlark.String(f.Version),
		"arch":      starlark.String(f.Arch),
		"user":      starlark.String(f.User),
		"uid":       starlark.MakeInt(f.UID),
		"home":      starlark.String(f.Home),
		"env":       env,
		"kernel":    starlark.String(f.Kernel),
		"cpus":      starlark.MakeInt(f.CPUs),

		"interfaces":     starlarkInterfaces(f.Interfaces),
		"default_ipv4":   starlarkStruct("default_ipv4", routeMap(f.DefaultIPv4)),
		"memtotal_mb":    starlark.MakeInt(f.MemTotalMB),
		"mounts":         starlarkMounts(f.Mounts),
		"init_system":    starlark.String(f.InitSystem),
		"pkg_mgr":        starlark.String(f.PkgMgr),
		"virtualization": starlark.String(f.Virtualization),
	})
	hv := &hostValue{name: h.Name, vars: sv.(*starlark.Dict), facts: fs}
	hv.vars.Freeze()
	hv.facts.Freeze()
	return hv, nil
}

// factsMap is the template view of facts; keys match the Starlark struct.
func factsMap(f facts.Facts) map[string]any {
	env := map[string]any{}
	for k, v := range f.Env {
		env[k] = v
	}
	return map[string]any{
		"hostname": f.Hostname, "os_family": f.OSFamily, "distro": f.Distro, "version": f.Version,
		"arch": f.Arch, "user": f.User, "uid": f.UID, "home": f.Home, "env": env,
		"kernel": f.Kernel, "cpus": f.CPUs,
		"interfaces": interfacesMap(f.Interfaces), "default_ipv4": routeMap(f.DefaultIPv4),
		"memtotal_mb": f.MemTotalMB, "mounts": mountsList(f.Mounts), "init_system": f.InitSystem,
		"pkg_mgr": f.PkgMgr, "virtualization": f.Virtualization,
	}
}

// The network, mount and route facts are maps in templates and structs in
// Starlark (host.facts.default_ipv4.address, host.facts.interfaces["eth0"].ipv4).

func routeMap(r facts.Route) map[string]any {
	return map[string]any{"interface": r.Interface, "address": r.Address, "gateway": r.Gateway}
}

func interfaceMap(i facts.Interface) map[string]any {
	return map[string]any{"mac": i.MAC, "up": i.Up, "ipv4": append([]string{}, i.IPv4...), "ipv6": append([]string{}, i.IPv6...)}
}

func interfacesMap(ifs map[string]facts.Interface) map[string]any {
	out := map[string]any{}
	for name, i := range ifs {
		out[name] = interfaceMap(i)
	}
	return out
}

func mountMap(m facts.Mount) map[string]any {
	return map[string]any{"mount": m.Mount, "device": m.Device, "fstype": m.FSType}
}

func mountsList(ms []facts.Mount) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = mountMap(m)
	}
	return out
}

// starlarkStruct makes a frozen struct of string, bool and []string fields.
func starlarkStruct(name string, m map[string]any) *starlarkstruct.Struct {
	d := starlark.StringDict{}
	for k, v := range m {
		sv, err := toStarlark(v)
		if err != nil {
			sv = starlark.None
		}
		d[k] = sv
	}
	return starlarkstruct.FromStringDict(starlark.String(name), d)
}

func starlarkInterfaces(ifs map[string]facts.Interface) *starlark.Dict {
	d := starlark.NewDict(len(ifs))
	for _, name := range sortedKeys(ifs) {
		_ = d.SetKey(starlark.String(name), starlarkStruct("interface", interfaceMap(ifs[name])))
	}
	return d
}

func starlarkMounts(ms []facts.Mount) *starlark.List {
	l := make([]starlark.Value, len(ms))
	for i, m := range ms {
		l[i] = starlarkStruct("mount", mountMap(m))
	}
	return starlark.NewList(l)
}

// toStarlark converts inventory-shaped Go values.
func toStarlark(v any) (starlark.Value, error) {
	switch v := v.(type) {
	case nil:
		return starlark.None, nil
	case string:
		return starlark.String(v), nil
	case bool:
		return starlark.Bool(v), nil
	case int:
		return starlark.MakeInt(v), nil
	case int64:
		return starlark.MakeInt64(v), nil
	case float64:
		return starlark.Float(v), nil
	case []string:
		l := make([]starlark.Value, len(v))
		for i, e := range v {
			l[i] = starlark.String(e)
		}
		return starlark.NewList(l), nil
	case []any:
		l := make([]starlark.Value, len(v))
		for i, e := range v {
			sv, err := toStarlark(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]%v", i, err)
			}
			l[i] = sv
		}
		return starlark.NewList(l), nil
	case map[string]string:
		d := starlark.NewDict(len(v))
		for _, k := range sortedKeys(v) {
			_ = d.SetKey(starlark.String(k), starlark.String(v[k]))
		}
		return d, nil
	case map[string]any:
		d := starlark.NewDict(len(v))
		for _, k := range sortedKeys(v) {
			sv, err := toStarlark(v[k])
			if err != nil {
				return nil, fmt.Errorf("%s: %v", k, err)
			}
			_ = d.SetKey(starlark.String(k), sv)
		}
		return d, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

// toGo converts a Starlark value for use as template data.
func toGo(v starlark.Value) (any, error) { return toGoWith(v, nil) }

// toGoWith is toGo where a deferred value becomes what mark returns (a
// template's placeholder, template_deferred.go); without mark it is an
// error saying where deferred values can go.
func toGoWith(v starlark.Value, mark func(*Deferred) any) (any, error) {
	toGo := func(v starlark.Value) (any, error) { return toGoWith(v, mark) }
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.String:
		return string(v), nil
	case starlark.Bool:
		return bool(v), nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok {
			return nil, fmt.Errorf("integer %s is too large", v)
		}
		return n, nil
	case starlark.Float:
		return float64(v), nil
	case *Deferred:
		if mark != nil {
			return mark(v), nil
		}
		return nil, v.misuseError()
	case starlark.Indexable: // list, tuple
		out := make([]any, v.Len())
		for i := range out {
			g, err := toGo(v.Index(i))
			if err != nil {
				return nil, err
			}
			out[i] = g
		}
		return out, nil
	case *starlark.Dict:
		out := make(map[string]any, v.Len())
		for _, kv := range v.Items() {
			k, ok := kv[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict key %s is a %s, want string", kv[0], kv[0].Type())
			}
			g, err := toGo(kv[1])
			if err != nil {
				return nil, err
			}
			out[string(k)] = g
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %s cannot be passed to a template", v.Type())
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// suggest returns ` (did you mean "x"?)` for the closest candidate, or "".
func suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	limit := 1
	if len(name) >= 5 {
		limit = 2
	}
	if best == "" || bestD > limit || strings.EqualFold(best, name) && bestD == 0 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance: like Levenshtein,
// plus adjacent transpositions count as one edit ("contnet").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
