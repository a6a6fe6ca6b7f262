package engine

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
)

// loopback is a Collector fed by the plan's own Exported callback, the
// way the controller feeds an agent (here the host collects itself).
type loopback struct {
	mu   sync.Mutex
	vals map[string]chan collectedValue
}

func newLoopback() *loopback { return &loopback{vals: map[string]chan collectedValue{}} }

func (l *loopback) ch(key string) chan collectedValue {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.vals[key] == nil {
		l.vals[key] = make(chan collectedValue, 1)
	}
	return l.vals[key]
}

func (l *loopback) Await(ctx context.Context, c *plan.Collected) (string, bool, error) {
	select {
	case v := <-l.ch(c.Key()):
		return v.value, v.ok, nil
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}

func xch(host, name string, timeout time.Duration, fallback ...string) plan.Part {
	c := &plan.Collected{Host: host, Name: name, Role: "web", Timeout: timeout}
	if len(fallback) > 0 {
		c.Fallback, c.HasFallback = fallback[0], true
	}
	return plan.Part{Xch: c}
}

func recvValue(h *harness) string {
	for _, c := range h.rec.Calls() {
		if strings.HasPrefix(c, "value recv=") {
			return strings.TrimPrefix(c, "value recv=")
		}
	}
	return "<did not run>"
}

func eventsOf(events []event.Event, t event.Type) []event.Event {
	var out []event.Event
	for _, e := range events {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// A resource waiting for a collected value takes no worker slot: with one
// slot and the waiter first in line, the export it waits for still runs,
// is passed on at once, and the waiter then runs with it. The wait is an
// event naming the cross-host edge.
func TestCollectWaitTakesNoSlot(t *testing.T) {
	h := newHarness(t)
	p := h.plan(
		with(r("step", "recv"), bind("value", lit("peer "), xch("h1", "pk", 5*time.Second))),
		r("step", "send", "outputs", map[string]string{"value": "k1"}),
	)
	p.Exports = []plan.Export{{Name: "pk", Parts: []plan.Part{ref("test_step:send", "value")}}}
	lb := newLoopback()
	o := Options{Parallel: 1, Collect: lb, Exported: func(name, value string, ok bool) {
		lb.ch((&plan.Collected{Host: "h1", Name: name, Role: "web"}).Key()) <- collectedValue{value, ok}
	}}
	start := time.Now()
	_, events := h.run(context.Background(), p, o)
	if got := recvValue(h); got != "peer k1" {
		t.Fatalf("recv ran with %q, want %q (events %v)", got, "peer k1", events)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v: the waiter held the only slot until its timeout", d)
	}
	waits := eventsOf(events, event.Wait)
	if len(waits) != 2 || waits[0].Resource != "test_step:recv" || strings.Join(waits[0].Waits, ",") != "h1:pk" ||
		!strings.HasPrefix(waits[1].Msg, "collected 1 of 1 after ") {
		t.Fatalf("wait events %+v, want one naming h1:pk, then one saying it came", waits)
	}
}

// Without the value the waiter runs after collect_timeout with the value
// of an earlier run and says who was missing; a value that will not come
// (Missing) ends the wait at once; check mode does not wait but says it
// would.
func TestCollectTimeoutMissingAndCheck(t *testing.T) {
	tests := []struct {
		name     string
		check    bool
		missing  bool // the controller says the export will not come
		want     string
		wantMsg  string
		maxDelay time.Duration
	}{
		{"timeout uses the earlier value", false, false, "peer old", `missing: h2's "pk" (not within 300ms; using its earlier value)`, 3 * time.Second},
		{"missing ends the wait at once", false, true, "peer old", `missing: h2's "pk" (not exported in this run; using its earlier value)`, 3 * time.Second},
		{"check mode would wait", true, false, "<did not run>", `would wait for h2's export "pk"`, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			timeout := 300 * time.Millisecond
			if tt.missing {
				timeout = time.Hour
			}
			p := h.plan(with(r("step", "recv"), bind("value", lit("peer "), xch("h2", "pk", timeout, "old"))))
			lb := newLoopback()
			if tt.missing {
				lb.ch((&plan.Collected{Host: "h2", Name: "pk", Role: "web"}).Key()) <- collectedValue{"", false}
			}
			start := time.Now()
			_, events := h.run(context.Background(), p, Options{Check: tt.check, Collect: lb})
			if d := time.Since(start); d > tt.maxDelay {
				t.Fatalf("took %v", d)
			}
			if got := recvValue(h); got != tt.want {
				t.Fatalf("recv ran with %q, want %q", got, tt.want)
			}
			var all []string
			for _, e := range events {
				all = append(all, e.Msg)
			}
			if !strings.Contains(strings.Join(all, "\n"), tt.wantMsg) {
				t.Fatalf("events lack %q:\n%s", tt.wantMsg, strings.Join(all, "\n"))
			}
		})
	}
}

// Stopping the run (the agent's controller went away, or asked to stop)
// ends a wait at once; the waiter is skipped, not run with half its values.
func TestCollectWaitEndsOnStop(t *testing.T) {
	h := newHarness(t)
	p := h.plan(with(r("step", "recv"), bind("value", xch("h2", "pk", time.Hour))))
	stop := make(chan struct{})
	time.AfterFunc(300*time.Millisecond, func() { close(stop) })
	start := time.Now()
	_, events := h.run(context.Background(), p, Options{Collect: newLoopback(), Stop: stop})
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("stop took %v to end the wait", d)
	}
	if got := outcome(events)["test_step:recv"]; !strings.HasPrefix(got, "skipped") {
		t.Fatalf("recv = %q, want skipped", got)
	}
	if got := recvValue(h); got != "<did not run>" {
		t.Fatalf("recv ran with %q", got)
	}
}

// A value of a host in a later serial batch is not waited for: the
// resource runs at once with the others' values and nothing for it, and
// says so (the Collector is never asked); check mode says it would not
// wait for it.
func TestCollectLaterBatchIsNotWaitedFor(t *testing.T) {
	for _, check := range []bool{false, true} {
		h := newHarness(t)
		later := xch("h3", "pk", time.Hour)
		later.Xch.Later = true
		p := h.plan(with(r("step", "recv"), bind("value", lit("peer "), xch("h2", "pk", time.Hour), lit(" "), later)))
		lb := newLoopback()
		lb.ch((&plan.Collected{Host: "h2", Name: "pk", Role: "web"}).Key()) <- collectedValue{"k2", true}
		start := time.Now()
		_, events := h.run(context.Background(), p, Options{Check: check, Collect: lb})
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("check=%v: took %v", check, d)
		}
		var all []string
		for _, e := range events {
			all = append(all, e.Msg)
			if e.Type == event.Wait || e.Type == event.Changed {
				for _, w := range e.Waits {
					if w == "h3:pk" {
						t.Fatalf("check=%v: an event waits for h3: %+v", check, e)
					}
				}
			}
		}
		msgs := strings.Join(all, "\n")
		want, ran := `missing: h3's "pk" (later serial batch; using nothing)`, "peer k2 "
		if check {
			want, ran = `would wait for h2's export "pk"; would not wait for h3's export "pk" (later serial batch; using nothing)`, "<did not run>"
		}
		if !strings.Contains(msgs, want) {
			t.Fatalf("check=%v: events lack %q:\n%s", check, want, msgs)
		}
		if got := recvValue(h); got != ran {
			t.Fatalf("check=%v: recv ran with %q, want %q", check, got, ran)
		}
	}
}
