package policy

import (
	"regexp"
	"sort"

	"github.com/herd-project/herd/internal/resource"
)

// The reference herd doc prints, generated from the tables the policy
// evaluates with (resource schemas, builtin hooks, metaArgs, the facts
// struct), so it cannot drift from what a policy accepts.

// ArgDoc documents one keyword argument of a builtin.
type ArgDoc struct {
	Name     string
	Type     string
	Required bool
	Default  string // as the doc states it; "" when it states none
	Doc      string
}

// BuiltinDoc documents one resource builtin: a kind, or template.
type BuiltinDoc struct {
	Name    string
	Kind    string // the resource kind it declares
	Doc     string
	Args    []ArgDoc // the kind's params this builtin offers, then its controller-side arguments
	Outputs []string // fields other resources may bind to (send/recv)
}

// ResourceBuiltins names every resource builtin a policy can call, sorted.
func ResourceBuiltins() []string {
	names := append(resource.Kinds(), "template")
	sort.Strings(names)
	return names
}

// DescribeBuiltin documents the resource builtin name.
func DescribeBuiltin(name string) (BuiltinDoc, bool) {
	kind := name
	if name == "template" {
		kind = "file"
	}
	s, ok := resource.Lookup(kind)
	if !ok {
		return BuiltinDoc{}, false
	}
	d := BuiltinDoc{Name: name, Kind: kind, Doc: s.Doc, Outputs: s.Outputs}
	if name == "template" {
		d.Doc = "A file whose content is a controller template rendered for each host (Go text/template, or Jinja2 for .j2), declared as a file resource."
	}
	hook := builtinHooks[name]
	for _, p := range s.Params {
		if hook.hides(p.Name) {
			continue
		}
		d.Args = append(d.Args, ArgDoc{Name: p.Name, Type: p.Type.String(), Required: p.Required, Default: statedDefault(p.Doc), Doc: p.Doc})
	}
	for _, a := range hook.argNames() {
		if _, kindParam := s.Param(a); kindParam {
			continue // the hook reads it first, the kind's schema documents it
		}
		ad := hook.argDocs[a]
		ad.Name = a
		d.Args = append(d.Args, ad)
	}
	return d, true
}

// MetaArgDocs documents the meta arguments every resource builtin takes,
// from metaArgs, the table declare parses them with.
func MetaArgDocs() []ArgDoc {
	out := make([]ArgDoc, len(metaArgs))
	for i, m := range metaArgs {
		out[i] = ArgDoc{Name: m.name, Type: m.typ, Default: m.def, Doc: m.doc}
	}
	return out
}

// defaultRE finds a default a param's doc states: "(default: keep)",
// "(default 0644 when created)", "; default False".
var defaultRE = regexp.MustCompile(`\bdefault:?\s+([^;)]+?)\s*(?:[;)]|$|\.\s)`)

func statedDefault(doc string) string {
	m := defaultRE.FindStringSubmatch(doc)
	if m == nil {
		return ""
	}
	return m[1]
}
