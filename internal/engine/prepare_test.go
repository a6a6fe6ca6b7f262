package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/graph"
	"github.com/herd-project/herd/internal/plan"
)

func TestInvalidPlansFailBeforeAnythingRuns(t *testing.T) {
	tests := []struct {
		name    string
		rs      []plan.Resource
		edit    func(*plan.Plan)
		wantErr []string // all must appear in the error
	}{
		{"unknown kind",
			[]plan.Resource{r("step", "ok"), {ID: "frob:x", Kind: "frob", Name: "x"}},
			nil, []string{"site.star:2:5: frob:x", `unknown resource kind "frob"`}},
		{"unknown argument",
			[]plan.Resource{r("step", "ok"), r("step", "typo", "chnaged", true)},
			nil, []string{"site.star:2:5: test_step:typo", `unknown argument "chnaged"`}},
		{"bad param value",
			[]plan.Resource{r("step", "ok"), r("step", "bad", "sleep", "soon")},
			nil, []string{"site.star:2:5: test_step:bad", "soon"}},
		{"reference to an unknown resource",
			[]plan.Resource{r("step", "ok"), with(r("step", "a"), after("test_step:nope"))},
			nil, []string{"site.star:2:5", "test_step:a", `"test_step:nope"`}},
		{"binding to an output the sender's kind does not send",
			[]plan.Resource{r("step", "send"), with(r("step", "recv"), bind("value", ref("test_step:send", "passwd")))},
			nil, []string{"site.star:2:5: test_step:recv", `test_step:send has no output "passwd"`, "sends value, stdout"}},
		{"bound param unknown to the receiver's kind",
			[]plan.Resource{r("step", "send"), with(r("step", "recv"), bind("colour", ref("test_step:send", "value")))},
			nil, []string{"site.star:2:5: test_step:recv", `unknown argument "colour"`}},
		{"plan version from the future",
			[]plan.Resource{r("step", "ok")},
			func(p *plan.Plan) { p.Version = 99 }, []string{"plan version 99"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := h.plan(tt.rs...)
			if tt.edit != nil {
				tt.edit(p)
			}
			_, events, err := h.tryRun(context.Background(), p, Options{})
			if err == nil {
				t.Fatal("Run accepted the plan")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if len(events) != 0 || len(h.rec.Calls()) != 0 {
				t.Errorf("something ran before the error: events %v, calls %q", events, h.rec.Calls())
			}
		})
	}
}

func TestCycleErrorNamesTheCycle(t *testing.T) {
	tests := []struct {
		name    string
		rs      []plan.Resource
		wantErr string
	}{
		{"after edges",
			[]plan.Resource{with(r("step", "a"), after("test_step:b")), with(r("step", "b"), after("test_step:a"))},
			"cycle: test_step:a → test_step:b → test_step:a (test_step:a at site.star:1:5, test_step:b at site.star:2:5)"},
		{"a notify edge against an after edge",
			[]plan.Resource{with(r("step", "conf"), notify("test_handler:svc")), r("handler", "svc"), with(r("step", "x"), after("test_handler:svc"), notify("test_step:conf"))},
			"cycle: test_step:conf → test_handler:svc → test_step:x → test_step:conf (test_step:conf at site.star:1:5, test_step:x at site.star:3:5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := h.plan(tt.rs...)
			for i := range p.Resources {
				// Positions are optional in plans; those missing are left out.
				if p.Resources[i].ID == "test_handler:svc" {
					p.Resources[i].Pos = ""
				}
			}
			_, _, err := h.tryRun(context.Background(), p, Options{})
			var ce *graph.CycleError
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v, want a cycle error", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q\nwant it to contain %q", err, tt.wantErr)
			}
			if len(h.rec.Calls()) != 0 {
				t.Errorf("resources ran: %q", h.rec.Calls())
			}
		})
	}
}
