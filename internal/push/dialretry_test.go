package push_test

import (
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
)

// A host whose sshd is down for a moment at first contact (restarting,
// or refusing while busy) is retried with back-off, the retry is told in
// the event stream, and the host is configured, not failed unreachable.
func TestHostWhoseSSHDComesBackIsRetriedNotUnreachable(t *testing.T) {
	l := flatLab(t)
	h := l.Host("host9")
	if err := h.StopSSHD(); err != nil {
		t.Fatal(err)
	}
	restarted := make(chan error, 1)
	time.AfterFunc(700*time.Millisecond, func() { restarted <- h.StartSSHD() })
	t.Cleanup(func() {
		if err := <-restarted; err != nil {
			t.Errorf("restart sshd: %v", err)
		}
	})
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"all": {"host9"}}),
		"site.star": `
inv = inventory("inventory.toml")
def main(host):
    file("/srv/herd-retry", content = "back\n")
role("r", hosts = inv.hosts, main = main)
`,
	})
	rec := &recorder{}
	res := run(t, load(t, dir), options(t, l, rec))
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("the host failed although its sshd came back:\n%s", rec.dump())
	}
	if got, _ := h.ReadFile("/srv/herd-retry"); string(got) != "back\n" {
		t.Errorf("file = %q", got)
	}
	retries := 0
	rec.mu.Lock()
	for _, e := range rec.events {
		if e.Type == event.Retry && e.Host == "host9" && strings.Contains(e.Msg, "connection refused") && strings.Contains(e.Msg, "attempt 2 of") {
			retries++
		}
	}
	rec.mu.Unlock()
	if retries != 1 {
		t.Errorf("%d retry events for the first retry, want 1:\n%s", retries, rec.dump())
	}
}
