package plan

import (
	"fmt"
	"strings"
)

// Where a binding's value goes. A binding fills a whole string param, one
// element of a list param (Index, e.g. argv) or one value of a map param
// (Key, e.g. env): the places where a policy may put a deferred value.

// Place describes the target of b for messages: "command", "argv[2]",
// `env["PW"]`. It names no value, so it is safe for no_log resources.
func (b Binding) Place() string {
	switch {
	case b.Index != nil:
		return fmt.Sprintf("%s[%d]", b.Param, *b.Index)
	case b.Key != "":
		return fmt.Sprintf("%s[%q]", b.Param, b.Key)
	}
	return b.Param
}

// Set stores v at b's place in params, copying a list or map param first so
// the plan's own params (shared by a shallow Clone) stay untouched.
func (b Binding) Set(params Params, v string) error {
	switch {
	case b.Index != nil:
		l, err := params.List(b.Param)
		if err != nil {
			return err
		}
		i := *b.Index
		if i < 0 || i >= len(l) {
			return fmt.Errorf("%s: binding index %d outside the list of %d", b.Param, i, len(l))
		}
		l = append([]string(nil), l...)
		l[i] = v
		params[b.Param] = l
	case b.Key != "":
		m, err := params.Map(b.Param)
		if err != nil {
			return err
		}
		c := make(map[string]string, len(m)+1)
		for k, e := range m {
			c[k] = e
		}
		c[b.Key] = v
		params[b.Param] = c
	default:
		params[b.Param] = v
	}
	return nil
}

// Placeholder is the stand-in for a bound value while its real value is not
// known (validating a plan before anything ran): the literal parts with
// every reference replaced by "x", or "/x" when the value starts with one,
// so "echo " + pw.value and a dest of pw.value + ".conf" both validate.
func (b Binding) Placeholder() string {
	var s strings.Builder
	for i, p := range b.Parts {
		switch {
		case p.IsLit():
			s.WriteString(p.Lit)
		case i == 0:
			s.WriteString("/x")
		default:
			s.WriteString("x")
		}
	}
	return s.String()
}

// WithPlaceholders returns r with every bound place set to its Placeholder;
// the plan's params are not modified.
func (r Resource) WithPlaceholders() (Resource, error) {
	if len(r.Bind) == 0 {
		return r, nil
	}
	r.Params = r.Params.Clone()
	if r.Params == nil {
		r.Params = Params{}
	}
	for _, b := range r.Bind {
		if err := b.Set(r.Params, b.Placeholder()); err != nil {
			return r, err
		}
	}
	return r, nil
}
