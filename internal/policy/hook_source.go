package policy

// file(..., source=) and copy(..., source=) name controller files: a file
// travels inline or by hash, a tree as a manifest of hashes, and either
// becomes servable to this plan's agent only.
func init() {
	registerHook("file", &builtinHook{
		args: []string{"source"},
		argDocs: map[string]ArgDoc{"source": {Type: "string", Default: "none",
			Doc: "a controller file, relative to the policy directory, sent as the content (exclusive with content)"}},
		parse: stringHookArg,
		finish: func(c *hookCall) error {
			source := c.str("source")
			if source == "" {
				return nil
			}
			h, err := c.p.sourceFile(c.b, source)
			if err != nil {
				return errorAt(c.pos, "%s: source: %v", c.what, pathError(err))
			}
			c.res.Params["blob"] = h
			if ref, remote := c.b.plan.Files[h]; remote {
				c.res.Params["size"] = ref.Size
			}
			return nil
		},
	})
	registerHook("copy", &builtinHook{
		args: []string{"source"},
		argDocs: map[string]ArgDoc{"source": {Type: "string", Required: true,
			Doc: "the controller directory to copy, relative to the policy directory"}},
		parse: stringHookArg,
		finish: func(c *hookCall) error {
			source := c.str("source")
			if source == "" {
				return errorAt(c.pos, "%s: missing required argument source (a directory, relative to the policy directory)", c.what)
			}
			if c.res.Params.Has("files") {
				return errorAt(c.pos, "%s: files is computed from source; do not give it", c.what)
			}
			m, err := c.p.copyManifest(c.b, source)
			if err != nil {
				return errorAt(c.pos, "%s: %v", c.what, pathError(err))
			}
			c.res.Params["files"] = m
			return nil
		},
	})
}
