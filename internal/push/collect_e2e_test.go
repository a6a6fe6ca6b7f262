package push_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/push"
)

// The keypair example in ONE role: each host generates a key pair on the
// target and exports the public half, and collects the others' into a
// peers file in the same role. host3 generates its key 2 s late, so the
// others' peers files must wait for it on their targets (a cross-host
// edge: a wait event naming host3:pubkey, "would wait" in check mode).
// The second run changes nothing (no key is regenerated: the exports keep
// their earlier values, and the waiters hear so at once). A run without
// host3 still lists host3's earlier key.
func TestExchangeSameRoleWaitsForDeferredExports(t *testing.T) {
	l := flatLab(t)
	hosts := []string{"host1", "host2", "host3"}
	for _, h := range hosts {
		l.Host(h).Exec(context.Background(), "rm", "-rf", "/etc/exm")
	}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": hosts}),
		"site.star": `
inv = inventory("inventory.toml")
def mesh(host):
    directory("/etc/exm", mode = 0o700)
    late = "sleep 2 && " if host.name == "host3" else ""
    gen = exec("keygen", command = late + "ssh-keygen -q -t ed25519 -N '' -C " + host.name + " -f /etc/exm/id && cat /etc/exm/id.pub",
               creates = "/etc/exm/id")
    export("pubkey", gen.stdout)
    content = "# peers\n"
    for h, key in sorted(collect("pubkey", hosts = inv.hosts, collect_timeout = 30).items()):
        if h != host.name:
            content += h + " " + key
    file("/etc/exm/peers", content = content)
role("mesh", hosts = inv.hosts, main = mesh)
`})
	etcdDir := filepath.Join(t.TempDir(), "etcd")
	pol := load(t, dir)

	// Check mode: nothing is exported, so nothing waits; it says it would.
	rec := &recorder{}
	o := withExchange(options(t, l, rec), etcdDir)
	o.Check = true
	run(t, pol, o)
	if !strings.Contains(rec.dump(), `host1 changed file:/etc/exm/peers may change: would wait for host2's export "pubkey", host3's export "pubkey"`) {
		t.Fatalf("check mode does not say it would wait for host3:\n%s", rec.dump())
	}
	if _, err := l.Host("host1").ReadFile("/etc/exm/peers"); err == nil {
		t.Fatal("check mode wrote the peers file")
	}

	var took [2]time.Duration
	for i, wantChanged := range []bool{true, false} {
		rec := &recorder{}
		start := time.Now()
		res := run(t, pol, withExchange(options(t, l, rec), etcdDir))
		took[i] = time.Since(start)
		c := total(res)
		if c.Failed != 0 || c.Unreachable != 0 || (c.Changed > 0) != wantChanged {
			t.Fatalf("run %d: %+v, want changes=%v\n%s", i+1, c, wantChanged, rec.dump())
		}
		if i == 0 && !hasWait(rec, "host1", "host3:pubkey") {
			t.Fatalf("no wait event of host1 for host3:pubkey:\n%s", rec.dump())
		}
		if got := readOn(t, l.Host("host1"), "/etc/exm/peers"); i == 0 && !strings.Contains(got, "host3 ssh-ed25519 ") {
			t.Fatalf("first run: host1 did not wait for host3's late key:\n%s\n%s", got, rec.dump())
		}
		if i == 1 && !strings.Contains(rec.dump(), "not exported in this run; using its earlier value") {
			t.Fatalf("second run: the waiters were not told the keys keep their earlier values:\n%s", rec.dump())
		}
		if i == 1 {
			// Told at once, not after collect_timeout (30 s).
			for _, w := range waited(rec) {
				if w > 10*time.Second {
					t.Fatalf("second run: a wait took %v:\n%s", w, rec.dump())
				}
			}
		}
	}
	t.Logf("first run %v, second run %v", took[0].Round(time.Millisecond), took[1].Round(time.Millisecond))
	pub := map[string]string{}
	for _, h := range hosts {
		pub[h] = strings.TrimSpace(readOn(t, l.Host(h), "/etc/exm/id.pub"))
	}
	for _, h := range hosts {
		got := readOn(t, l.Host(h), "/etc/exm/peers")
		for _, o := range hosts {
			if has := strings.Contains(got, o+" "+pub[o]+"\n"); has != (o != h) {
				t.Fatalf("%s's peers (listing %s: %v):\n%s", h, o, has, got)
			}
		}
	}

	// host3 leaves the run; host2 gets a new key. host1 waits for host2's
	// new key only and keeps host3's earlier one.
	l.Host("host2").Exec(context.Background(), "rm", "-f", "/etc/exm/id", "/etc/exm/id.pub")
	rec = &recorder{}
	o = withExchange(options(t, l, rec), etcdDir)
	o.Limit = push.Limit{Hosts: []string{"host1", "host2"}}
	if c := total(run(t, pol, o)); c.Failed != 0 {
		t.Fatalf("limited run: %+v\n%s", c, rec.dump())
	}
	newKey := strings.TrimSpace(readOn(t, l.Host("host2"), "/etc/exm/id.pub"))
	got := readOn(t, l.Host("host1"), "/etc/exm/peers")
	if newKey == pub["host2"] || !strings.Contains(got, "host2 "+newKey+"\n") || !strings.Contains(got, "host3 "+pub["host3"]+"\n") {
		t.Fatalf("host1's peers after the limited run:\n%s\nwant host2's new key %q and host3's earlier %q", got, newKey, pub["host3"])
	}
	if hasWait(rec, "host1", "host3:pubkey") {
		t.Fatalf("host1 waited for host3, which is not in the run:\n%s", rec.dump())
	}
}

// An export that comes too late: the collecting resource runs after its
// collect_timeout with what exists and names the missing host; the late
// host's own role is unaffected.
func TestExchangeCollectTimeout(t *testing.T) {
	l := flatLab(t)
	hosts := []string{"host1", "host2"}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": hosts}),
		"site.star": `
inv = inventory("inventory.toml")
def main(host):
    late = exec("late", command = "sleep 4; echo " + host.name) if host.name == "host2" else None
    if late:
        export("name", late.stdout)
    content = ""
    for h, v in sorted(collect("name", hosts = inv.hosts, collect_timeout = "1s").items()):
        content += h + "=" + v
    file("/tmp/exm-timeout", content = content + "end\n")
role("late", hosts = inv.hosts, main = main)
`})
	rec := &recorder{}
	start := time.Now()
	res := run(t, load(t, dir), withExchange(options(t, l, rec), filepath.Join(t.TempDir(), "etcd")))
	if c := total(res); c.Failed != 0 || c.Unreachable != 0 {
		t.Fatalf("%+v\n%s", c, rec.dump())
	}
	if got, err := l.Host("host1").ReadFile("/tmp/exm-timeout"); err != nil || string(got) != "host2=end\n" {
		t.Fatalf("host1's file %q %v, want host2's value missing\n%s", got, err, rec.dump())
	}
	if !strings.Contains(rec.dump(), `missing: host2's "name" (not within 1s; using nothing)`) {
		t.Fatalf("the missing host is not named:\n%s", rec.dump())
	}
	t.Logf("run took %v", time.Since(start).Round(time.Millisecond))
}

// waited returns how long each wait of the run took ("collected N of M
// after D" events).
func waited(rec *recorder) []time.Duration {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []time.Duration
	for _, e := range rec.events {
		if _, rest, ok := strings.Cut(e.Msg, " after "); ok && strings.HasPrefix(e.Msg, "collected ") {
			d, err := time.ParseDuration(strings.SplitN(rest, ";", 2)[0])
			if err == nil {
				out = append(out, d)
			}
		}
	}
	return out
}

func hasWait(rec *recorder, host, edge string) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.events {
		if e.Type == event.Wait && e.Host == host {
			for _, w := range e.Waits {
				if w == edge {
					return true
				}
			}
		}
	}
	return false
}
