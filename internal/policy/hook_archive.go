package policy

import "strings"

// archive(dest, source=) takes a controller file like file(source=);
// archive(dest, url=, sha256=) and download(dest, url=, sha256=) have the
// controller fetch and verify the URL (download.go). Either way the kind
// receives sha256= (and size= when the content is fetched by hash).
func init() {
	registerHook("archive", &builtinHook{
		args: []string{"source", "url", "sha256"},
		argDocs: map[string]ArgDoc{"source": {Type: "string", Default: "none",
			Doc: "a controller file (the archive), relative to the policy directory, served like file(source=); exclusive with url="}},
		parse: stringHookArg,
		finish: func(c *hookCall) error {
			source, rawURL, sum := c.str("source"), c.str("url"), c.str("sha256")
			switch {
			case c.res.Params.Has("size"):
				return errorAt(c.pos, "%s: size is computed from source= or url=; do not give it", c.what)
			case source != "" && rawURL != "":
				return errorAt(c.pos, "%s: source= and url= are exclusive; give one", c.what)
			case source == "" && rawURL == "":
				return errorAt(c.pos, "%s: give source= (a controller file) or url= with sha256=", c.what)
			case source != "":
				h, err := c.p.sourceFile(c.b, source)
				if err != nil {
					return errorAt(c.pos, "%s: source: %v", c.what, pathError(err))
				}
				if sum != "" && strings.ToLower(sum) != h {
					return errorAt(c.pos, "%s: source %s has sha256 %s, not %s as sha256= says", c.what, source, h, sum)
				}
				c.res.Params["sha256"] = h
				if ref, remote := c.b.plan.Files[h]; remote {
					c.res.Params["size"] = ref.Size
				}
				return nil
			}
			return urlHook(c, rawURL, sum)
		},
	})
	registerHook("download", &builtinHook{
		args:  []string{"url", "sha256"},
		parse: stringHookArg,
		finish: func(c *hookCall) error {
			if c.res.Params.Has("size") {
				return errorAt(c.pos, "%s: size is computed from the download; do not give it", c.what)
			}
			if c.str("url") == "" {
				return errorAt(c.pos, "%s: missing required argument url", c.what)
			}
			return urlHook(c, c.str("url"), c.str("sha256"))
		},
	})
}

// urlHook fetches (or finds in the cache) the content of rawURL and puts
// url, sha256 and, for content fetched by hash, size into the params.
func urlHook(c *hookCall, rawURL, sum string) error {
	sum, err := checkDownloadArgs(rawURL, sum)
	if err != nil {
		return errorAt(c.pos, "%s: %v", c.what, err)
	}
	size, remote, err := c.p.urlContent(c.b, rawURL, sum)
	if err != nil {
		return errorAt(c.pos, "%s: %v", c.what, err)
	}
	c.res.Params["url"] = rawURL
	c.res.Params["sha256"] = sum
	if remote {
		c.res.Params["size"] = size
	}
	return nil
}
