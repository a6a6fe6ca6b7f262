package push_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/push"
)

// A resource removed from the policy is dropped from the agent's plan:
// what it managed stays on the host (nothing is deleted without
// state="absent") and is no longer watched, while the resources that
// remain are still repaired.
func TestWatchRemovedResourceIsDropped(t *testing.T) {
	l := flatLab(t)
	both := `
inv = inventory("inventory.toml")
def main(host):
    file("/root/watchrm/kept", content = "kept\n")
    file("/root/watchrm/dropped", content = "dropped\n")
role("w", hosts = inv.hosts, main = main)
`
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host7"}}),
		"site.star":      both,
	})
	h := l.Host("host7")
	h.Exec(context.Background(), "mkdir", "-p", "/root/watchrm")
	w := startWatch(t, dir, push.WatchOptions{})
	w.waitConverged(t, "host7")

	mark := w.mark()
	os.WriteFile(filepath.Join(dir, "site.star"), []byte(strings.Replace(both, "    file(\"/root/watchrm/dropped\", content = \"dropped\\n\")\n", "", 1)), 0o644)
	w.changes <- "site.star"
	var msg string
	for deadline := time.Now().Add(10 * time.Second); msg == ""; time.Sleep(20 * time.Millisecond) {
		for _, e := range w.since(mark) {
			if e.Type == event.Log && strings.Contains(e.Msg, "new plan after") {
				msg = e.Msg
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new plan:\n%s", w.rec.dump())
		}
	}
	if !strings.Contains(msg, "0 to run, 1 removed") {
		t.Errorf("new plan: %q, want 0 to run, 1 removed", msg)
	}
	time.Sleep(300 * time.Millisecond)
	w.waitConverged(t, "host7")
	if b, err := h.ReadFile("/root/watchrm/dropped"); string(b) != "dropped\n" {
		t.Fatalf("the dropped resource's file = %q, %v: it must stay", b, err)
	}

	mark = w.mark()
	os.WriteFile(h.Path("/root/watchrm/dropped"), []byte("mine now\n"), 0o644)
	os.WriteFile(h.Path("/root/watchrm/kept"), []byte("tampered\n"), 0o644)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := h.ReadFile("/root/watchrm/kept"); string(b) == "kept\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kept file was not repaired:\n%s", w.rec.dump())
		}
	}
	time.Sleep(500 * time.Millisecond) // the watcher's debounce for both edits has passed
	if b, _ := h.ReadFile("/root/watchrm/dropped"); string(b) != "mine now\n" {
		t.Errorf("the dropped file was touched after it left the policy: %q", b)
	}
	for _, e := range w.since(mark) {
		if strings.Contains(e.Resource+e.Msg, "/root/watchrm/dropped") {
			t.Errorf("event about the dropped file: %s %s %s", e.Type, e.Resource, e.Msg)
		}
	}
}
