package policy

import (
	"go.starlark.net/starlark"

	"github.com/herd-project/herd/internal/plan"
)

// builtinHook is what a resource builtin does on the controller beyond its
// kind's params: arguments that name controller files (source=, src=) and
// become params (a blob, a manifest) before the plan leaves. Each builtin
// that has one registers it from its own file (hook_*.go), so a kind with
// controller-side arguments touches one file here.
type builtinHook struct {
	args []string // keyword arguments the hook takes instead of the kind
	// argDocs document args for herd doc (TestBuiltinArgsAreDocumented).
	argDocs map[string]ArgDoc
	// hidden are kind params the builtin does not offer, refused with
	// "<key> <hiddenWhy>".
	hidden    []string
	hiddenWhy string
	// parse checks one of args as the call gives it, in argument order,
	// and returns the value finish finds in call.args.
	parse func(what, key string, v starlark.Value) (any, error)
	// finish turns the collected arguments into params of call.res; its
	// errors are *Error at the call site.
	finish func(call *hookCall) error
}

// builtinHooks maps a builtin's name (a kind, or "template") to its hook.
var builtinHooks = map[string]*builtinHook{}

func registerHook(builtin string, h *builtinHook) { builtinHooks[builtin] = h }

// hookCall is one call of a builtin with a hook.
type hookCall struct {
	p    *Policy
	b    *builder
	pos  string
	what string // `kind "name"` for messages
	res  *plan.Resource
	args map[string]any // the hook's arguments given (not None), parsed
}

func (h *builtinHook) takes(key string) bool { return h != nil && contains(h.args, key) }
func (h *builtinHook) hides(key string) bool { return h != nil && contains(h.hidden, key) }

func (h *builtinHook) argNames() []string {
	if h == nil {
		return nil
	}
	return h.args
}

// str returns the string argument key, "" when not given.
func (c *hookCall) str(key string) string {
	s, _ := c.args[key].(string)
	return s
}

// fail is an error at the call site; an *Error (a template's, with its own
// position) passes unchanged.
func (c *hookCall) fail(err error) error {
	if e, ok := err.(*Error); ok {
		return e
	}
	return errorAt(c.pos, "%v", err)
}

// stringHookArg parses a hook argument that is a plain string.
func stringHookArg(what, key string, v starlark.Value) (any, error) {
	return stringArg(what, key, v)
}
