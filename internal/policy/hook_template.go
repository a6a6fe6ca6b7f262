package policy

import (
	"fmt"

	"go.starlark.net/starlark"

	"github.com/herd-project/herd/internal/plan"
)

// template("path", src=, vars=, engine=) renders a controller template and declares
// a file resource whose content travels as a blob.
func init() {
	registerHook("template", &builtinHook{
		args: []string{"src", "vars", "engine"},
		argDocs: map[string]ArgDoc{
			"src":    {Type: "string", Required: true, Doc: "the template file, relative to the policy directory"},
			"vars":   {Type: "dict", Default: "{}", Doc: "extra values for the template, beside host, vars and facts; collect()'s values may be inserted (the target fills them in)"},
			"engine": {Type: "string", Default: `"jinja2" for a .j2 src, else "go"`, Doc: `"go" (text/template) or "jinja2" (Ansible templates)`},
		},
		hidden:    []string{"content", "blob"},
		hiddenWhy: "cannot be combined with src",
		parse: func(what, key string, v starlark.Value) (any, error) {
			switch key {
			case "src":
				return stringArg(what, key, v)
			case "engine":
				engine, err := stringArg(what, key, v)
				if err == nil && engine != "go" && engine != "jinja2" {
					err = fmt.Errorf("%s: engine must be \"go\" or \"jinja2\", got %q", what, engine)
				}
				return engine, err
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
			marks := &deferredMarks{}
			out, err := c.p.render(src, c.str("engine"), vars, c.b, marks)
			if err != nil {
				return c.fail(err)
			}
			parts, err := marks.parts(src, out)
			if err != nil {
				return c.fail(err)
			}
			if parts == nil {
				c.res.Params["blob"] = c.b.plan.AddBlob(out)
				return nil
			}
			// Filled on the target once the deferred values exist.
			if n := len(plan.Binding{Parts: parts}.Placeholder()); n > maxInline {
				return c.fail(inlineTooLarge(c.what, "content", n))
			}
			c.res.Bind = append(c.res.Bind, plan.Binding{Param: "content", Parts: parts})
			return nil
		},
	})
}
