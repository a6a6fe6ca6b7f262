package policy

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"go.starlark.net/starlark"
)

// parsedTemplate caches a template (or its parse error) for the life of the
// Policy: every host renders the same file, only the data differs.
type parsedTemplate struct {
	t   *template.Template
	err error
}

// templateFuncs are the helpers available in templates; see doc.go.
var templateFuncs = template.FuncMap{
	"default": func(def, v any) any {
		if isEmpty(v) {
			return def
		}
		return v
	},
	"join": func(sep string, list any) (string, error) {
		rv := reflect.ValueOf(list)
		if list == nil {
			return "", nil
		}
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			return "", fmt.Errorf("join: want a list, got %T", list)
		}
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(rv.Index(i).Interface())
		}
		return strings.Join(parts, sep), nil
	},
	"upper": func(v any) string { return strings.ToUpper(fmt.Sprint(v)) },
	"lower": func(v any) string { return strings.ToLower(fmt.Sprint(v)) },
	"quote": func(v any) string { return strconv.Quote(fmt.Sprint(v)) },
	"indent": func(n int, v any) string {
		pad := strings.Repeat(" ", n)
		lines := strings.Split(fmt.Sprint(v), "\n")
		for i, l := range lines {
			if l != "" {
				lines[i] = pad + l
			}
		}
		return strings.Join(lines, "\n")
	},
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Array:
		return rv.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

func (p *Policy) parseTemplate(src string) (*template.Template, error) {
	p.tmplMu.Lock()
	defer p.tmplMu.Unlock()
	if pt, ok := p.templates[src]; ok {
		return pt.t, pt.err
	}
	pt := &parsedTemplate{}
	p.inputs.add(p.path(src))
	text, err := os.ReadFile(p.path(src))
	if err != nil {
		pt.err = fmt.Errorf("template %s", pathError(err))
	} else {
		pt.t, err = template.New(src).Option("missingkey=error").Funcs(templateFuncs).Parse(string(text))
		if err != nil {
			pt.err = fmt.Errorf("%s", templateError(err))
		}
	}
	p.templates[src] = pt
	return pt.t, pt.err
}

// render executes src with the documented data: vars, facts and host.
// Deferred values in extra are rendered as markers (template_deferred.go).
func (p *Policy) render(src, engine string, extra *starlark.Dict, b *builder, marks *deferredMarks) ([]byte, error) {
	var t *template.Template
	var err error
	jinja := isJinja(src, engine)
	if !jinja {
		if t, err = p.parseTemplate(src); err != nil {
			return nil, err
		}
	}
	data, err := templateData(src, extra, b, func(d *Deferred) any { return marks.mark(d, jinja) })
	if err != nil {
		return nil, err
	}
	if t == nil {
		p.inputs.add(p.path(src))
		text, err := os.ReadFile(p.path(src))
		if err != nil {
			return nil, fmt.Errorf("template %s", pathError(err))
		}
		out, err := renderJinja(src, string(text), jinjaData(data, b))
		if err != nil || len(marks.values) == 0 {
			return out, err
		}
		return out, checkJinjaPlacesOnly(src, string(text), extra, b, marks, out)
	}
	var out cappedBuffer
	if err := t.Execute(&out, data); err != nil {
		if errors.Is(err, errTemplateTooLarge) {
			return nil, fmt.Errorf("template %s: output exceeds %d MiB; inline values are limited to that (put large content in a file and use source=)", src, maxInline>>20)
		}
		msg := templateError(err)
		if len(marks.values) > 0 && (strings.Contains(msg, "deferredText") || strings.Contains(msg, "incompatible types")) {
			msg = strings.ReplaceAll(msg, "policy.deferredText", "deferred value") +
				" (a deferred value such as collect()'s is only known on the target: a template can insert it, not inspect it)"
		}
		return nil, fmt.Errorf("%s", msg)
	}
	return out.Bytes(), nil
}

// templateData is the documented data of a template: vars (the host's,
// then extra's, with each deferred value given by mark), facts and host.
func templateData(src string, extra *starlark.Dict, b *builder, mark func(*Deferred) any) (map[string]any, error) {
	vars := make(map[string]any, len(b.vars))
	maps.Copy(vars, b.vars)
	if extra != nil {
		g, err := toGoWith(extra, mark)
		if err != nil {
			if e, ok := err.(*Error); ok {
				return nil, e
			}
			return nil, fmt.Errorf("template %s: vars: %v", src, err)
		}
		maps.Copy(vars, g.(map[string]any))
	}
	return map[string]any{
		"vars":  vars,
		"facts": factsMap(b.facts),
		"host":  map[string]any{"name": b.plan.Host},
	}, nil
}

// jinjaData gives a Jinja template Ansible's names: vars at the top
// level, inventory_hostname, ansible_facts.
func jinjaData(data map[string]any, b *builder) map[string]any {
	jdata := maps.Clone(data["vars"].(map[string]any))
	maps.Copy(jdata, data)
	jdata["inventory_hostname"] = b.plan.Host
	jdata["ansible_facts"] = data["facts"]
	return jdata
}

// checkJinjaPlacesOnly renders a Jinja template once more with other
// markers for its deferred values (longer, and sorting after any text) and
// fails when the output, markers aside, differs from out: the template
// looked into a value only the target knows (its length, an ordering, a
// filter), which Jinja's plain strings cannot refuse as they go. A filter
// that changed a marker is left to parts, whose message names the value.
func checkJinjaPlacesOnly(src, text string, extra *starlark.Dict, b *builder, marks *deferredMarks, out []byte) error {
	if _, err := marks.parts(src, out); err != nil {
		return nil
	}
	alt := &deferredMarks{}
	data, err := templateData(src, extra, b, func(d *Deferred) any { return alt.markAlt(d) })
	if err != nil {
		return err
	}
	out2, err := renderJinja(src, text, jinjaData(data, b))
	if err == nil && len(alt.values) == len(marks.values) && bytes.Equal(alt.unmarkAlt(out2), out) {
		return nil
	}
	n := -1
	if len(marks.values) == 1 {
		n = 0
	}
	return marks.changedErr(src, n)
}

var (
	missingKeyRE = regexp.MustCompile(`^template: (\S+): executing "[^"]*" at <([^>]*)>: map has no entry for key "([^"]*)"$`)
	execRE       = regexp.MustCompile(`^template: (\S+): executing "[^"]*" at <([^>]*)>: (.*)$`)
)

// templateError rewrites text/template's messages so they name the
// template file:line first and say which variable was missing.
func templateError(err error) string {
	msg := oneLine(err.Error())
	if m := missingKeyRE.FindStringSubmatch(msg); m != nil {
		hint := ""
		if strings.HasPrefix(m[2], ".vars.") {
			hint = fmt.Sprintf(" (for an optional var use {{index .vars %q | default ...}})", m[3])
		}
		return fmt.Sprintf("template %s: unknown variable %q in {{%s}}%s", m[1], m[3], m[2], hint)
	}
	if m := execRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("template %s: in {{%s}}: %s", m[1], m[2], m[3])
	}
	return "template " + strings.TrimPrefix(msg, "template: ")
}
