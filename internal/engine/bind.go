package engine

import (
	"fmt"
	"strings"

	"github.com/herd-project/herd/internal/plan"
)

// errNoOutput marks a binding whose sender ran without producing the field,
// typically a command that did not run. In check mode nothing runs, so the
// receiver's value is simply not known yet.
var errNoOutput = noOutput{}

type noOutput struct{}

func (noOutput) Error() string { return "" }

// bindParams returns res's params with every binding filled from the
// outputs of resources that already ran (send/recv). The plan is not
// modified. Errors name only IDs and fields, never values, so they are safe
// to show for no_log resources.
func (r *runner) bindParams(res plan.Resource) (plan.Params, error) {
	if len(res.Bind) == 0 {
		return res.Params, nil
	}
	params := res.Params.Clone()
	if params == nil {
		params = plan.Params{}
	}
	r.outMu.Lock()
	defer r.outMu.Unlock()
	for _, b := range res.Bind {
		var v strings.Builder
		for _, part := range b.Parts {
			if part.Xch != nil {
				s, err := r.collectedValue(b, part.Xch)
				if err != nil {
					return nil, err
				}
				v.WriteString(s)
				continue
			}
			if !part.IsRef() {
				v.WriteString(part.Lit)
				continue
			}
			out, ran := r.outputs[part.From]
			if !ran {
				if r.whenOff[part.From] {
					return nil, fmt.Errorf("%s: %s was skipped (when is false), so it has no %q to send", b.Place(), part.From, part.Field)
				}
				return nil, fmt.Errorf("%s: %s sends no outputs", b.Place(), part.From)
			}
			s, ok := out[part.Field]
			if !ok {
				return nil, fmt.Errorf("%s: %s did not produce output %q%w", b.Place(), part.From, part.Field, errNoOutput)
			}
			v.WriteString(s)
		}
		if err := b.Set(params, v.String()); err != nil {
			return nil, err
		}
	}
	return params, nil
}

func (r *runner) setSentChanged(id string, changed bool) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	r.sentChg[id] = changed
}

// boundChanged tells, per bound param, whether any of its sources changed
// in this run. Nil when the resource binds nothing.
func (r *runner) boundChanged(res plan.Resource) map[string]bool {
	if len(res.Bind) == 0 {
		return nil
	}
	r.outMu.Lock()
	defer r.outMu.Unlock()
	out := make(map[string]bool, len(res.Bind))
	for _, b := range res.Bind {
		for _, part := range b.Parts {
			if part.IsRef() && r.sentChg[part.From] {
				out[b.Param] = true
			}
		}
		if !out[b.Param] {
			out[b.Param] = false
		}
	}
	return out
}

// exports resolves the plan's exports from the outputs of the resources
// that ran; one whose source produced nothing is left out.
func (r *runner) exports() map[string]string {
	if len(r.p.Exports) == 0 {
		return nil
	}
	r.outMu.Lock()
	defer r.outMu.Unlock()
	out := map[string]string{}
	for _, e := range r.p.Exports {
		if v, ok := r.exportValue(e); ok {
			out[e.Name] = v
		}
	}
	return out
}

// exportValue resolves one export (callers hold outMu).
func (r *runner) exportValue(e plan.Export) (string, bool) {
	var v strings.Builder
	for _, part := range e.Parts {
		if part.Xch != nil {
			return "", false // another host's value is not this host's to export
		}
		if !part.IsRef() {
			v.WriteString(part.Lit)
			continue
		}
		s, ok := r.outputs[part.From][part.Field]
		if !ok {
			return "", false
		}
		v.WriteString(s)
	}
	return v.String(), true
}
