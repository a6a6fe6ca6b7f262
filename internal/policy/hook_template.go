package policy

import (
	"fmt"

	"go.starlark.net/starlark"
)

// template("path", src=, vars=) renders a controller template and declares
// a file resource whose content travels as a blob.
func init() {
	registerHook("template", &builtinHook{
		args:      []string{"src", "vars"},
		hidden:    []string{"content", "blob"},
		hiddenWhy: "cannot be combined with src",
		parse: func(what, key string, v starlark.Value) (any, error) {
			if key == "src" {
				return stringArg(what, key, v)
			}
			d, ok := v.(*starlark.Dict)
			if !ok {
				return nil, fmt.Errorf("%s: vars must be a dict, got %s", what, v.Type())
			}
			return d, nil
		},
		finish: func(c *hookCall) error {
			src := c.str("src")
			if src == "" {
				return errorAt(c.pos, "%s: missing required argument src (the template file, relative to the policy directory)", c.what)
			}
			if _, err := c.p.servable(c.b, src); err != nil {
				return errorAt(c.pos, "%s: src: %v", c.what, err)
			}
			vars, _ := c.args["vars"].(*starlark.Dict)
			out, err := c.p.render(src, vars, c.b)
			if err != nil {
				return c.fail(err)
			}
			c.res.Params["blob"] = c.b.plan.AddBlob(out)
			return nil
		},
	})
}
