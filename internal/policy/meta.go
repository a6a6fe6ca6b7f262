package policy

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/herd-project/herd/internal/plan"
)

// metaArg is one argument every resource builtin takes on top of its kind's
// params. Meta arguments shape the graph (after, before, notify, label) or
// how the engine runs the resource (plan.Meta: retry, retry_delay,
// timeout, when, no_log), never the resource itself. This table is their
// one definition: declare parses with it, errors list its names, and the
// README's list of them is checked against it (TestMetaArgsAreDocumented).
type metaArg struct {
	name, typ, def, doc string
	set                 func(d *declaration, res *plan.Resource, what, key string, v starlark.Value) error
}

var metaArgs = []metaArg{
	{"after", "resource, label or list", "the previous resource", "runs after these (an explicit after= leaves declaration order)",
		func(d *declaration, _ *plan.Resource, what, key string, v starlark.Value) (err error) {
			d.explicitAfter = true
			d.after, err = targets(what, key, v)
			return err
		}},
	{"before", "resource, label or list", "none", "runs before these",
		func(d *declaration, _ *plan.Resource, what, key string, v starlark.Value) (err error) {
			d.before, err = targets(what, key, v)
			return err
		}},
	{"notify", "resource, label or list", "none", "refreshes these (after this) when this changed",
		func(d *declaration, _ *plan.Resource, what, key string, v starlark.Value) (err error) {
			d.notify, err = targets(what, key, v)
			return err
		}},
	{"retry", "int 0..1000", "0", "tries again this many times after a failure (plan.Meta.Retry)",
		func(_ *declaration, res *plan.Resource, what, key string, v starlark.Value) error {
			n, err := intArg(what, key, v)
			if err == nil && (n < 0 || n > 1000) {
				err = fmt.Errorf("%s: retry %d is out of range (0 to 1000)", what, n)
			}
			res.Meta.Retry = int(n)
			return err
		}},
	{"retry_delay", "seconds or duration string", "none", "wait between retries (plan.Meta.RetryDelay)",
		func(_ *declaration, res *plan.Resource, what, key string, v starlark.Value) (err error) {
			res.Meta.RetryDelay, err = durationArg(what, key, v)
			return err
		}},
	{"timeout", "seconds or duration string", "none", "bounds each try (plan.Meta.Timeout)",
		func(_ *declaration, res *plan.Resource, what, key string, v starlark.Value) (err error) {
			res.Meta.Timeout, err = durationArg(what, key, v)
			return err
		}},
	{"when", "bool", "True", "False skips the resource; its dependents still run (plan.Meta.Skip)",
		func(_ *declaration, res *plan.Resource, what, key string, v starlark.Value) error {
			ok, err := boolArg(what, key, v)
			res.Meta.Skip = !ok
			return err
		}},
	{"no_log", "bool", "False", "keeps the resource's values out of output and events (plan.Meta.NoLog)",
		func(_ *declaration, res *plan.Resource, what, key string, v starlark.Value) (err error) {
			res.Meta.NoLog, err = boolArg(what, key, v)
			return err
		}},
	{"label", "string without ':'", "none", "another name for after=/before=/notify= to refer to",
		func(d *declaration, _ *plan.Resource, what, key string, v starlark.Value) (err error) {
			d.label, err = stringArg(what, key, v)
			if err == nil && (d.label == "" || strings.Contains(d.label, ":")) {
				err = fmt.Errorf("%s: label %q must be non-empty and contain no ':' (that is how resource ids are told apart)", what, d.label)
			}
			return err
		}},
}

// metaParams are the meta arguments' names, in the table's order.
var metaParams = func() []string {
	names := make([]string, len(metaArgs))
	for i, m := range metaArgs {
		names[i] = m.name
	}
	return names
}()

func lookupMeta(name string) (*metaArg, bool) {
	for i := range metaArgs {
		if metaArgs[i].name == name {
			return &metaArgs[i], true
		}
	}
	return nil, false
}

func isMeta(name string) bool {
	_, ok := lookupMeta(name)
	return ok
}

func (d *declaration) setMeta(res *plan.Resource, what, key string, v starlark.Value) error {
	m, ok := lookupMeta(key)
	if !ok {
		return fmt.Errorf("%s: %s is not a meta argument", what, key)
	}
	return m.set(d, res, what, key, v)
}
