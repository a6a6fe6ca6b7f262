package policy

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/herd-project/herd/internal/plan"
)

// A template's vars may hold deferred values: collect()'s values of hosts
// whose export only exists once they ran, a command's stdout. The template
// is still rendered when planning, with a unique marker in place of each
// deferred value; the output is then cut at the markers into a binding of
// the file's content, literal text and deferred parts, which the target
// fills once the values exist — the very path of file(content=collect(…)).
// A template may therefore place a deferred value (print it, iterate over
// the dict holding it, indent it) but not look into it: comparing it, or
// passing it through a filter that changes it, is an error at planning.

// markOpen starts every marker. It holds a NUL byte, which no text a
// policy means to write contains, so a marker never matches by chance.
const markOpen = "\x00herd-deferred-"

// markTag is what remains recognisable of a marker a filter changed
// (upper, quote): matched without regard to case.
var markTag = []byte("herd-deferred-")

// deferredMarks numbers the deferred values of one rendering.
type deferredMarks struct {
	values []*Deferred
}

// deferredText stands for a deferred value in Go templates: it prints as
// its marker, and comparing it (eq, lt) or taking len of it fails, where a
// string would silently give a wrong answer.
type deferredText struct{ mark string }

func (d deferredText) String() string { return d.mark }

// mark returns the placeholder of d for the template data.
func (m *deferredMarks) mark(d *Deferred, jinja bool) any {
	s := markOpen + strconv.Itoa(len(m.values)) + "\x00"
	m.values = append(m.values, d)
	if jinja {
		return s
	}
	return deferredText{s}
}

// markAlt is mark's second form for Jinja's check rendering
// (checkJinjaPlacesOnly): it sorts after any text and is longer, so
// that a length, a comparison or an ordering of the value comes out
// different from the first rendering.
func (m *deferredMarks) markAlt(d *Deferred) any {
	s := altMark(len(m.values))
	m.values = append(m.values, d)
	return s
}

func altMark(n int) string {
	return "\U0010FFFF" + string(markTag) + strconv.Itoa(n) + "-padding-that-changes-its-length\x00"
}

// unmarkAlt turns the second form of every marker in out back into the
// first, so that the two renderings compare equal when the template only
// placed its deferred values.
func (m *deferredMarks) unmarkAlt(out []byte) []byte {
	for n := range m.values {
		out = bytes.ReplaceAll(out, []byte(altMark(n)), []byte(markOpen+strconv.Itoa(n)+"\x00"))
	}
	return out
}

// parts cuts a rendered template at its markers: nil when no deferred
// value reached the output (the content is known now).
func (m *deferredMarks) parts(src string, out []byte) ([]plan.Part, error) {
	if len(m.values) == 0 || !bytes.Contains(out, []byte(markOpen)) {
		return nil, m.changed(src, out)
	}
	var parts []plan.Part
	rest := out
	for {
		i := bytes.Index(rest, []byte(markOpen))
		if i < 0 {
			break
		}
		if i > 0 {
			parts = append(parts, plan.Part{Lit: string(rest[:i])})
		}
		rest = rest[i+len(markOpen):]
		j := bytes.IndexByte(rest, 0)
		n, err := strconv.Atoi(string(rest[:max(j, 0)]))
		if j < 0 || err != nil || n < 0 || n >= len(m.values) {
			return nil, m.changedErr(src, 0)
		}
		parts = append(parts, m.values[n].parts...)
		rest = rest[j+1:]
	}
	if len(rest) > 0 {
		parts = append(parts, plan.Part{Lit: string(rest)})
	}
	for _, p := range parts {
		if p.IsLit() {
			if err := m.changed(src, []byte(p.Lit)); err != nil {
				return nil, err
			}
		}
	}
	return parts, nil
}

// changed fails when text holds what is left of a marker a filter or
// function transformed.
func (m *deferredMarks) changed(src string, text []byte) error {
	i := bytes.Index(bytes.ToLower(text), markTag)
	if i < 0 {
		return nil
	}
	digits := text[i+len(markTag):]
	k := 0
	for k < len(digits) && digits[k] >= '0' && digits[k] <= '9' {
		k++
	}
	n, err := strconv.Atoi(string(digits[:k]))
	if err != nil {
		n = -1
	}
	return m.changedErr(src, n)
}

func (m *deferredMarks) changedErr(src string, n int) error {
	what := "a deferred value"
	if n >= 0 && n < len(m.values) {
		what = m.values[n].describe()
	}
	return fmt.Errorf("template %s: %s is only known on the target: a template can insert it as it is, not change or inspect it (filters, functions, comparisons)", src, what)
}
