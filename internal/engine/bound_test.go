package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/resource"
)

// test_observe records what the engine told it about its bound params.
type observer struct{ name string }

var observed sync.Map // name → map[string]bool

func (o observer) Check(_ context.Context, env *resource.Env) (resource.Change, error) {
	observed.Store(o.name, env.BoundChanged)
	return resource.Change{}, nil
}
func (observer) Apply(context.Context, *resource.Env) (resource.Change, error) {
	return resource.Change{}, nil
}

func init() {
	resource.Register(&resource.Schema{Kind: "test_observe",
		Params: []resource.Param{{Name: "rec", Type: resource.String}, {Name: "value", Type: resource.String}},
		Factory: func(name string, _ plan.Params, _ map[string][]byte) (resource.Resource, error) {
			return observer{name}, nil
		}})
}

// A receiver learns whether the sender of each bound value changed in this
// run (mgmt's send/recv), not only the value.
func TestReceiverSeesWhetherSenderChanged(t *testing.T) {
	for _, changed := range []bool{true, false} {
		h := newHarness(t)
		name := "obs-changed"
		if !changed {
			name = "obs-unchanged"
		}
		p := h.plan(
			r("step", "send", "changed", changed, "outputs", map[string]string{"value": "v"}),
			plan.Resource{ID: "test_observe:" + name, Kind: "test_observe", Name: name,
				Bind: []plan.Binding{{Param: "value", Parts: []plan.Part{{Lit: "x="}, {From: "test_step:send", Field: "value"}}}}},
		)
		h.run(context.Background(), p, Options{Parallel: 1})
		got, _ := observed.Load(name)
		m, _ := got.(map[string]bool)
		if v, ok := m["value"]; !ok || v != changed {
			t.Fatalf("sender changed=%v: receiver saw BoundChanged=%v", changed, m)
		}
	}
}
