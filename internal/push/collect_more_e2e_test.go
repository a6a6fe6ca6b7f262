package push_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
)

// A template iterates over collect()'s dict (host → value) whose values
// only exist once each host generated its id on its target: rendered on
// the controller with the values left out, filled on each target once
// they came. Nested inside vars (a list in a dict) works too. The second
// run changes nothing.
func TestExchangeTemplateOverCollected(t *testing.T) {
	l := flatLab(t)
	hosts := []string{"host4", "host5", "host6"}
	for _, h := range hosts {
		l.Host(h).Exec(context.Background(), "rm", "-rf", "/etc/ext")
	}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": hosts}),
		"peers.tmpl": `# peers of {{.host.name}}
{{range $h, $id := .vars.peers}}peer {{$h}} {{$id}}
{{end}}first {{index .vars.cfg.first 0}}
`,
		"site.star": `
inv = inventory("inventory.toml")
def main(host):
    directory("/etc/ext")
    gen = exec("gen", command = "od -An -N8 -tx1 /dev/urandom | tr -d ' \\n' > /etc/ext/id && cat /etc/ext/id",
               creates = "/etc/ext/id")
    export("id", gen.stdout)
    peers = collect("id", hosts = inv.hosts, collect_timeout = 30)
    template("/etc/ext/peers.conf", src = "peers.tmpl", vars = {"peers": peers, "cfg": {"first": [peers["host4"]]}})
role("ext", hosts = inv.hosts, main = main)
`})
	etcdDir := filepath.Join(t.TempDir(), "etcd")
	pol := load(t, dir)
	for i, wantChanged := range []bool{true, false} {
		rec := &recorder{}
		c := total(run(t, pol, withExchange(options(t, l, rec), etcdDir)))
		if c.Failed != 0 || c.Unreachable != 0 || (c.Changed > 0) != wantChanged {
			t.Fatalf("run %d: %+v, want changes=%v\n%s", i+1, c, wantChanged, rec.dump())
		}
	}
	id := map[string]string{}
	for _, h := range hosts {
		id[h] = readOn(t, l.Host(h), "/etc/ext/id")
		if len(id[h]) != 16 {
			t.Fatalf("%s's id %q", h, id[h])
		}
	}
	for _, h := range hosts {
		want := "# peers of " + h + "\n"
		for _, o := range hosts {
			want += "peer " + o + " " + id[o] + "\n"
		}
		want += "first " + id["host4"] + "\n"
		if got := readOn(t, l.Host(h), "/etc/ext/peers.conf"); got != want {
			t.Fatalf("%s's peers.conf:\n%s\nwant:\n%s", h, got, want)
		}
	}
}

// With serial=2 a host waits for its batch's hosts but not for hosts of
// later batches, which
// cannot have exported yet: it says so at once, naming them and "later
// serial batch" (check mode too), and uses what an earlier run stored. The
// proof is in the events (no wait for them, and every wait short against
// collect_timeout = 30 s), with a loose bound on the whole run.
func TestExchangeSerialLaterBatches(t *testing.T) {
	l := flatLab(t)
	hosts := []string{"host7", "host8", "host9"}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": hosts}),
		"site.star": `
inv = inventory("inventory.toml")
def main(host):
    gen = exec("gen", command = "echo v-" + host.name, changes = False)
    export("v", gen.stdout)
    content = ""
    for h, v in sorted(collect("v", hosts = inv.hosts, collect_timeout = 30).items()):
        content += h + "=" + v
    file("/tmp/exs-serial", content = content)
role("ser", hosts = inv.hosts, main = main, serial = 2)
`})
	etcdDir := filepath.Join(t.TempDir(), "etcd")
	pol := load(t, dir)

	rec := &recorder{}
	o := withExchange(options(t, l, rec), etcdDir)
	o.Check = true
	run(t, pol, o)
	if !strings.Contains(rec.dump(), `host7 changed file:/tmp/exs-serial may change: would wait for host7's export "v", host8's export "v"; would not wait for host9's export "v" (later serial batch; using nothing)`) {
		t.Fatalf("check mode does not name the later batches:\n%s", rec.dump())
	}

	for i, want := range []map[string]string{
		// First run: nothing stored; each host has the earlier batches'
		// values, and nothing for the later ones.
		{"host7": "host7=v-host7\nhost8=v-host8\nhost9=", "host8": "host7=v-host7\nhost8=v-host8\nhost9=", "host9": "host7=v-host7\nhost8=v-host8\nhost9=v-host9\n"},
		// Second run: the later batches' values come from the first run.
		{"host7": "host7=v-host7\nhost8=v-host8\nhost9=v-host9\n"},
	} {
		rec := &recorder{}
		start := time.Now()
		c := total(run(t, pol, withExchange(options(t, l, rec), etcdDir)))
		took := time.Since(start)
		if c.Failed != 0 || c.Unreachable != 0 {
			t.Fatalf("run %d: %+v\n%s", i+1, c, rec.dump())
		}
		for h, w := range want {
			if got := readOn(t, l.Host(h), "/tmp/exs-serial"); got != w {
				t.Fatalf("run %d: %s's file %q, want %q\n%s", i+1, h, got, w, rec.dump())
			}
		}
		for _, h := range []string{"host7", "host8"} {
			if hasWait(rec, h, "host9:v") {
				t.Fatalf("run %d: %s waited for host9, of a later batch:\n%s", i+1, h, rec.dump())
			}
			if i == 0 && !hasEvent(rec, h, event.Wait, `missing: host9's "v" (later serial batch; using nothing)`) {
				t.Fatalf("%s does not say at once that host9 runs later:\n%s", h, rec.dump())
			}
		}
		if i == 0 && !hasWait(rec, "host7", "host8:v") {
			t.Fatalf("host7 did not wait for host8, of its own batch:\n%s", rec.dump())
		}
		for _, w := range waited(rec) {
			if w > 10*time.Second {
				t.Fatalf("run %d: a wait took %v:\n%s", i+1, w, rec.dump())
			}
		}
		if took > 28*time.Second {
			t.Fatalf("run %d took %v: someone waited for collect_timeout", i+1, took)
		}
		t.Logf("run %d: %v", i+1, took.Round(time.Millisecond))
	}
}

func hasEvent(rec *recorder, host string, typ event.Type, msg string) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.events {
		if e.Host == host && e.Type == typ && strings.Contains(e.Msg, msg) {
			return true
		}
	}
	return false
}
