package policy

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/resource"
)

// builderKey is the thread-local under which Plan keeps the host's builder;
// its absence is how builtins know they run outside a role's main.
const builderKey = "herd.builder"

func builderOf(thread *starlark.Thread) *builder {
	b, _ := thread.Local(builderKey).(*builder)
	return b
}

// declaration is one resource call, with its graph edges still unresolved
// because before=/notify= may name resources declared later.
type declaration struct {
	index         int // in plan.Resources
	pos           string
	label         string
	explicitAfter bool
	after         []target
	before        []target
	notify        []target
}

// target is one element of after=/before=/notify=.
type target struct {
	ref  *ResourceRef // set when a resource value was passed
	name string       // "kind:name" or label otherwise
}

// kindBuiltin makes the Starlark builtin for one registered kind.
func kindBuiltin(p *Policy, s *resource.Schema) *starlark.Builtin {
	return starlark.NewBuiltin(s.Kind, func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return declareResource(thread, p, s, s.Kind, args, kwargs)
	})
}

// templateBuiltin renders a template on the controller and declares a file
// resource whose content travels as a blob.
func templateBuiltin(p *Policy) *starlark.Builtin {
	return starlark.NewBuiltin("template", func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		s, ok := resource.Lookup("file")
		if !ok {
			return nil, errorAt(callerPos(thread), "template() needs the file resource kind, which this herd does not have")
		}
		return declareResource(thread, p, s, "template", args, kwargs)
	})
}

// declareResource implements every resource builtin. builtin is the name the
// user called (the kind, or "template").
func declareResource(thread *starlark.Thread, p *Policy, s *resource.Schema, builtin string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	pos := callerPos(thread)
	b := builderOf(thread)
	if b == nil {
		return nil, errorAt(pos, "%s() can only be called inside a role's main function", builtin)
	}
	if len(args) != 1 {
		return nil, errorAt(pos, "%s() takes the resource name as its only positional argument, got %d positional arguments", builtin, len(args))
	}
	nameV, ok := args[0].(starlark.String)
	if !ok || nameV == "" {
		if d, isD := args[0].(*Deferred); isD {
			return nil, d.misuseError()
		}
		return nil, errorAt(pos, "%s(): the name must be a non-empty string, got %s", builtin, args[0].Type())
	}
	name := string(nameV)
	what := fmt.Sprintf("%s %q", builtin, name)

	res := plan.Resource{Kind: s.Kind, Name: name, ID: plan.ResourceID(s.Kind, name), Pos: pos, Params: plan.Params{}}
	d := &declaration{pos: pos}

	// Controller-side arguments of this builtin (source=, src=, ...):
	// collected here, turned into params by its hook after the loop.
	hook := builtinHooks[builtin]
	call := &hookCall{p: p, b: b, pos: pos, what: what, res: &res, args: map[string]any{}}

	for _, kv := range kwargs {
		key := string(kv[0].(starlark.String))
		v := kv[1]
		if v == starlark.None && key != "when" {
			continue // None means "not given": handy for conditional arguments
		}
		var err error
		switch {
		case hook.takes(key):
			call.args[key], err = hook.parse(what, key, v)
		case hook.hides(key):
			err = fmt.Errorf("%s: %s %s", what, key, hook.hiddenWhy)
		case isMeta(key):
			err = d.setMeta(&res, what, key, v)
		default:
			ps, known := s.Param(key)
			if !known {
				names := append(append([]string{}, hook.argNames()...), metaParams...)
				for _, p := range s.Params {
					if !hook.hides(p.Name) {
						names = append(names, p.Name)
					}
				}
				hint := suggest(key, names)
				if hint == "" {
					// No near miss: list them all, as herd doc would.
					own := append(append([]string{}, names[len(hook.argNames())+len(metaParams):]...), hook.argNames()...)
					hint = fmt.Sprintf(" (valid: %s, and the meta arguments %s; see herd doc %s)",
						strings.Join(own, ", "), strings.Join(metaParams, ", "), builtin)
				}
				err = fmt.Errorf("unknown argument %q for %s%s", key, builtin, hint)
				break
			}
			err = setParam(&res, what, ps, v)
		}
		if err != nil {
			if e, isE := err.(*Error); isE {
				return nil, e
			}
			return nil, errorAt(pos, "%v", err)
		}
	}

	if hook != nil {
		if err := hook.finish(call); err != nil {
			return nil, err
		}
	}

	if p.revealsVault(&res, b.plan.Blobs) {
		res.Meta.NoLog = true
	}

	// Let the kind reject bad combinations now, at the call site, rather
	// than on the target. Bound values are unknown yet: validate with
	// placeholders, as the engine does before it runs anything.
	if _, err := resource.Check(res, b.plan.Blobs); err != nil {
		msg := err.Error()
		if ie, ok := errors.AsType[*resource.InvalidError](err); ok {
			msg = ie.Problem
		}
		return nil, errorAt(pos, "%s: %s", what, msg)
	}
	return b.add(res, d)
}

func stringArg(what, key string, v starlark.Value) (string, error) {
	switch v := v.(type) {
	case starlark.String:
		return string(v), nil
	case *Deferred:
		return "", v.misuseError()
	}
	return "", fmt.Errorf("%s: %s must be a string, got %s", what, key, v.Type())
}

func boolArg(what, key string, v starlark.Value) (bool, error) {
	switch v := v.(type) {
	case starlark.Bool:
		return bool(v), nil
	case *Deferred:
		return false, v.misuseError()
	}
	return false, fmt.Errorf("%s: %s must be a bool (True or False), got %s", what, key, v.Type())
}

func intArg(what, key string, v starlark.Value) (int64, error) {
	switch v := v.(type) {
	case starlark.Int:
		n, ok := v.Int64()
		if !ok {
			return 0, fmt.Errorf("%s: %s: %s is too large", what, key, v)
		}
		return n, nil
	case *Deferred:
		return 0, v.misuseError()
	}
	return 0, fmt.Errorf("%s: %s must be an int, got %s", what, key, v.Type())
}

// setParam converts one kind param by its schema type.
func setParam(res *plan.Resource, what string, ps resource.Param, v starlark.Value) error {
	key := ps.Name
	switch ps.Type {
	case resource.String:
		switch v := v.(type) {
		case starlark.String:
			if len(v) > maxInline {
				return inlineTooLarge(what, key, len(v))
			}
			res.Params[key] = string(v)
			return nil
		case *Deferred:
			if n := len(plan.Binding{Parts: v.parts}.Placeholder()); n > maxInline {
				return inlineTooLarge(what, key, n)
			}
			res.Bind = append(res.Bind, plan.Binding{Param: key, Parts: v.parts})
			return nil
		case *ResourceRef:
			hint := ""
			if len(v.outputs) > 0 {
				hint = fmt.Sprintf(" (did you mean its output .%s?)", v.outputs[0])
			}
			return fmt.Errorf("%s: %s must be a string, got the resource %s%s", what, key, v.id, hint)
		}
		return fmt.Errorf("%s: %s must be a string, got %s", what, key, v.Type())
	case resource.Bool:
		x, err := boolArg(what, key, v)
		res.Params[key] = x
		return err
	case resource.Int:
		x, err := intArg(what, key, v)
		res.Params[key] = x
		return err
	case resource.Mode:
		var raw any
		switch v := v.(type) {
		case starlark.Int:
			n, ok := v.Int64()
			if !ok {
				return fmt.Errorf("%s: %s %s is out of range (0 to 0o7777)", what, key, v)
			}
			raw = n
		case starlark.String:
			raw = string(v)
		case *Deferred:
			return v.misuseError()
		default:
			return fmt.Errorf("%s: %s must be an int such as 0o644 or an octal string such as \"0644\", got %s", what, key, v.Type())
		}
		m, err := resource.ParseMode(raw)
		if err != nil {
			return fmt.Errorf("%s: %s: %v", what, key, err)
		}
		res.Params[key] = m
		return nil
	case resource.StringList:
		l, binds, err := boundStringList(what, key, v)
		res.Params[key] = l
		res.Bind = append(res.Bind, binds...)
		return err
	case resource.IntList:
		list, ok := v.(*starlark.List)
		if !ok {
			return fmt.Errorf("%s: %s must be a list of ints, got %s", what, key, v.Type())
		}
		l := make([]int64, list.Len())
		for i := range l {
			n, err := intArg(what, fmt.Sprintf("%s[%d]", key, i), list.Index(i))
			if err != nil {
				return err
			}
			l[i] = n
		}
		res.Params[key] = l
		return nil
	case resource.StringMap:
		dict, ok := v.(*starlark.Dict)
		if !ok {
			return fmt.Errorf("%s: %s must be a dict of strings, got %s", what, key, v.Type())
		}
		m := make(map[string]string, dict.Len())
		for _, kv := range dict.Items() {
			k, kok := kv[0].(starlark.String)
			if dv, isD := kv[1].(*Deferred); isD && kok && k != "" {
				// Bound on the target; the key is known now.
				m[string(k)] = ""
				res.Bind = append(res.Bind, plan.Binding{Param: key, Key: string(k), Parts: dv.parts})
				continue
			}
			val, vok := kv[1].(starlark.String)
			if !kok || !vok {
				return fmt.Errorf("%s: %s must be a dict of strings, has %s: %s", what, key, kv[0].Type(), kv[1].Type())
			}
			m[string(k)] = string(val)
		}
		res.Params[key] = m
		return nil
	}
	return fmt.Errorf("%s: %s has unsupported type %v", what, key, ps.Type)
}

// stringList converts a list of strings known now (no deferred values).
func stringList(what, key string, v starlark.Value) ([]string, error) {
	if seq, ok := v.(starlark.Indexable); ok {
		for i := 0; i < seq.Len(); i++ {
			if d, isD := seq.Index(i).(*Deferred); isD {
				return nil, d.misuseError()
			}
		}
	}
	l, _, err := boundStringList(what, key, v)
	return l, err
}

// boundStringList converts a resource's list of strings; deferred elements
// become bindings of their index, filled on the target.
func boundStringList(what, key string, v starlark.Value) ([]string, []plan.Binding, error) {
	seq, ok := v.(starlark.Indexable)
	if _, isStr := v.(starlark.String); !ok || isStr {
		return nil, nil, fmt.Errorf("%s: %s must be a list of strings, got %s", what, key, v.Type())
	}
	out := make([]string, seq.Len())
	var binds []plan.Binding
	for i := range out {
		switch e := seq.Index(i).(type) {
		case starlark.String:
			out[i] = string(e)
		case *Deferred:
			idx := i
			binds = append(binds, plan.Binding{Param: key, Index: &idx, Parts: e.parts})
		default:
			return nil, nil, fmt.Errorf("%s: %s[%d] must be a string, got %s", what, key, i, e.Type())
		}
	}
	return out, binds, nil
}

// durationArg accepts seconds (int or float) or a Go duration string.
func durationArg(what, key string, v starlark.Value) (time.Duration, error) {
	var dur time.Duration
	switch v := v.(type) {
	case starlark.Int:
		n, ok := v.Int64()
		if !ok || n > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("%s: %s %s is too large", what, key, v)
		}
		dur = time.Duration(n) * time.Second
	case starlark.Float:
		if math.IsNaN(float64(v)) || float64(v) > float64(math.MaxInt64/int64(time.Second)) {
			return 0, fmt.Errorf("%s: %s %v is out of range", what, key, v)
		}
		dur = time.Duration(float64(v) * float64(time.Second))
	case starlark.String:
		var err error
		dur, err = time.ParseDuration(string(v))
		if err != nil {
			return 0, fmt.Errorf("%s: %s %q is not a duration such as \"500ms\", \"5s\" or \"2m\"", what, key, string(v))
		}
	case *Deferred:
		return 0, v.misuseError()
	default:
		return 0, fmt.Errorf("%s: %s must be seconds (int or float) or a duration string such as \"5s\", got %s", what, key, v.Type())
	}
	if dur < 0 {
		return 0, fmt.Errorf("%s: %s must not be negative", what, key)
	}
	return dur, nil
}

// targets accepts one target or a list of them.
func targets(what, key string, v starlark.Value) ([]target, error) {
	one := func(e starlark.Value) (target, error) {
		switch e := e.(type) {
		case *ResourceRef:
			return target{ref: e}, nil
		case starlark.String:
			if e == "" {
				return target{}, fmt.Errorf("%s: %s: empty resource name", what, key)
			}
			return target{name: string(e)}, nil
		case *Deferred:
			return target{}, fmt.Errorf("%s: %s takes resources, not a resource's output (%s)", what, key, e.describe())
		}
		return target{}, fmt.Errorf("%s: %s must list resources, \"kind:name\" ids or labels, got %s", what, key, e.Type())
	}
	switch v := v.(type) {
	case *starlark.List, starlark.Tuple:
		seq := v.(starlark.Indexable)
		out := make([]target, 0, seq.Len())
		for i := 0; i < seq.Len(); i++ {
			t, err := one(seq.Index(i))
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
		return out, nil
	}
	t, err := one(v)
	if err != nil {
		return nil, err
	}
	return []target{t}, nil
}

func (p *Policy) path(rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(p.Dir, rel)
}

// pathError drops the Go-ish "open " prefix but keeps the path and cause.
func pathError(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}
