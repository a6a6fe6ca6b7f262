package push_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/push"
)

// Three roles over ten flat hosts: everything applies, files land on each
// host's own disk, and a second run changes nothing.
func TestThreeRolesOverTenHostsIsIdempotent(t *testing.T) {
	l := flatLab(t)
	names := hostNames("host", 10)
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"web": names[:6], "db": names[6:]}) +
			"[groups.web.vars]\nport = 8080\n[groups.db.vars]\nport = 5432\n",
		"motd.tmpl": "host {{ .host.name }} ({{ .facts.hostname }}) port {{ .vars.port }}\n",
		"site.star": `
inv = inventory("inventory.toml")

def base(host):
    directory("/srv/herd-test", mode = 0o755)
    template("/srv/herd-test/motd", src = "motd.tmpl", mode = 0o644)

def web(host):
    file("/srv/herd-test/web.conf", content = "listen " + str(host.vars["port"]) + "\n")
    exec("web-stamp", command = "echo web > /srv/herd-test/stamp", creates = "/srv/herd-test/stamp")

def db(host):
    pw = password("db", path = "/srv/herd-test/db.pass")
    file("/srv/herd-test/db.env", content = "PASSWORD=" + pw.value + "\n", mode = 0o600)

role("base", hosts = inv.hosts, main = base)
role("web", hosts = inv.filter(groups = "web"), main = web)
role("db", hosts = inv.filter(groups = "db"), main = db)
`,
	})
	pol := load(t, dir)

	rec := &recorder{}
	res := run(t, pol, options(t, l, rec))
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("first run failed:\n%s", rec.dump())
	}
	if got := len(res.Hosts); got != 10 {
		t.Fatalf("ran on %d hosts, want 10", got)
	}
	for i, name := range names {
		h := l.Host(name)
		motd, err := h.ReadFile("/srv/herd-test/motd")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		port := "8080"
		if i >= 6 {
			port = "5432"
		}
		if want := "host " + name + " (" + name + ") port " + port + "\n"; string(motd) != want {
			t.Errorf("%s motd = %q, want %q", name, motd, want)
		}
		_, webErr := h.ReadFile("/srv/herd-test/web.conf")
		_, dbErr := h.ReadFile("/srv/herd-test/db.env")
		if (i < 6) != (webErr == nil) || (i >= 6) != (dbErr == nil) {
			t.Errorf("%s: web.conf err=%v db.env err=%v: role hosts not respected", name, webErr, dbErr)
		}
	}
	// Nothing written on a host leaks to the controller or other hosts.
	if _, err := os.Stat("/srv/herd-test"); err == nil {
		t.Fatal("/srv/herd-test exists on the controller")
	}

	rec2 := &recorder{}
	res2 := run(t, pol, options(t, l, rec2))
	if c := total(res2); c.Changed != 0 || c.Failed != 0 || c.OK == 0 {
		t.Fatalf("second run: %+v, want changed=0\n%s", c, rec2.dump())
	}
	// The password was generated once and is never in any event.
	pw, _ := l.Host("host7").ReadFile("/srv/herd-test/db.pass")
	if len(pw) < 16 {
		t.Fatalf("password file: %q", pw)
	}
	if strings.Contains(rec.dump()+rec2.dump(), strings.TrimSpace(string(pw))) {
		t.Fatal("password appears in events")
	}
}

// OpsMop's push_demo features: filters and limits choose hosts; serial
// batches run one after the other with hooks in order; should_contact skips.
func TestSelectionBatchesAndHooks(t *testing.T) {
	l := flatLab(t)
	names := hostNames("host", 6)
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"webservers": names[:4], "dbservers": names[4:]}),
		"site.star": `
inv = inventory("inventory.toml")

def log(what):
    return lambda h: local("echo " + what + " " + h.name + " >> hooks.log")

def main(host):
    exec("mark", command = "sleep 0.2; echo " + host.name + " > /tmp/selected")

role("web", hosts = inv.filter(groups = "web*", hosts = ["host1", "host2", "host3"]), main = main, serial = 2,
     before_connect = log("before"), after_connect = log("after"),
     should_contact = lambda h: h.name != "host3")
`,
	})
	pol := load(t, dir)
	for _, n := range names {
		os.Remove(l.Host(n).Path("/tmp/selected"))
	}
	rec := &recorder{}
	res := run(t, pol, options(t, l, rec))
	if failed, _ := res.Failed(); failed {
		t.Fatalf("failed:\n%s", rec.dump())
	}
	for _, n := range names {
		_, err := l.Host(n).ReadFile("/tmp/selected")
		want := n == "host1" || n == "host2" // host3 skipped by should_contact, host4 not in hosts=, host5-6 not web*
		if (err == nil) != want {
			t.Errorf("%s selected=%v, want %v", n, err == nil, want)
		}
	}
	if got := rec.count("host3", event.Skipped); got != 1 {
		t.Errorf("host3 skip events = %d, want 1\n%s", got, rec.dump())
	}
	logb, err := os.ReadFile(filepath.Join(dir, "hooks.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(logb)), "\n")
	// Batch one is host1+host2 (before/after each, in either host order);
	// batch two holds host3, which should_contact skipped before any hook.
	if len(lines) != 4 {
		t.Fatalf("hooks.log = %q", lines)
	}
	for _, h := range []string{"host1", "host2"} {
		b, a := slices.Index(lines, "before "+h), slices.Index(lines, "after "+h)
		if b < 0 || a < 0 || b > a {
			t.Errorf("hooks for %s out of order: %q", h, lines)
		}
	}

	// --limit-hosts narrows further.
	rec2 := &recorder{}
	o := options(t, l, rec2)
	o.Limit = push.Limit{Hosts: []string{"host2"}}
	run(t, pol, o)
	if got := rec2.hosts(event.HostDone); !slices.Equal(got, []string{"host2"}) {
		t.Errorf("with limit: hosts done = %v, want [host2]", got)
	}
}

// Serial batches are observable: every host of batch one finishes before
// any host of batch two connects.
func TestSerialBatchesRunInOrder(t *testing.T) {
	l := flatLab(t)
	names := hostNames("host", 6)
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"all6": names}),
		"site.star": `
inv = inventory("inventory.toml")
def main(host):
    exec("slow", command = "sleep 0.1")
role("r", hosts = inv.hosts, main = main, serial = 2,
     before_connect = lambda h: local("echo start " + h.name + " >> order.log"),
     after_connect = lambda h: local("echo connected " + h.name + " >> order.log"))
def done(host):
    noop("x")
role("after", hosts = inv.hosts, main = done, serial = 6,
     before_connect = lambda h: local("echo role2 " + h.name + " >> order.log"))
`,
	})
	rec := &recorder{}
	run(t, load(t, dir), options(t, l, rec))
	b, _ := os.ReadFile(filepath.Join(dir, "order.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	batchOf := func(line string) int {
		f := strings.Fields(line)
		if f[0] == "role2" {
			return 99
		}
		return slices.Index(names, f[1]) / 2
	}
	for i := 1; i < len(lines); i++ {
		if batchOf(lines[i]) < batchOf(lines[i-1]) {
			t.Fatalf("batches interleaved: %q", lines)
		}
	}
	if len(lines) != 18 {
		t.Fatalf("order.log has %d lines, want 18: %q", len(lines), lines)
	}
}

// A failing role stops the run after that role, and an unreachable host is
// reported while the others finish.
func TestFailureStopsAfterRoleAndUnreachableIsReported(t *testing.T) {
	l := flatLab(t)
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host1", "host2", "host3", "ghost"}}),
		"site.star": `
inv = inventory("inventory.toml")
def first(host):
    exec("maybe-fail", command = "exit 1" if host.name == "host2" else "true")
    file("/tmp/first-role", content = "done")
def second(host):
    file("/tmp/second-role", content = "never")
role("first", hosts = inv.hosts, main = first)
role("second", hosts = inv.hosts, main = second)
`,
	})
	for _, n := range []string{"host1", "host2", "host3"} {
		os.Remove(l.Host(n).Path("/tmp/first-role"))
		os.Remove(l.Host(n).Path("/tmp/second-role"))
	}
	rec := &recorder{}
	res := run(t, load(t, dir), options(t, l, rec))
	if res.StoppedAfter != "first" {
		t.Fatalf("StoppedAfter = %q, want first\n%s", res.StoppedAfter, rec.dump())
	}
	if !res.Hosts["ghost"].Unreachable || !res.Hosts["host2"].Failed {
		t.Fatalf("results: ghost=%+v host2=%+v", res.Hosts["ghost"], res.Hosts["host2"])
	}
	for _, n := range []string{"host1", "host3"} {
		if _, err := l.Host(n).ReadFile("/tmp/first-role"); err != nil {
			t.Errorf("%s did not finish the first role: %v", n, err)
		}
	}
	for _, n := range []string{"host1", "host2", "host3"} {
		if _, err := l.Host(n).ReadFile("/tmp/second-role"); err == nil {
			t.Errorf("%s ran the second role after a failure", n)
		}
	}
	if got := rec.hosts(event.Unreachable); !slices.Equal(got, []string{"ghost"}) {
		t.Errorf("unreachable = %v", got)
	}
}
