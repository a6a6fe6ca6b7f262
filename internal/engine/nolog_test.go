package engine

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
)

func TestNoLogEventsNeverCarryTheSecret(t *testing.T) {
	const secret = "hunter2-Zq9"
	h := newHarness(t)
	p := h.plan(
		// A secret sender (like password) and what receives its value.
		r("step", "pw", "secret", true, "outputs", map[string]string{"value": secret}),
		with(r("step", "conf", "changed", true, "stdout", "wrote it", "log", "configured",
			"outputs", map[string]string{"value": "derived"}),
			bind("diff", lit("-old\n+"), ref("test_step:pw", "value"), lit("\n")),
			bind("value", ref("test_step:pw", "value"))),
		// A receiver of a receiver is no_log too.
		with(r("step", "chained", "changed", true), bind("stdout", ref("test_step:conf", "value"))),
		// An explicit no_log resource that fails with the secret in its error,
		// after logging it and retrying.
		with(r("step", "cmd", "fail", "apply", "changed", true, "fail_msg", "bad token "+secret,
			"stderr", secret, "log", "token is "+secret, "diff", secret, "fail_times", int64(1)),
			meta(plan.Meta{NoLog: true, Retry: 1})),
		// An explicit no_log handler refreshed by conf.
		with(r("handler", "svc", "stdout", secret), meta(plan.Meta{NoLog: true})),
		with(r("step", "notifier", "changed", true), notify("test_handler:svc")),
	)
	_, events := h.run(context.Background(), p, Options{})

	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("event leaks the secret: %s", b)
		}
	}
	// The secret did reach where it belongs.
	if h.rec.count("value conf="+secret) != 1 {
		t.Fatalf("conf did not receive the secret: %q", h.rec.Calls())
	}

	want := map[string]string{
		"test_step:pw":       "ok: ",
		"test_step:conf":     "changed: changed (no_log)",
		"test_step:chained":  "changed: changed (no_log)",
		"test_step:cmd":      "failed: failed (details hidden by no_log)",
		"test_handler:svc":   "changed: changed (no_log)",
		"test_step:notifier": "changed: set notifier",
	}
	if got := outcome(events); !maps.Equal(got, want) {
		t.Errorf("outcomes:\n got %q\nwant %q", got, want)
	}
	if n := len(ofType(events, event.Output, "test_step:conf")) + len(ofType(events, event.Output, "test_step:cmd")); n != 0 {
		t.Errorf("%d output events from no_log resources, want none", n)
	}
	if retries := ofType(events, event.Retry, "test_step:cmd"); len(retries) != 1 || retries[0].Msg != hiddenRetry {
		t.Errorf("retry events = %+v, want one with a hidden message", retries)
	}
}

func TestNoLogIsNotContagiousWithoutBindings(t *testing.T) {
	h := newHarness(t)
	p := h.plan(
		with(r("step", "quiet", "changed", true), meta(plan.Meta{NoLog: true})),
		with(r("step", "loud", "changed", true, "diff", "+x\n"), after("test_step:quiet")),
	)
	_, events := h.run(context.Background(), p, Options{})
	ch := ofType(events, event.Changed, "test_step:loud")
	if len(ch) != 1 || ch[0].Msg != "set loud" || ch[0].Diff != "+x\n" {
		t.Fatalf("loud = %+v, want its summary and diff: an after= edge carries no value", ch)
	}
}
