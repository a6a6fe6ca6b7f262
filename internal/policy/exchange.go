package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"go.starlark.net/starlark"

	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/resource"
)

// ExchangeView is what planning may read of the exchange (package
// exchange, held by the controller): what other hosts exported in earlier
// runs and in the roles of this run that ran (or were planned) before.
type ExchangeView interface {
	// Values returns host → value of every host that exported name.
	Values(name string) (map[string]string, error)
	// Resources returns every exported resource, with its exporting host.
	Resources() ([]HostResource, error)
	// Facts returns a host's facts as its agent last reported them.
	Facts(host string) (facts.Facts, bool, error)
	// Pending lists the hosts of this run whose export name in role is
	// deferred and not known yet, as host (which collects) sees them:
	// wait, those that run in its serial batch or an earlier one, which
	// collect() waits for on the target; later, those of later batches,
	// which cannot have exported before host runs.
	Pending(role, name, host string) (wait, later []string)
}

// HostResource is an exported resource and the host that exported it.
type HostResource struct {
	Host string
	plan.SharedResource
}

// SetExchange lends planning an exchange view; without one, collect and
// its siblings fail with a line saying the run has no exchange.
func (p *Policy) SetExchange(v ExchangeView) { p.exchange = v }

func exchangeBuiltins(p *Policy) starlark.StringDict {
	return starlark.StringDict{
		"export":            starlark.NewBuiltin("export", p.exportBuiltin),
		"collect":           starlark.NewBuiltin("collect", p.collectBuiltin),
		"host_facts":        starlark.NewBuiltin("host_facts", p.hostFactsBuiltin),
		"export_resource":   starlark.NewBuiltin("export_resource", p.exportResourceBuiltin),
		"collect_resources": starlark.NewBuiltin("collect_resources", p.collectResourcesBuiltin),
	}
}

// inRole returns the builder of the role's main being run, or an error
// naming the builtin when called at the top level.
func inRole(thread *starlark.Thread, name string) (*builder, error) {
	b := builderOf(thread)
	if b == nil {
		return nil, errorAt(callerPos(thread), "%s() can only be called inside a role's main function", name)
	}
	return b, nil
}

func (p *Policy) view(thread *starlark.Thread, b *builder, name string) (ExchangeView, error) {
	if p.exchange == nil {
		return nil, errorAt(callerPos(thread), "%s(): this run has no exchange (local mode); run in push mode", name)
	}
	b.plan.Shared.Reads = true
	return p.exchange, nil
}

// export(name, value) publishes value for this host once the role ran.
func (p *Policy) exportBuiltin(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	pos := callerPos(thread)
	b, err := inRole(thread, "export")
	if err != nil {
		return nil, err
	}
	var name string
	var v starlark.Value
	if err := starlark.UnpackArgs("export", args, kwargs, "name", &name, "value", &v); err != nil {
		return nil, errorAt(pos, "%v", err)
	}
	if err := plan.ValidExportName(name); err != nil {
		return nil, errorAt(pos, "export(): %v", err)
	}
	var parts []plan.Part
	switch v := v.(type) {
	case starlark.String:
		parts = []plan.Part{{Lit: string(v)}}
	case *Deferred:
		parts = v.parts
	default:
		return nil, errorAt(pos, "export(%q): value must be a string or a deferred value (cmd.stdout), got %s", name, v.Type())
	}
	for _, e := range b.plan.Exports {
		if e.Name == name {
			return nil, errorAt(pos, "export(%q): this host already exports %q in this role", name, name)
		}
	}
	b.plan.Exports = append(b.plan.Exports, plan.Export{Name: name, Parts: parts, Pos: pos})
	return starlark.None, nil
}

// hostFilter reads hosts= (None, a list of names, or an inventory host set).
func hostFilter(v starlark.Value) (map[string]bool, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	if s, ok := v.(*HostSet); ok {
		out := map[string]bool{}
		for _, h := range s.hosts {
			out[h.Name] = true
		}
		return out, nil
	}
	l, err := stringList("collect", "hosts", v)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, h := range l {
		out[h] = true
	}
	return out, nil
}

// collect(name, hosts=None, collect_timeout=60) returns {host: value} of
// the hosts that exported name, in earlier runs or earlier roles of this
// run, plus the hosts of this role whose export is deferred (cmd.stdout):
// their values are deferred too, and a resource using one waits for it on
// the target, at most collect_timeout, then runs with the earlier value
// (or nothing) and says which hosts were missing.
func (p *Policy) collectBuiltin(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	pos := callerPos(thread)
	b, err := inRole(thread, "collect")
	if err != nil {
		return nil, err
	}
	var name string
	var hosts starlark.Value = starlark.None
	var timeoutArg starlark.Value = starlark.None
	if err := starlark.UnpackArgs("collect", args, kwargs, "name", &name, "hosts?", &hosts, "collect_timeout?", &timeoutArg); err != nil {
		return nil, errorAt(pos, "%v", err)
	}
	filter, err := hostFilter(hosts)
	if err != nil {
		return nil, errorAt(pos, "%v", err)
	}
	timeout := plan.DefaultCollectTimeout
	if timeoutArg != starlark.None {
		if timeout, err = durationArg("collect", "collect_timeout", timeoutArg); err != nil {
			return nil, errorAt(pos, "%v", err)
		}
		if timeout <= 0 || timeout > 24*time.Hour {
			return nil, errorAt(pos, "collect(%q): collect_timeout must be between 1s and 24h", name)
		}
	}
	v, err := p.view(thread, b, "collect")
	if err != nil {
		return nil, err
	}
	vals, err := v.Values(name)
	if err != nil {
		return nil, errorAt(pos, "collect(%q): %v", name, err)
	}
	wait, later := v.Pending(b.role.Name, name, b.plan.Host)
	pending := map[string]bool{}
	for _, h := range wait {
		pending[h] = true
	}
	for _, h := range later {
		if _, had := vals[h]; !had {
			pending[h] = true // said missing at once on the target
		}
	}
	d := starlark.NewDict(len(vals) + len(pending))
	for _, h := range sortedKeys(unionKeys(vals, pending)) {
		if filter != nil && !filter[h] {
			continue
		}
		if !pending[h] {
			_ = d.SetKey(starlark.String(h), starlark.String(vals[h]))
			continue
		}
		old, had := vals[h]
		c := &plan.Collected{Host: h, Name: name, Role: b.role.Name, Fallback: old, HasFallback: had, Timeout: timeout,
			Later: slices.Contains(later, h)}
		_ = d.SetKey(starlark.String(h), &Deferred{parts: []plan.Part{{Xch: c}}, b: b})
	}
	return d, nil
}

func unionKeys(a map[string]string, b map[string]bool) map[string]bool {
	out := maps.Clone(b)
	for k := range a {
		out[k] = true
	}
	return out
}

// host_facts(name) returns another host's facts (like host.facts), or
// None when no agent of that host ever reported them.
func (p *Policy) hostFactsBuiltin(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	pos := callerPos(thread)
	b, err := inRole(thread, "host_facts")
	if err != nil {
		return nil, err
	}
	var name string
	if err := starlark.UnpackArgs("host_facts", args, kwargs, "name", &name); err != nil {
		return nil, errorAt(pos, "%v", err)
	}
	v, err := p.view(thread, b, "host_facts")
	if err != nil {
		return nil, err
	}
	f, ok, err := v.Facts(name)
	if err != nil {
		return nil, errorAt(pos, "host_facts(%q): %v", name, err)
	}
	if !ok {
		return starlark.None, nil
	}
	hv, err := newHostValue(Host{Name: name, Facts: f}, nil)
	if err != nil {
		return nil, errorAt(pos, "host_facts(%q): %v", name, err)
	}
	return hv.facts, nil
}

// export_resource(kind, name, tag="", **params) declares a resource for
// other hosts to realize with collect_resources; this host does not run it
// unless it collects it too. Params must be plain data known now.
func (p *Policy) exportResourceBuiltin(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	pos := callerPos(thread)
	b, err := inRole(thread, "export_resource")
	if err != nil {
		return nil, err
	}
	if len(args) != 2 {
		return nil, errorAt(pos, "export_resource(kind, name, tag=\"\", **params): want 2 positional arguments, got %d", len(args))
	}
	kind, ok1 := starlark.AsString(args[0])
	name, ok2 := starlark.AsString(args[1])
	if !ok1 || !ok2 || name == "" {
		return nil, errorAt(pos, "export_resource(): kind and name must be non-empty strings")
	}
	if _, ok := resource.Lookup(kind); !ok && kind != "template" {
		return nil, errorAt(pos, "export_resource(): unknown resource kind %q%s", kind, suggest(kind, resource.Kinds()))
	}
	sr := plan.SharedResource{Kind: kind, Name: name, Params: map[string]any{}}
	for _, kv := range kwargs {
		k := string(kv[0].(starlark.String))
		if k == "tag" {
			t, ok := starlark.AsString(kv[1])
			if !ok {
				return nil, errorAt(pos, "export_resource(): tag must be a string")
			}
			sr.Tag = t
			continue
		}
		if isMeta(k) && k != "no_log" && k != "timeout" && k != "retry" {
			return nil, errorAt(pos, "export_resource(): %s= cannot be exported (it names resources of this host)", k)
		}
		g, err := toGo(kv[1])
		if err != nil {
			return nil, errorAt(pos, "export_resource(%s %q): %s=: %v (exported params must be known when planning)", kind, name, k, err)
		}
		sr.Params[k] = g
	}
	id := plan.ResourceID(kind, name)
	for _, r := range b.plan.Shared.Resources {
		if plan.ResourceID(r.Kind, r.Name) == id {
			return nil, errorAt(pos, "export_resource(): %s is already exported by this host", id)
		}
	}
	b.plan.Shared.Resources = append(b.plan.Shared.Resources, sr)
	return starlark.None, nil
}

// collect_resources(kind=None, tag=None, hosts=None) declares, in this
// host's graph, every matching resource other hosts (or this one)
// exported, and returns them as a list.
func (p *Policy) collectResourcesBuiltin(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	pos := callerPos(thread)
	b, err := inRole(thread, "collect_resources")
	if err != nil {
		return nil, err
	}
	var kind, tag string
	var hosts starlark.Value = starlark.None
	if err := starlark.UnpackArgs("collect_resources", args, kwargs, "kind?", &kind, "tag?", &tag, "hosts?", &hosts); err != nil {
		return nil, errorAt(pos, "%v", err)
	}
	filter, err := hostFilter(hosts)
	if err != nil {
		return nil, errorAt(pos, "%v", err)
	}
	v, err := p.view(thread, b, "collect_resources")
	if err != nil {
		return nil, err
	}
	all, err := v.Resources()
	if err != nil {
		return nil, errorAt(pos, "collect_resources(): %v", err)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Host != all[j].Host {
			return all[i].Host < all[j].Host
		}
		return plan.ResourceID(all[i].Kind, all[i].Name) < plan.ResourceID(all[j].Kind, all[j].Name)
	})
	var out []starlark.Value
	for _, r := range all {
		if (kind != "" && r.Kind != kind) || (tag != "" && r.Tag != tag) || (filter != nil && !filter[r.Host]) {
			continue
		}
		ref, err := p.realize(thread, r)
		if err != nil {
			return nil, errorAt(pos, "collect_resources(): %s exported by %s: %v", plan.ResourceID(r.Kind, r.Name), r.Host, err)
		}
		out = append(out, ref)
	}
	return starlark.NewList(out), nil
}

// realize declares r through its kind's own builtin, so an exported
// resource is validated exactly like one written in the policy.
func (p *Policy) realize(thread *starlark.Thread, r HostResource) (starlark.Value, error) {
	builtin, ok := p.predeclared[r.Kind].(*starlark.Builtin)
	if !ok {
		return nil, fmt.Errorf("unknown resource kind %q", r.Kind)
	}
	var kwargs []starlark.Tuple
	for _, k := range sortedKeys(r.Params) {
		sv, err := jsonToStarlark(r.Params[k])
		if err != nil {
			return nil, fmt.Errorf("%s=: %v", k, err)
		}
		kwargs = append(kwargs, starlark.Tuple{starlark.String(k), sv})
	}
	v, err := starlark.Call(thread, builtin, starlark.Tuple{starlark.String(r.Name)}, kwargs)
	if err != nil {
		if e, ok := err.(*starlark.EvalError); ok {
			return nil, e.Unwrap()
		}
		return nil, err
	}
	return v, nil
}

// jsonToStarlark converts params that went through JSON (the store):
// whole numbers become ints again, so mode=0o644 survives.
func jsonToStarlark(v any) (starlark.Value, error) {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return starlark.MakeInt64(n), nil
		}
		f, err := v.Float64()
		return starlark.Float(f), err
	case float64:
		if v == float64(int64(v)) {
			return starlark.MakeInt64(int64(v)), nil
		}
		return starlark.Float(v), nil
	case int64:
		return starlark.MakeInt64(v), nil
	case []any:
		l := make([]starlark.Value, len(v))
		for i, e := range v {
			sv, err := jsonToStarlark(e)
			if err != nil {
				return nil, err
			}
			l[i] = sv
		}
		return starlark.NewList(l), nil
	case map[string]any:
		d := starlark.NewDict(len(v))
		for _, k := range sortedKeys(v) {
			sv, err := jsonToStarlark(v[k])
			if err != nil {
				return nil, err
			}
			_ = d.SetKey(starlark.String(k), sv)
		}
		return d, nil
	}
	return toStarlark(v)
}

// DecodeParams decodes exported params from the store keeping integers.
func DecodeParams(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	err := d.Decode(&m)
	return m, err
}
