package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/ardanlabs/jinja"
)

// Jinja2 templates (src ending in .j2, or engine="jinja2") are rendered
// with github.com/ardanlabs/jinja, so existing Ansible templates work for
// the common subset. Its limits, documented in doc.go: an undefined
// variable renders as an empty string (Ansible's default is an error), and
// include/import/extends are parse errors at template:line.

// jinjaFilters are Ansible filters the library lacks, passed as callables
// (the library looks filters up in the data when it has no builtin).
var jinjaFilters = map[string]func(args []jinja.Value, kw map[string]jinja.Value) (jinja.Value, error){
	"regex_replace": func(args []jinja.Value, kw map[string]jinja.Value) (jinja.Value, error) {
		if len(args) < 2 || len(args) > 3 {
			return jinja.Undefined(), fmt.Errorf("regex_replace takes a pattern and a replacement")
		}
		re, err := regexp.Compile(args[1].AsString())
		if err != nil {
			return jinja.Undefined(), fmt.Errorf("regex_replace: %v", err)
		}
		repl := ""
		if len(args) == 3 {
			// Python's \1 becomes Go's ${1}.
			repl = regexp.MustCompile(`\\(\d+)`).ReplaceAllString(args[2].AsString(), `$${$1}`)
		}
		return jinja.NewString(re.ReplaceAllString(jinjaString(args[0]), repl)), nil
	},
	"to_json": func(args []jinja.Value, kw map[string]jinja.Value) (jinja.Value, error) {
		b, err := json.Marshal(jinjaToGo(args[0]))
		return jinja.NewString(string(b)), err
	},
	"to_nice_json": func(args []jinja.Value, kw map[string]jinja.Value) (jinja.Value, error) {
		b, err := json.MarshalIndent(jinjaToGo(args[0]), "", "    ")
		return jinja.NewString(string(b)), err
	},
	"quote": func(args []jinja.Value, kw map[string]jinja.Value) (jinja.Value, error) {
		return jinja.NewString("'" + strings.ReplaceAll(jinjaString(args[0]), "'", `'"'"'`) + "'"), nil
	},
}

func jinjaString(v jinja.Value) string {
	if v.IsString() {
		return v.AsString()
	}
	return v.String()
}

func jinjaToGo(v jinja.Value) any {
	switch {
	case v.IsNone(), v.IsUndefined():
		return nil
	case v.IsBool():
		return v.AsBool()
	case v.IsInt():
		return v.AsInt()
	case v.IsFloat():
		return v.AsFloat()
	case v.IsString():
		return v.AsString()
	case v.IsList():
		l := v.AsList()
		out := make([]any, l.Len())
		for i := range out {
			out[i] = jinjaToGo(l.Get(i))
		}
		return out
	case v.IsDict():
		d := v.AsDict()
		out := map[string]any{}
		for _, k := range d.OrderedKeys() {
			e, _ := d.Get(k)
			out[k] = jinjaToGo(e)
		}
		return out
	}
	return v.String()
}

// isJinja says which engine renders src.
func isJinja(src, engine string) bool {
	return engine == "jinja2" || engine == "" && strings.HasSuffix(src, ".j2")
}

var (
	jinjaLineRE   = regexp.MustCompile(`^jinja (?:parse|scan): line (\d+): (.*)$`)
	jinjaFilterRE = regexp.MustCompile(`\|\s*([A-Za-z_][A-Za-z0-9_]*)`)
	jinjaTagRE    = regexp.MustCompile(`(?s)\{\{.*?\}\}|\{%.*?%\}`)
	jinjaUnknown  = regexp.MustCompile(`unknown filter "([^"]+)"`)
	jinjaKindRE   = regexp.MustCompile(` \(kind=\d+\)`)
)

// renderJinja renders text with data; errors name src:line.
func renderJinja(src, text string, data map[string]any) ([]byte, error) {
	t, err := jinja.Compile(text)
	if err != nil {
		msg := strings.ReplaceAll(jinjaKindRE.ReplaceAllString(oneLine(err.Error()), ""), `unexpected token ""`, "unexpected end of expression")
		if m := jinjaLineRE.FindStringSubmatch(msg); m != nil {
			return nil, fmt.Errorf("template %s:%s: %s", src, m[1], m[2])
		}
		return nil, fmt.Errorf("template %s: %s", src, msg)
	}
	vals := make(map[string]jinja.Value, len(data)+len(jinjaFilters))
	for k, v := range data {
		vals[k] = jinja.FromGoValue(v)
	}
	for k, f := range jinjaFilters {
		if _, taken := vals[k]; !taken {
			vals[k] = jinja.NewCallable(k, f)
		}
	}
	out, err := t.RenderValues(vals)
	if err != nil {
		return nil, fmt.Errorf("template %s%s: %s", src, jinjaErrLine(text, err), oneLine(err.Error()))
	}
	if len(out) > maxInline {
		return nil, fmt.Errorf("template %s: output exceeds %d MiB; inline values are limited to that (put large content in a file and use source=)", src, maxInline>>20)
	}
	return []byte(out), nil
}

// jinjaErrLine finds the line of a render error the library reports
// without one: for an unknown filter, the first tag that uses it.
func jinjaErrLine(text string, err error) string {
	m := jinjaUnknown.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	for _, loc := range jinjaTagRE.FindAllStringIndex(text, -1) {
		for _, f := range jinjaFilterRE.FindAllStringSubmatch(text[loc[0]:loc[1]], -1) {
			if f[1] == m[1] {
				return fmt.Sprintf(":%d", strings.Count(text[:loc[0]], "\n")+1)
			}
		}
	}
	return ""
}
