package engine

import (
	"context"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

func bind(param string, parts ...plan.Part) func(*plan.Resource) {
	return func(r *plan.Resource) { r.Bind = append(r.Bind, plan.Binding{Param: param, Parts: parts}) }
}

func lit(s string) plan.Part           { return plan.Part{Lit: s} }
func ref(from, field string) plan.Part { return plan.Part{From: from, Field: field} }

func TestBindings(t *testing.T) {
	tests := []struct {
		name      string
		rs        []plan.Resource
		wantValue string // recorded "value recv=…" call, "" for none
		wantRecv  string // terminal outcome of recv
	}{
		{"a param is the concatenation of literals and outputs",
			[]plan.Resource{
				r("step", "user", "outputs", map[string]string{"value": "alice"}),
				r("step", "host", "outputs", map[string]string{"value": "db1", "stdout": "x"}),
				with(r("step", "recv"), bind("value",
					lit("postgres://"), ref("test_step:user", "value"), lit("@"), ref("test_step:host", "value"), lit("/app"))),
			},
			"value recv=postgres://alice@db1/app", "ok: "},
		{"a bound param replaces the declared one",
			[]plan.Resource{
				r("step", "send", "outputs", map[string]string{"stdout": "new"}),
				with(r("step", "recv", "value", "old"), bind("value", ref("test_step:send", "stdout"))),
			},
			"value recv=new", "ok: "},
		{"an output the sender did not produce fails the receiver",
			[]plan.Resource{
				r("step", "send", "outputs", map[string]string{"stdout": "x"}),
				with(r("step", "recv"), bind("value", ref("test_step:send", "value"))),
			},
			"", `failed: value: test_step:send did not produce output "value"`},
		{"a sender skipped by when=False fails the receiver",
			[]plan.Resource{
				with(r("step", "send", "outputs", map[string]string{"value": "x"}), meta(plan.Meta{Skip: true})),
				with(r("step", "recv"), bind("value", ref("test_step:send", "value"))),
			},
			"", `failed: value: test_step:send was skipped (when is false), so it has no "value" to send`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := h.plan(tt.rs...)
			before := p.Resources[len(p.Resources)-1].Params.Clone()
			_, events := h.run(context.Background(), p, Options{})
			if got := outcome(events)["test_step:recv"]; got != tt.wantRecv {
				t.Errorf("recv = %q, want %q", got, tt.wantRecv)
			}
			var values []string
			for _, c := range h.rec.Calls() {
				if len(c) > 11 && c[:11] == "value recv=" {
					values = append(values, c)
				}
			}
			switch {
			case tt.wantValue == "" && len(values) > 0:
				t.Errorf("recv ran with %q, want it not to run", values)
			case tt.wantValue != "" && (len(values) != 1 || values[0] != tt.wantValue):
				t.Errorf("recv ran with %q, want %q", values, tt.wantValue)
			}
			if after := p.Resources[len(p.Resources)-1].Params; len(after) != len(before) || after["value"] != before["value"] {
				t.Errorf("the plan's params were modified: %v → %v", before, after)
			}
		})
	}
}
