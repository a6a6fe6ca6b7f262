package push_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/exchange"
	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/push"
)

// The watch's exchange policy: host7 exports a command's output (known on
// the target only) and a file resource; host8 collects the
// value into a file and realizes the resource; host9 collects a value
// nobody exports, so no change of host7's concerns it.
func watchXchPolicy(addr, res string) string {
	return `
inv = inventory("inventory.toml")
def main(host):
    if host.name == "host7":
        c = exec("addr", command = "echo ` + addr + `")
        export("addr", c.stdout)
        export_resource("file", "/tmp/xw-res", tag = "xw", content = "` + res + `\n")
    if host.name == "host8":
        vals = collect("addr")
        file("/tmp/xw-peers", content = "".join(["%s=%s;" % (h, vals[h].strip()) for h in sorted(vals)]))
        collect_resources(kind = "file", tag = "xw")
    if host.name == "host9":
        vals = collect("unrelated")
        file("/tmp/xw-other", content = "%d\n" % len(vals))
role("xw", hosts = inv.hosts, main = main)
`
}

// waitFile waits, at most d, until path on h reads want.
func waitFile(t *testing.T, w *watchRun, h *lab.Host, path, want string, d time.Duration) time.Time {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, _ := h.ReadFile(path); string(b) == want {
			return time.Now()
		}
	}
	b, _ := h.ReadFile(path)
	t.Fatalf("%s:%s = %q, want %q within %v\n%s", h.Name, path, b, want, d, w.rec.dump())
	return time.Time{}
}

// During a watch, a changed export reaches the collecting host, and only
// it: a policy edit that changes host7's command (its exported output)
// and its exported resource, and then a value another controller writes
// into the shared etcd, each give host8 a new plan of just the affected
// resources, with an event naming the exporter; host9, which collects
// something else, receives nothing.
func TestWatchExchangePushesChangedExports(t *testing.T) {
	l := flatLab(t)
	names := []string{"host7", "host8", "host9"}
	for _, n := range names {
		l.Host(n).Exec(context.Background(), "rm", "-f", "/tmp/xw-peers", "/tmp/xw-res", "/tmp/xw-other")
	}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": names}),
		"site.star":      watchXchPolicy("10.0.0.1", "r1"),
	})
	etcdDir := filepath.Join(t.TempDir(), "etcd")
	started := time.Now()
	w := startWatchWith(t, dir, push.WatchOptions{}, func(o *push.Options) {
		o.Exchange = embeddedAt(etcdDir)
	})
	h8 := l.Host("host8")
	// host7's output is known once its command ran: host8 first converges
	// without it, then gets it from the store.
	waitFile(t, w, h8, "/tmp/xw-peers", "host7=10.0.0.1;", 30*time.Second)
	waitFile(t, w, h8, "/tmp/xw-res", "r1\n", 5*time.Second)
	w.waitConverged(t, names...)
	t.Logf("initial convergence with host7's export: %v", time.Since(started).Round(time.Millisecond))

	// A policy edit: host7's command changes, so does its output.
	mark := w.mark()
	os.WriteFile(filepath.Join(dir, "site.star"), []byte(watchXchPolicy("10.0.0.2", "r1")), 0o644)
	saved := time.Now()
	w.changes <- "site.star"
	waitFile(t, w, h8, "/tmp/xw-peers", "host7=10.0.0.2;", 10*time.Second)
	conv := w.waitConverged(t, names...)
	t.Logf("policy save to host8 converged with host7's new export: %v", conv.Sub(saved).Round(time.Millisecond))
	edit := w.since(mark)
	if !hasLog(edit, "host8", "collected value from host7 changed") {
		t.Errorf("no event on host8 naming host7:\n%s", dumpEvents(edit))
	}
	if onHost(edit, "host9") != 0 {
		t.Errorf("host9 collects nothing of host7's but heard of the edit:\n%s", dumpEvents(edit))
	}

	// Another controller's run writes host12's export of addr into the
	// same cluster: host8 collects it too.
	mark = w.mark()
	other, err := externalAt(etcdDir)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	data, _ := json.Marshal("10.9.9.9")
	put := time.Now()
	err = other.Publish(context.Background(), "host12", "xw", []exchange.Entry{{Kind: exchange.KindValue, Name: "addr", Host: "host12", Role: "xw", Run: "other-controller", Time: put, Data: data}}, false)
	if err != nil {
		t.Fatal(err)
	}
	got := waitFile(t, w, h8, "/tmp/xw-peers", "host12=10.9.9.9;host7=10.0.0.2;", 10*time.Second)
	conv = w.waitConverged(t, names...)
	t.Logf("another controller's put to host8's file updated: %v, converged: %v", got.Sub(put).Round(time.Millisecond), conv.Sub(put).Round(time.Millisecond))
	ext := w.since(mark)
	if !hasLog(ext, "host8", "collected value from host12 changed") {
		t.Errorf("no event on host8 naming host12:\n%s", dumpEvents(ext))
	}
	for _, h := range []string{"host7", "host9"} {
		if onHost(ext, h) != 0 {
			t.Errorf("%s heard of host12's export:\n%s", h, dumpEvents(ext))
		}
	}

	// An edit of host7's exported resource only: host7's own plan is the
	// same (it receives nothing), host8 realizes the new content.
	mark = w.mark()
	os.WriteFile(filepath.Join(dir, "site.star"), []byte(watchXchPolicy("10.0.0.2", "r2")), 0o644)
	saved = time.Now()
	w.changes <- "site.star"
	waitFile(t, w, h8, "/tmp/xw-res", "r2\n", 10*time.Second)
	conv = w.waitConverged(t, names...)
	t.Logf("policy save to host8 converged with host7's new exported resource: %v", conv.Sub(saved).Round(time.Millisecond))
	res := w.since(mark)
	if !hasLog(res, "host8", "collected value from host7 changed") {
		t.Errorf("no event on host8 naming host7:\n%s", dumpEvents(res))
	}
	for _, h := range []string{"host7", "host9"} {
		if onHost(res, h) != 0 {
			t.Errorf("%s got something for an edit of host7's exported resource:\n%s", h, dumpEvents(res))
		}
	}
	if b, _ := l.Host("host9").ReadFile("/tmp/xw-res"); b != nil {
		t.Errorf("host9 realized host7's exported resource")
	}
}

func hasLog(es []event.Event, host, text string) bool {
	for _, e := range es {
		if e.Host == host && e.Type == event.Log && strings.Contains(e.Msg, text) {
			return true
		}
	}
	return false
}

func onHost(es []event.Event, host string) int {
	n := 0
	for _, e := range es {
		if e.Host == host {
			n++
		}
	}
	return n
}

func dumpEvents(es []event.Event) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.Host + " " + string(e.Type) + " " + e.Resource + " " + e.Msg + "\n")
	}
	return b.String()
}

// With a shared etcd, a watch holds its hosts' cluster-wide locks for its
// whole life. A host another controller holds when the watch starts gets
// no plan, is shown failing naming the holder, and is taken once
// released; while the watch holds it, another controller's run waits for
// it and fails naming the watch. Ctrl-C (the watch's stop) and the
// converged timeout release the locks: a run right after takes them
// within its lock wait.
func TestWatchExchangeHoldsHostLocks(t *testing.T) {
	l := flatLab(t)
	dir := oneFileProject(t, l, "/tmp/xw-locked")
	ctx := context.Background()
	etcdDir := filepath.Join(t.TempDir(), "etcd")
	shared := sharedMember(t, etcdDir)
	wait := 400 * time.Millisecond
	defer func(d time.Duration) { push.RetryMin = d }(push.RetryMin)
	push.RetryMin = 200 * time.Millisecond // the refused host is tried again sooner
	external := func(o *push.Options) {
		o.Exchange = externalAt(etcdDir)
		o.ExchangeLocks = true
		o.Defaults.LockWait = &wait
	}
	otherRun := func() *push.HostResult {
		rec := &recorder{}
		o := options(t, l, rec)
		external(&o)
		return run(t, load(t, dir), o).Hosts["host1"]
	}
	// The converged timeout first: its watch starts the agent on host1
	// (sending the binary to a fresh host), so that the watch refused by
	// alice's lock is not slowed by it.
	for _, end := range []string{"converged timeout", "ctrl-c"} {
		l.Host("host1").Exec(ctx, "rm", "-f", "/tmp/xw-locked")
		wo := push.WatchOptions{}
		var alice *exchange.Locker
		var err error
		if end == "converged timeout" {
			wo.ConvergedTimeout = 500 * time.Millisecond
		} else {
			if alice, err = shared.NewLocker(ctx, aliceHolder, 5); err != nil {
				t.Fatal(err)
			}
			if err := alice.Lock(ctx, "host1", time.Second); err != nil {
				t.Fatal(err)
			}
		}
		w := startWatchWith(t, dir, wo, external)
		if alice != nil {
			w.waitState(t, "host1", push.HostLost)
			w.mu.Lock()
			msg := w.states["host1"].Msg
			w.mu.Unlock()
			if !strings.Contains(msg, "alice@laptop-a pid 4242") || w.rec.count("host1", event.Failed) == 0 {
				t.Fatalf("host1 held by alice: state %q, want it naming her, and a failed event\n%s", msg, w.rec.dump())
			}
			if _, err := l.Host("host1").ReadFile("/tmp/xw-locked"); err == nil {
				t.Fatal("the watch changed host1 while another controller held its lock")
			}
			alice.Close()
		}
		t0 := time.Now()
		w.waitConverged(t, "host1")
		t.Logf("watch converged in %v", time.Since(t0).Round(time.Millisecond))
		if end == "ctrl-c" {
			if hr := otherRun(); !hr.Failed || !strings.Contains(hr.Err, "locked by another controller") || !strings.Contains(hr.Err, "pid") {
				t.Fatalf("a run during the watch: %+v, want it refused naming the watch", hr)
			}
			close(w.stop)
		}
		<-w.done
		ended := time.Now()
		if hr := otherRun(); hr.Failed || hr.Unreachable {
			t.Fatalf("a run right after the watch's %s: %+v", end, hr)
		}
		t.Logf("after the watch's %s, a run took the lock and applied in %v", end, time.Since(ended).Round(time.Millisecond))
	}
}
