package engine

import (
	"context"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/herd-project/herd/safefile"
)

// A refresh is recorded before the change is applied: when the state
// directory cannot take the record, the change is not made (and says why),
// so no refresh can be owed without a record of it; once the directory
// works again the next run applies the change and delivers the refresh.
func TestUnrecordableRefreshMeansNotApplied(t *testing.T) {
	h := newHarness(t)
	writeFile = func(string, []byte, os.FileMode, int, int) error { return syscall.ENOSPC }
	defer func() { writeFile = safefile.WriteBytes }()
	plan1 := h.plan(
		with(r("step", "conf", "changed", true), notify("test_handler:svc")),
		r("handler", "svc"),
	)
	_, events := h.run(context.Background(), plan1, Options{})
	got := outcome(events)["test_step:conf"]
	if !strings.HasPrefix(got, "failed: not applied: the refresh it owes test_handler:svc could not be recorded in the state directory "+h.stateDir+": no space left on device") {
		t.Errorf("conf = %q", got)
	}
	if n := h.rec.count("apply conf"); n != 0 {
		t.Errorf("conf applied %d times although its refresh could not be recorded", n)
	}

	writeFile = safefile.WriteBytes
	_, events = h.run(context.Background(), plan1, Options{})
	if h.rec.count("apply conf") != 1 || h.rec.count("refresh svc") != 1 {
		t.Errorf("second run: calls %q, want conf applied and svc refreshed", h.rec.Calls())
	}
	if got := outcome(events)["test_handler:svc"]; got != "changed: reloaded svc" {
		t.Errorf("second run: svc = %q", got)
	}
	if p := pendingOnDisk(t, h); len(p) != 0 {
		t.Errorf("pending after delivery: %v", p)
	}
}

// An Apply that fails part-way may have changed something: its refresh
// stays owed.
func TestFailedApplyLeavesItsRefreshPending(t *testing.T) {
	h := newHarness(t)
	h.run(context.Background(), h.plan(
		with(r("step", "conf", "changed", true, "fail", "apply", "fail_msg", "disk full"), notify("test_handler:svc")),
		r("handler", "svc"),
	), Options{})
	want := map[string][]string{"test_handler:svc": {"test_step:conf"}}
	if got := pendingOnDisk(t, h); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("pending = %v, want %v", got, want)
	}
}

// Two runs sharing a state directory merge their pending refreshes: one
// run delivering its refresh does not delete what the other recorded
// meanwhile, and neither overwrites the other's entries.
func TestPendingRefreshesOfTwoRunsMerge(t *testing.T) {
	dir := t.TempDir()
	a, err := loadPending(dir, "web", true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadPending(dir, "web", true)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
		want map[string][]string
	}{
		{"a records conf1→svc", func() error { return a.add([]string{"svc"}, "conf1") },
			map[string][]string{"svc": {"conf1"}}},
		{"b records conf2→svc and conf2→db", func() error { return b.add([]string{"svc", "db"}, "conf2") },
			map[string][]string{"svc": {"conf1", "conf2"}, "db": {"conf2"}}},
		{"a delivers the refresh it knew of", func() error { return a.clear("svc", []string{"conf1"}) },
			map[string][]string{"svc": {"conf2"}, "db": {"conf2"}}},
		{"b delivers its own", func() error { return b.clear("svc", b.notifiers("svc")) },
			map[string][]string{"db": {"conf2"}}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		c, err := loadPending(dir, "web", true)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(c.owed, s.want, slices.Equal) {
			t.Fatalf("after %s: on disk %v, want %v", s.name, c.owed, s.want)
		}
	}
}
