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

// The watch's exchange policy: host4 exports a command's output (known on
// the target only), a literal, and a file resource; host5 collects the
// value into a file and realizes the resource; host6 collects a value
// nobody exports, so no change of host4's concerns it.
func watchXchPolicy(addr, res string) string {
	return `
inv = inventory("inventory.toml")
def main(host):
    if host.name == "host4":
        c = exec("addr", command = "echo ` + addr + `")
        export("addr", c.stdout)
        export_resource("file", "/tmp/xw-res", tag = "xw", content = "` + res + `\n")
    if host.name == "host5":
        vals = collect("addr")
        file("/tmp/xw-peers", content = "".join(["%s=%s;" % (h, vals[h].strip()) for h in sorted(vals)]))
        collect_resources(kind = "file", tag = "xw")
    if host.name == "host6":
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
// it: a policy edit that changes host4's command (its exported output)
// and its exported resource, and then a value another controller writes
// into the shared etcd, each give host5 a new plan of just the affected
// resources, with an event naming the exporter; host6, which collects
// something else, receives nothing.
func TestWatchExchangePushesChangedExports(t *testing.T) {
	l := flatLab(t)
	names := []string{"host4", "host5", "host6"}
	for _, n := range names {
		l.Host(n).Exec(context.Background(), "rm", "-f", "/tmp/xw-peers", "/tmp/xw-res", "/tmp/xw-other")
	}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": names}),
		"site.star":      watchXchPolicy("10.0.0.1", "r1"),
	})
	etcdDir := filepath.Join(t.TempDir(), "etcd")
	w := startWatchWith(t, dir, push.WatchOptions{}, func(o *push.Options) {
		o.Exchange = func(ctx context.Context) (*exchange.Store, error) {
			return exchange.Open(ctx, exchange.Config{DataDir: etcdDir, Cluster: "t"})
		}
	})
	h5 := l.Host("host5")
	// host4's output is known once its command ran: host5 first converges
	// without it, then gets it from the store.
	waitFile(t, w, h5, "/tmp/xw-peers", "host4=10.0.0.1;", 30*time.Second)
	waitFile(t, w, h5, "/tmp/xw-res", "r1\n", 5*time.Second)
	w.waitConverged(t, names...)

	// A policy edit: host4's command and exported resource change.
	mark := w.mark()
	os.WriteFile(filepath.Join(dir, "site.star"), []byte(watchXchPolicy("10.0.0.2", "r2")), 0o644)
	saved := time.Now()
	w.changes <- "site.star"
	waitFile(t, w, h5, "/tmp/xw-peers", "host4=10.0.0.2;", 10*time.Second)
	waitFile(t, w, h5, "/tmp/xw-res", "r2\n", 5*time.Second)
	conv := w.waitConverged(t, names...)
	t.Logf("policy save to host5 converged with host4's new export: %v", conv.Sub(saved).Round(time.Millisecond))
	edit := w.since(mark)
	if !hasLog(edit, "host5", "collected value from host4 changed") {
		t.Errorf("no event on host5 naming host4:\n%s", dumpEvents(edit))
	}
	if onHost(edit, "host6") != 0 {
		t.Errorf("host6 collects nothing of host4's but heard of the edit:\n%s", dumpEvents(edit))
	}

	// Another controller's run writes host10's export of addr into the
	// same cluster: host5 collects it too.
	mark = w.mark()
	other, err := exchange.Open(context.Background(), exchange.Config{Endpoints: []string{"unix://" + etcdDir + "/client.sock"}, Cluster: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	data, _ := json.Marshal("10.9.9.9")
	put := time.Now()
	err = other.Publish(context.Background(), "host10", "xw", []exchange.Entry{{Kind: exchange.KindValue, Name: "addr", Host: "host10", Role: "xw", Run: "other-controller", Time: put, Data: data}}, false)
	if err != nil {
		t.Fatal(err)
	}
	got := waitFile(t, w, h5, "/tmp/xw-peers", "host10=10.9.9.9;host4=10.0.0.2;", 10*time.Second)
	conv = w.waitConverged(t, names...)
	t.Logf("another controller's put to host5's file updated: %v, converged: %v", got.Sub(put).Round(time.Millisecond), conv.Sub(put).Round(time.Millisecond))
	ext := w.since(mark)
	if !hasLog(ext, "host5", "collected value from host10 changed") {
		t.Errorf("no event on host5 naming host10:\n%s", dumpEvents(ext))
	}
	for _, h := range []string{"host4", "host6"} {
		if onHost(ext, h) != 0 {
			t.Errorf("%s heard of host10's export:\n%s", h, dumpEvents(ext))
		}
	}
	if b, _ := l.Host("host6").ReadFile("/tmp/xw-res"); b != nil {
		t.Errorf("host6 realized host4's exported resource")
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
