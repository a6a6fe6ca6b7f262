package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/herd-project/herd/plan"
)

// Check mode predicts apply: a resource whose inspection fails is "may
// change" when something it runs after (directly or not) would change
// first — the package that installs a service's init script — and still
// fails when nothing before it changes.
func TestCheckPredictsFailuresFixedByEarlierChanges(t *testing.T) {
	failing := func(deps ...string) plan.Resource {
		return with(r("step", "svc", "fail", "check", "fail_msg", "init script /etc/init.d/svc not found"), after(deps...))
	}
	for _, tc := range []struct {
		name string
		res  []plan.Resource
		want string // outcome of test_step:svc
	}{
		{"direct dependency would change", []plan.Resource{
			r("step", "pkg", "changed", true), failing("test_step:pkg"),
		}, "changed: may change: check: init script /etc/init.d/svc not found now, but test_step:pkg runs before it and would change first"},
		{"indirect dependency would change", []plan.Resource{
			r("step", "pkg", "changed", true), with(r("step", "mid"), after("test_step:pkg")), failing("test_step:mid"),
		}, "changed: may change: check: init script /etc/init.d/svc not found now, but test_step:pkg runs before it and would change first"},
		{"dependency unchanged", []plan.Resource{
			r("step", "pkg"), failing("test_step:pkg"),
		}, "failed: check: init script /etc/init.d/svc not found"},
		{"unrelated change", []plan.Resource{
			r("step", "pkg", "changed", true), failing(),
		}, "failed: check: init script /etc/init.d/svc not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			res, events := h.run(context.Background(), h.plan(tc.res...), Options{Check: true})
			got := outcome(events)["test_step:svc"]
			if got != tc.want {
				t.Fatalf("svc = %q\nwant  %q", got, tc.want)
			}
			if predicted := strings.HasPrefix(tc.want, "changed"); predicted == res.Failed {
				t.Errorf("result %+v", res)
			}
			if !strings.HasPrefix(tc.want, "changed") && !res.Failed {
				t.Errorf("a real failure was predicted away: %+v", res)
			}
		})
	}
}

// A refresh check mode announces is counted as a change, as the refresh
// apply delivers is.
func TestCheckCountsRefreshesLikeApply(t *testing.T) {
	h := newHarness(t)
	p := func() *plan.Plan {
		return h.plan(
			with(r("step", "conf", "changed", true), notify("test_handler:svc")),
			r("handler", "svc"),
		)
	}
	check, _ := h.run(context.Background(), p(), Options{Check: true})
	apply, _ := h.run(context.Background(), p(), Options{})
	if check.Counts != apply.Counts || check.Counts.Changed != 2 {
		t.Errorf("check counts %+v, apply counts %+v", check.Counts, apply.Counts)
	}
}
