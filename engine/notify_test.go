package engine

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/herd-project/herd/event"
	"github.com/herd-project/herd/plan"
)

// pendingOnDisk reads the pending refreshes the way the next run will.
func pendingOnDisk(t *testing.T, h *harness) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(pendingPath(h.stateDir, "web"))
	if os.IsNotExist(err) {
		return map[string][]string{}
	}
	if err != nil {
		t.Fatal(err)
	}
	var f pendingFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("pending file: %v", err)
	}
	return f.Pending
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name        string
		rs          []plan.Resource
		wantRefresh int
		wantSvc     string
	}{
		{"a change refreshes the target once",
			[]plan.Resource{
				with(r("step", "conf1", "changed", true), notify("test_handler:svc")),
				with(r("step", "conf2", "changed", true), notify("test_handler:svc")),
				r("handler", "svc"),
			}, 1, "changed: reloaded svc"},
		{"no change, no refresh",
			[]plan.Resource{
				with(r("step", "conf"), notify("test_handler:svc")),
				r("handler", "svc"),
			}, 0, "ok: "},
		{"a kind without a refresh action just acknowledges it",
			[]plan.Resource{
				with(r("step", "conf", "changed", true), notify("test_step:plain")),
				r("step", "plain"),
			}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			_, events := h.run(context.Background(), h.plan(tt.rs...), Options{})
			if n := h.rec.count("refresh svc"); n != tt.wantRefresh {
				t.Errorf("svc refreshed %d times, want %d", n, tt.wantRefresh)
			}
			if tt.wantSvc != "" {
				if got := outcome(events)["test_handler:svc"]; got != tt.wantSvc {
					t.Errorf("svc = %q, want %q", got, tt.wantSvc)
				}
			}
			if p := pendingOnDisk(t, h); len(p) != 0 {
				t.Errorf("pending after a complete run: %v", p)
			}
		})
	}
}

func TestRefreshEventNamesNotifiersAndEnvSaysRefreshed(t *testing.T) {
	h := newHarness(t)
	_, events := h.run(context.Background(), h.plan(
		with(r("step", "conf", "changed", true), notify("test_handler:svc")),
		r("handler", "svc", "stdout", "reload output"),
	), Options{})
	ref := ofType(events, event.Refresh, "test_handler:svc")
	if len(ref) != 1 || ref[0].Msg != "reloaded svc (notified by test_step:conf)" || ref[0].Stdout != "reload output" {
		t.Fatalf("refresh events = %+v", ref)
	}
	if h.rec.count("refreshed-env svc") != 1 {
		t.Errorf("svc's Env.Refreshed was not set: %q", h.rec.Calls())
	}
	if ch := ofType(events, event.Changed, "test_handler:svc"); len(ch) != 1 || ch[0].Stdout != "" {
		t.Errorf("terminal event repeats the refresh output: %+v", ch)
	}
}

func TestPendingRefreshSurvivesAStoppedRunAndIsDeliveredNext(t *testing.T) {
	tests := []struct {
		name    string
		between plan.Resource // runs after conf and before svc in run 1
		cancel  bool          // cancel run 1 while between runs
		wantSvc string
	}{
		{"a failure between notifier and target", r("step", "between", "fail", "check"), false,
			"skipped: dependency failed: test_step:between"},
		{"a cancel between notifier and target", r("step", "between", "sleep", "5s"), true,
			"skipped: run cancelled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			// Run 1: conf changes, then the run stops before svc.
			_, events := h.run(ctx, h.plan(
				with(r("step", "conf", "changed", true), notify("test_handler:svc")),
				with(tt.between, after("test_step:conf")),
				with(r("handler", "svc"), after("test_step:between")),
			), Options{})
			if got := outcome(events)["test_handler:svc"]; got != tt.wantSvc {
				t.Fatalf("run 1: svc = %q, want %q", got, tt.wantSvc)
			}
			if got, want := pendingOnDisk(t, h), map[string][]string{"test_handler:svc": {"test_step:conf"}}; !maps.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("run 1 left pending %v, want %v", got, want)
			}

			// Run 2, a fresh plan in which nothing changes: the refresh
			// still owed from run 1 is delivered.
			_, events = h.run(context.Background(), h.plan(
				with(r("step", "conf"), notify("test_handler:svc")),
				with(r("step", "between"), after("test_step:conf")),
				with(r("handler", "svc"), after("test_step:between")),
			), Options{})
			if h.rec.count("refresh svc") != 1 {
				t.Fatalf("run 2 did not refresh svc: %q", h.rec.Calls())
			}
			if got := outcome(events)["test_handler:svc"]; got != "changed: reloaded svc" {
				t.Errorf("run 2: svc = %q", got)
			}
			if _, err := os.Stat(pendingPath(h.stateDir, "web")); !os.IsNotExist(err) {
				t.Errorf("pending file left after everything was delivered (stat: %v)", err)
			}
		})
	}
}

func TestFailedRefreshStaysPending(t *testing.T) {
	h := newHarness(t)
	_, events := h.run(context.Background(), h.plan(
		with(r("step", "conf", "changed", true), notify("test_handler:svc")),
		r("handler", "svc", "fail", "refresh", "fail_msg", "reload refused"),
	), Options{})
	if got := outcome(events)["test_handler:svc"]; got != "failed: refresh (notified by test_step:conf): reload refused" {
		t.Errorf("svc = %q", got)
	}
	if got := pendingOnDisk(t, h); len(got["test_handler:svc"]) != 1 {
		t.Errorf("pending = %v, want the refresh kept", got)
	}
}

func TestPendingForAResourceNoLongerInThePlanIsDroppedVisibly(t *testing.T) {
	h := newHarness(t)
	h.run(context.Background(), h.plan(
		with(r("step", "conf", "changed", true), notify("test_handler:old")),
		with(r("step", "broken", "fail", "check"), after("test_step:conf")),
		with(r("handler", "old"), after("test_step:broken")),
	), Options{})
	_, events := h.run(context.Background(), h.plan(r("step", "conf")), Options{})
	var logs []string
	for _, e := range events {
		if e.Type == event.Log {
			logs = append(logs, e.Msg)
		}
	}
	want := []string{"pending refresh of test_handler:old (from test_step:conf) dropped: test_handler:old is not in this plan"}
	if !slices.Equal(logs, want) {
		t.Errorf("log events = %q, want %q", logs, want)
	}
	if p := pendingOnDisk(t, h); len(p) != 0 {
		t.Errorf("pending = %v, want it dropped", p)
	}
}

func TestRolesKeepSeparatePendingRefreshes(t *testing.T) {
	tests := []struct{ role, file string }{
		{"web", "notify-web.json"},
		{"db_primary-1.x", "notify-db_primary-1.x.json"},
		{"../../etc", "notify-x2e2e2f2e2e2f657463.json"},
		{"", "notify-x.json"},
	}
	for _, tt := range tests {
		if got := filepath.Base(pendingPath("/state", tt.role)); got != tt.file {
			t.Errorf("pending file of role %q = %q, want %q", tt.role, got, tt.file)
		}
		if dir := filepath.Dir(pendingPath("/state", tt.role)); dir != "/state" {
			t.Errorf("pending file of role %q is outside the state dir: %s", tt.role, dir)
		}
	}
}

func TestCheckModeChangesNothing(t *testing.T) {
	h := newHarness(t)
	// Leave a pending refresh from an earlier apply run.
	h.run(context.Background(), h.plan(
		with(r("step", "conf", "changed", true), notify("test_handler:svc")),
		with(r("step", "broken", "fail", "check"), after("test_step:conf")),
		with(r("handler", "svc"), after("test_step:broken")),
		r("handler", "other"),
	), Options{})
	before := snapshot(t, h.stateDir)
	if len(before) != 1 {
		t.Fatalf("setup: want one pending file, state dir has %q", before)
	}
	callsBefore := len(h.rec.Calls())

	res, events := h.run(context.Background(), h.plan(
		with(r("step", "conf", "changed", true), notify("test_handler:other")),
		with(r("step", "broken"), after("test_step:conf")),
		with(r("handler", "svc", "changed", true), after("test_step:broken")),
		r("handler", "other"),
	), Options{Check: true})

	for _, c := range h.rec.Calls()[callsBefore:] {
		if c[:6] == "apply " || c[:8] == "refresh " {
			t.Errorf("check mode called %q", c)
		}
	}
	if after := snapshot(t, h.stateDir); !maps.Equal(before, after) {
		t.Errorf("check mode changed the state dir:\nbefore %q\nafter  %q", before, after)
	}
	for _, e := range events {
		if !e.Check {
			t.Errorf("event without Check in check mode: %+v", e)
		}
	}
	want := map[string]string{
		"test_step:conf":     "changed: would set conf",
		"test_step:broken":   "ok: ",
		"test_handler:svc":   "changed: would set svc",
		"test_handler:other": "changed: would refresh", // as apply counts its refresh
	}
	if got := outcome(events); !maps.Equal(got, want) {
		t.Errorf("outcomes:\n got %q\nwant %q", got, want)
	}
	for id, from := range map[string]string{"test_handler:svc": "test_step:conf", "test_handler:other": "test_step:conf"} {
		ref := ofType(events, event.Refresh, id)
		if len(ref) != 1 || ref[0].Msg != "would refresh (notified by "+from+")" {
			t.Errorf("%s refresh events = %+v, want one \"would refresh\"", id, ref)
		}
	}
	if res.Counts.Changed != 3 || res.Failed {
		t.Errorf("result = %+v", res)
	}
}

func TestCheckModeDoesNotCreateTheStateDir(t *testing.T) {
	h := newHarness(t)
	dir := filepath.Join(t.TempDir(), "state")
	h.run(context.Background(), h.plan(with(r("step", "a", "changed", true), notify("test_handler:b")), r("handler", "b")),
		Options{Check: true, StateDir: dir})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("check mode created %s (stat: %v)", dir, err)
	}
	h.run(context.Background(), h.plan(r("step", "a")), Options{StateDir: dir})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("apply mode did not create the state dir: %v", err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", fi.Mode().Perm())
	}
}

// snapshot maps every file under dir to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWhenFalseTargetKeepsItsPendingRefresh(t *testing.T) {
	h := newHarness(t)
	_, events := h.run(context.Background(), h.plan(
		with(r("step", "conf", "changed", true), notify("test_handler:svc")),
		with(r("handler", "svc"), meta(plan.Meta{Skip: true})),
	), Options{})
	if got := outcome(events)["test_handler:svc"]; got != "skipped: when is false; its pending refresh is kept for a later run" {
		t.Errorf("svc = %q", got)
	}
	if h.rec.count("refresh svc") != 0 || len(pendingOnDisk(t, h)["test_handler:svc"]) != 1 {
		t.Errorf("refresh delivered to a when=False resource or lost: calls %q, pending %v", h.rec.Calls(), pendingOnDisk(t, h))
	}
}
