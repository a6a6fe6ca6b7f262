package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/resource"
)

// test_panic panics in Check: a buggy kind must fail its own resource, not
// the agent.
type panicky struct{}

func (panicky) Check(context.Context, *resource.Env) (resource.Change, error) {
	var m map[string]int
	m["boom"]++ // nil map write
	return resource.Change{}, nil
}
func (panicky) Apply(context.Context, *resource.Env) (resource.Change, error) {
	return resource.Change{}, nil
}

func init() {
	resource.Register(&resource.Schema{Kind: "test_panic", Params: []resource.Param{{Name: "rec", Type: resource.String}},
		Factory: func(string, plan.Params, map[string][]byte) (resource.Resource, error) { return panicky{}, nil }})
}

func TestPanickingResourceFailsOnlyItself(t *testing.T) {
	h := newHarness(t)
	p := h.plan(plan.Resource{ID: "test_panic:x", Kind: "test_panic", Name: "x"}, r("step", "independent"))
	res, events := h.run(context.Background(), p, Options{Parallel: 2})
	if !res.Failed || res.Counts.Failed != 1 || res.Counts.OK != 1 {
		t.Fatalf("result %+v", res)
	}
	for _, e := range events {
		if e.Type == event.Failed {
			if e.Resource != "test_panic:x" || !strings.Contains(e.Msg, "internal error in the test_panic resource") {
				t.Fatalf("failure event %+v", e)
			}
		}
	}
}
