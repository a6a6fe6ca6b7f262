package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/event"
	"github.com/herd-project/herd/plan"
)

func after(ids ...string) func(*plan.Resource) {
	return func(r *plan.Resource) { r.After = append(r.After, ids...) }
}

func notify(ids ...string) func(*plan.Resource) {
	return func(r *plan.Resource) { r.Notify = append(r.Notify, ids...) }
}

func meta(m plan.Meta) func(*plan.Resource) {
	return func(r *plan.Resource) { r.Meta = m }
}

func TestResourcesRunInEdgeOrder(t *testing.T) {
	tests := []struct {
		name string
		rs   []plan.Resource
		want []string // Check calls, in order, with Parallel 1
	}{
		{"without edges, declaration order",
			[]plan.Resource{r("step", "c"), r("step", "a"), r("step", "b")},
			[]string{"check c", "check a", "check b"}},
		{"after= moves a resource behind its dependency",
			[]plan.Resource{with(r("step", "a"), after("test_step:b")), r("step", "b")},
			[]string{"check b", "check a"}},
		{"a notified resource runs after its notifier",
			[]plan.Resource{r("handler", "h"), with(r("step", "conf"), notify("test_handler:h"))},
			[]string{"check conf", "check h"}},
		{"a receiver runs after its sender",
			[]plan.Resource{
				with(r("step", "recv"), func(r *plan.Resource) {
					r.Bind = []plan.Binding{{Param: "value", Parts: []plan.Part{{From: "test_step:send", Field: "value"}}}}
				}),
				r("step", "send", "outputs", map[string]string{"value": "v"}),
			},
			[]string{"check send", "check recv", "value recv=v"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.run(context.Background(), h.plan(tt.rs...), Options{Parallel: 1})
			if got := h.rec.Calls(); !slices.Equal(got, tt.want) {
				t.Fatalf("calls = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDependentsWaitUnderParallelism(t *testing.T) {
	// With room for everything at once, b must still wait for a to finish.
	h := newHarness(t)
	p := h.plan(
		r("step", "a", "sleep", "50ms", "changed", true),
		with(r("step", "b"), after("test_step:a")),
		r("step", "c"),
	)
	h.run(context.Background(), p, Options{Parallel: 8})
	calls := h.rec.Calls()
	if slices.Index(calls, "check b") < slices.Index(calls, "apply a") {
		t.Fatalf("b checked before a was applied: %q", calls)
	}
}

func TestParallelismIsBounded(t *testing.T) {
	tests := []struct {
		parallel, want int
	}{
		{1, 1},
		{2, 2},
		{3, 3},
		{0, DefaultParallel},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("parallel=%d", tt.parallel), func(t *testing.T) {
			h := newHarness(t)
			var rs []plan.Resource
			for i := range 8 {
				rs = append(rs, r("step", fmt.Sprint(i), "sleep", "40ms"))
			}
			res, _ := h.run(context.Background(), h.plan(rs...), Options{Parallel: tt.parallel})
			if res.Counts.OK != 8 {
				t.Fatalf("counts = %+v, want 8 ok", res.Counts)
			}
			if h.rec.maxConc != tt.want {
				t.Fatalf("max concurrent resources = %d, want %d", h.rec.maxConc, tt.want)
			}
		})
	}
}

func TestFailureSkipsDependentsButNotIndependentBranches(t *testing.T) {
	h := newHarness(t)
	p := h.plan(
		r("step", "a", "fail", "check", "fail_msg", "disk on fire"),
		with(r("step", "b"), after("test_step:a")),
		with(r("step", "c"), after("test_step:b")),
		r("step", "d", "changed", true),
		with(r("step", "e"), after("test_step:d")),
	)
	res, events := h.run(context.Background(), p, Options{})
	want := map[string]string{
		"test_step:a": "failed: check: disk on fire",
		"test_step:b": "skipped: dependency failed: test_step:a",
		"test_step:c": "skipped: dependency failed: test_step:b",
		"test_step:d": "changed: set d",
		"test_step:e": "ok: ",
	}
	if got := outcome(events); !maps.Equal(got, want) {
		t.Fatalf("outcomes:\n got %q\nwant %q", got, want)
	}
	if !res.Failed || res.Counts != (event.Counts{OK: 1, Changed: 1, Failed: 1, Skipped: 2}) {
		t.Fatalf("result = %+v", res)
	}
	if n := h.rec.count("check b") + h.rec.count("check c"); n != 0 {
		t.Fatalf("skipped resources were checked %d times", n)
	}
}

func TestWhenFalseSkipsOnlyThatResource(t *testing.T) {
	h := newHarness(t)
	p := h.plan(
		with(r("step", "a", "changed", true), meta(plan.Meta{Skip: true})),
		with(r("step", "b"), after("test_step:a")),
	)
	res, events := h.run(context.Background(), p, Options{})
	want := map[string]string{"test_step:a": "skipped: when is false", "test_step:b": "ok: "}
	if got := outcome(events); !maps.Equal(got, want) {
		t.Fatalf("outcomes = %q, want %q", got, want)
	}
	if res.Failed || h.rec.count("check a") != 0 {
		t.Fatalf("result %+v, calls %q: a must not run and the run must not fail", res, h.rec.Calls())
	}
}

func TestEventsOfAResource(t *testing.T) {
	h := newHarness(t)
	p := h.plan(r("step", "a", "changed", true, "diff", "-x\n+y\n", "stdout", "out", "stderr", "err", "log", "hello"))
	_, events := h.run(context.Background(), p, Options{Host: "h1", Role: "web"})
	var types []string
	for _, e := range events {
		types = append(types, string(e.Type))
		if e.Host != "h1" || e.Role != "web" || e.Resource != "test_step:a" || e.Pos != "site.star:1:5" || e.Time.IsZero() {
			t.Errorf("event %+v lacks host, role, resource, pos or time", e)
		}
	}
	if want := []string{"start", "output", "changed"}; !slices.Equal(types, want) {
		t.Fatalf("event types = %q, want %q", types, want)
	}
	if out := events[1]; out.Msg != "hello" {
		t.Errorf("output event msg = %q, want the logged message", out.Msg)
	}
	ch := events[2]
	if ch.Msg != "set a" || ch.Diff != "-x\n+y\n" || ch.Stdout != "out" || ch.Stderr != "err" || ch.Duration <= 0 || ch.Check {
		t.Errorf("changed event = %+v, want summary, diff, stdout, stderr and a duration", ch)
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name        string
		failTimes   int
		retry       int
		wantOutcome string
		wantChecks  int
	}{
		{"succeeds on the last allowed attempt", 2, 2, "ok: ", 3},
		{"fails when attempts run out", 2, 1, "failed: check: attempt 2: told to fail", 2},
		{"no retry by default", 1, 0, "failed: check: attempt 1: told to fail", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			const delay = 30 * time.Millisecond
			p := h.plan(with(r("step", "a", "fail_times", int64(tt.failTimes)),
				meta(plan.Meta{Retry: tt.retry, RetryDelay: delay})))
			_, events := h.run(context.Background(), p, Options{})
			if got := outcome(events)["test_step:a"]; got != tt.wantOutcome {
				t.Errorf("outcome = %q, want %q", got, tt.wantOutcome)
			}
			checks := h.rec.checks["a"]
			if len(checks) != tt.wantChecks {
				t.Fatalf("%d attempts, want %d", len(checks), tt.wantChecks)
			}
			if got := len(ofType(events, event.Retry, "test_step:a")); got != tt.wantChecks-1 {
				t.Errorf("%d retry events, want one per retried attempt (%d)", got, tt.wantChecks-1)
			}
			for i := 1; i < len(checks); i++ {
				if gap := checks[i].Sub(checks[i-1]); gap < delay {
					t.Errorf("attempt %d started %s after the previous one, want at least %s", i+1, gap, delay)
				}
			}
		})
	}
}

func TestTimeoutBoundsEachAttempt(t *testing.T) {
	h := newHarness(t)
	p := h.plan(
		with(r("step", "slow", "sleep", "5s"), meta(plan.Meta{Timeout: 50 * time.Millisecond, Retry: 1})),
		with(r("step", "next"), after("test_step:slow")),
	)
	start := time.Now()
	res, events := h.run(context.Background(), p, Options{})
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("run took %s; the timeout did not stop the attempts", took)
	}
	if got := outcome(events)["test_step:slow"]; got != "failed: timed out after 50ms" {
		t.Errorf("outcome = %q, want a timeout message", got)
	}
	if n := h.rec.count("check slow"); n != 2 {
		t.Errorf("%d attempts, want 2 (each attempt gets its own timeout)", n)
	}
	if !res.Failed {
		t.Error("result not failed")
	}
}

func TestCancelStopsStartingResources(t *testing.T) {
	h := newHarness(t)
	p := h.plan(
		r("step", "a", "sleep", "5s"),
		r("step", "b"),
		with(r("step", "c"), after("test_step:a")),
	)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	res, events := h.run(ctx, p, Options{Parallel: 1})
	got := outcome(events)
	if !strings.HasPrefix(got["test_step:a"], "failed: ") {
		t.Errorf("a = %q, want failed (it was running when the run was cancelled)", got["test_step:a"])
	}
	for _, id := range []string{"test_step:b", "test_step:c"} {
		if got[id] != "skipped: run cancelled" {
			t.Errorf("%s = %q, want skipped: run cancelled", id, got[id])
		}
	}
	if !res.Failed || res.Counts.Skipped != 2 {
		t.Errorf("result = %+v, want failed with 2 skipped", res)
	}
	if n := h.rec.count("check b"); n != 0 {
		t.Errorf("b ran after the cancel")
	}
}

func TestStopLetsTheResourceInFlightFinish(t *testing.T) {
	h := newHarness(t)
	p := h.plan(
		r("step", "a", "sleep", "200ms", "changed", true),
		r("step", "b"),
		with(r("step", "c"), after("test_step:a")),
	)
	stop := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(stop) })
	res, events := h.run(context.Background(), p, Options{Parallel: 1, Stop: stop})
	got := outcome(events)
	if !strings.HasPrefix(got["test_step:a"], "changed") {
		t.Errorf("a = %q, want changed (it was in flight when the run was stopped)", got["test_step:a"])
	}
	for _, id := range []string{"test_step:b", "test_step:c"} {
		if got[id] != "skipped: run stopped" {
			t.Errorf("%s = %q, want skipped: run stopped", id, got[id])
		}
	}
	if !res.Failed || res.Counts.Skipped != 2 {
		t.Errorf("result = %+v, want failed with 2 skipped", res)
	}
	if n := h.rec.count("check b"); n != 0 {
		t.Errorf("b ran after the stop")
	}
}
