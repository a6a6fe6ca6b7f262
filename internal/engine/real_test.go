package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
)

// TestRealFileAndExec runs the real kinds on real files: a config file that
// notifies a refresh-only command, and a file whose content is bound to a
// command's output.
func TestRealFileAndExec(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	reloads := filepath.Join(dir, "reloads")
	copyPath := filepath.Join(dir, "copy")
	state := filepath.Join(t.TempDir(), "state")

	mkPlan := func(content string) *plan.Plan {
		return &plan.Plan{Version: plan.Version, Role: "app", Resources: []plan.Resource{
			{ID: "file:" + conf, Kind: "file", Name: conf, Pos: "site.star:1:1",
				Params: plan.Params{"content": content, "mode": "0600"}, Notify: []string{"exec:reload"}},
			{ID: "exec:reload", Kind: "exec", Name: "reload", Pos: "site.star:2:1",
				Params: plan.Params{"command": "echo reloaded >> " + reloads, "refresh_only": true}},
			{ID: "exec:read", Kind: "exec", Name: "read", Pos: "site.star:3:1",
				Params: plan.Params{"argv": []string{"/bin/cat", conf}}, After: []string{"file:" + conf}},
			{ID: "file:" + copyPath, Kind: "file", Name: copyPath, Pos: "site.star:4:1",
				Bind: []plan.Binding{{Param: "content", Parts: []plan.Part{{Lit: "copy of: "}, {From: "exec:read", Field: "stdout"}}}}},
		}}
	}
	run := func(p *plan.Plan, check bool) map[string]string {
		t.Helper()
		var events []event.Event
		res, err := Run(context.Background(), p, Options{StateDir: state, Check: check, Sink: func(e event.Event) { events = append(events, e) }})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Failed {
			t.Fatalf("run failed: %+v", events)
		}
		out := outcome(events)
		for _, e := range events {
			if e.Type == event.Refresh {
				out[e.Resource+" refresh"] = e.Msg
			}
		}
		return out
	}
	read := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// First run: everything is created and the command is refreshed once.
	got := run(mkPlan("v1\n"), false)
	if !strings.HasPrefix(got["file:"+conf], "changed: ") || got["exec:reload refresh"] == "" {
		t.Fatalf("first run: %q", got)
	}
	if read(reloads) != "reloaded\n" || read(copyPath) != "copy of: v1\n" {
		t.Fatalf("first run: reloads %q, copy %q", read(reloads), read(copyPath))
	}

	// Second run: nothing changed, so no refresh.
	got = run(mkPlan("v1\n"), false)
	if got["file:"+conf] != "ok: " || got["file:"+copyPath] != "ok: " || got["exec:reload refresh"] != "" {
		t.Fatalf("second run: %q", got)
	}
	if read(reloads) != "reloaded\n" {
		t.Fatalf("second run refreshed: reloads %q", read(reloads))
	}

	// Check mode with new content: reports, changes nothing.
	got = run(mkPlan("v2\n"), true)
	if !strings.HasPrefix(got["file:"+conf], "changed: ") || !strings.HasPrefix(got["exec:reload refresh"], "would refresh") {
		t.Fatalf("check run: %q", got)
	}
	if read(conf) != "v1\n" || read(reloads) != "reloaded\n" {
		t.Fatalf("check mode changed files: conf %q, reloads %q", read(conf), read(reloads))
	}
}
