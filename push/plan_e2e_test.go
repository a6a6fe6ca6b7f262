package push_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/event"
	"github.com/herd-project/herd/push"
)

// A policy error in a later role is found before the first role changes
// anything, on every host, and is reported once naming the hosts it hit,
// whatever kind of error it is. No hook runs either.
func TestPolicyErrorInLaterRoleChangesNothing(t *testing.T) {
	l := flatLab(t)
	hosts := []string{"host1", "host2", "host3"}
	for _, tc := range []struct {
		name, second string
		want         string // in the one error
		wantHosts    []string
	}{
		{"wrong type", `file("/tmp/err-second", content = 5)`, `site.star:9:9: `, hosts},
		{"unknown argument", `file("/tmp/err-second", contnet = "x")`, `unknown argument "contnet"`, hosts},
		{"bad notify target", `file("/tmp/err-second", content = "x", notify = ["service:nope"])`, `notify: unknown resource "service:nope"`, hosts},
		{"cycle", `noop("a", after = ["noop:b"])
    noop("b", after = ["noop:a"])`, "dependency cycle", hosts},
		{"template error", `template("/tmp/err-second", src = "bad.tmpl")`, "bad.tmpl", hosts},
		{"fail()", `fail("refusing " + host.vars["tier"])`, "refusing web", hosts},
		// Facts come from the hosts themselves: planning connected first.
		{"fact-dependent", `if host.facts.hostname == "host2":
        fail("not on " + host.facts.hostname)`, "site.star:10:13: fail: not on host2", []string{"host2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range hosts {
				os.Remove(l.Host(n).Path("/tmp/err-first"))
			}
			dir := project(t, map[string]string{
				"inventory.toml": tomlInventory(l, map[string][]string{"web": hosts}) + "[groups.web.vars]\ntier = \"web\"\n",
				"bad.tmpl":       "{{ .vars.tier \n",
				"site.star": `inv = inventory("inventory.toml")

def first(host):
    file("/tmp/err-first", content = "first\n")

role("first", hosts = inv.hosts, main = first, before_connect = lambda h: local("echo " + h.name + " >> hooks.log"))

def second(host):
    ` + tc.second + `

role("second", hosts = inv.hosts, main = second, serial = 1)
`,
			})
			rec := &recorder{}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := push.Run(ctx, load(t, dir), options(t, l, rec))
			pe, ok := push.IsPolicyErrors(err)
			if !ok || res != nil {
				t.Fatalf("Run = %v, %v; want policy errors\n%s", res, err, rec.dump())
			}
			t.Logf("%s", pe.Error())
			if len(pe) != 1 || !strings.Contains(pe[0].Msg, tc.want) || !slices.Equal(pe[0].Hosts, tc.wantHosts) {
				t.Fatalf("errors = %q, want one containing %q for %v", pe.Error(), tc.want, tc.wantHosts)
			}
			if !strings.Contains(pe[0].Msg, ".star:") && !strings.Contains(pe[0].Msg, ".tmpl") {
				t.Errorf("error %q names no policy position", pe[0].Msg)
			}
			for _, n := range hosts {
				if _, err := l.Host(n).ReadFile("/tmp/err-first"); err == nil {
					t.Errorf("%s: the first role ran before the policy error was found", n)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "hooks.log")); err == nil {
				t.Error("before_connect ran although nothing was going to change")
			}
			for _, e := range rec.events {
				if e.Type == event.Changed || e.Type == event.HostStart {
					t.Fatalf("a plan ran: %+v", e)
				}
			}
		})
	}
}

// `herd check` runs no controller hook (a dry run must not drain a load
// balancer); apply runs them, before the host's changes in the role.
func TestCheckRunsNoHooks(t *testing.T) {
	l := flatLab(t)
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host1", "host2"}}),
		"site.star": `inv = inventory("inventory.toml")
def main(host):
    file("/tmp/err-hooks", content = "x\n")
role("r", hosts = inv.hosts, main = main,
     before_connect = lambda h: local("echo drain " + h.name + " >> hooks.log"),
     after_connect = lambda h: local("echo fill " + h.name + " >> hooks.log"))
`,
	})
	for _, n := range []string{"host1", "host2"} {
		os.Remove(l.Host(n).Path("/tmp/err-hooks"))
	}
	pol := load(t, dir)
	o := options(t, l, &recorder{})
	o.Check = true
	res := run(t, pol, o)
	if c := total(res); c.Changed != 2 || c.Failed != 0 {
		t.Fatalf("check: %+v, want 2 would change", c)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "hooks.log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("check ran hooks: %q (%v)", b, err)
	}
	run(t, pol, options(t, l, &recorder{}))
	b, _ := os.ReadFile(filepath.Join(dir, "hooks.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(lines)
	if want := []string{"drain host1", "drain host2", "fill host1", "fill host2"}; !slices.Equal(lines, want) {
		t.Fatalf("apply hooks.log = %q, want %q", lines, want)
	}
}

// A host that failed a role under max_fail runs no later role, and the
// result lists every host of the run: those never reached because the run
// stopped, or because of serial, are "not run" with the reason.
func TestFailedHostRunsNoLaterRoleAndRecapListsNotRun(t *testing.T) {
	l := flatLab(t)
	names := []string{"host1", "host2", "host3", "host4"}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": names}),
		"site.star": `inv = inventory("inventory.toml")
def first(host):
    exec("maybe-fail", command = "exit 1" if host.name == "host1" else "true")
def second(host):
    file("/tmp/err-second-role", content = "x\n")
    exec("fail-host2", command = "exit 1" if host.name == "host2" else "true")
def third(host):
    file("/tmp/err-third-role", content = "x\n")
role("first", hosts = inv.hosts, main = first, max_fail = 1)
role("second", hosts = inv.hosts, main = second, serial = 1, max_fail = 0)
role("third", hosts = inv.hosts, main = third)
`,
	})
	for _, n := range names {
		os.Remove(l.Host(n).Path("/tmp/err-second-role"))
		os.Remove(l.Host(n).Path("/tmp/err-third-role"))
	}
	rec := &recorder{}
	res := run(t, load(t, dir), options(t, l, rec))
	// host1 failed "first" (allowed), so it does not run "second"; host2
	// fails "second" in its batch, so host3 and host4 (later batches) are
	// not run, and nobody runs "third".
	if res.StoppedAfter != "second" {
		t.Fatalf("StoppedAfter = %q\n%s", res.StoppedAfter, rec.dump())
	}
	if _, err := l.Host("host1").ReadFile("/tmp/err-second-role"); err == nil {
		t.Error("host1 failed role first but ran role second")
	}
	if _, err := l.Host("host2").ReadFile("/tmp/err-second-role"); err != nil {
		t.Errorf("host2 did not run role second: %v", err)
	}
	wantNotRun := map[string][]string{
		"host1": {"second", "third"},
		"host2": {"third"},
		"host3": {"second", "third"},
		"host4": {"second", "third"},
	}
	for _, n := range names {
		hr := res.Hosts[n]
		if hr == nil {
			t.Fatalf("%s missing from the result", n)
		}
		if !slices.Equal(hr.NotRun, wantNotRun[n]) || hr.Counts.NotRun != len(wantNotRun[n]) {
			t.Errorf("%s not run = %v (count %d), want %v", n, hr.NotRun, hr.Counts.NotRun, wantNotRun[n])
		}
		if _, err := l.Host(n).ReadFile("/tmp/err-third-role"); err == nil {
			t.Errorf("%s ran role third after the run stopped", n)
		}
	}
	var why []string
	for _, e := range rec.events {
		if e.Type == event.NotRun && e.Role == "second" {
			why = append(why, e.Host+": "+e.Msg)
		}
	}
	slices.Sort(why)
	want := []string{
		"host1: role second not run: it failed in role first",
		"host3: role second not run: 1 hosts failed in an earlier batch of role second (max_fail=0)",
		"host4: role second not run: 1 hosts failed in an earlier batch of role second (max_fail=0)",
	}
	if !slices.Equal(why, want) {
		t.Errorf("not-run reasons:\n%s\nwant:\n%s", strings.Join(why, "\n"), strings.Join(want, "\n"))
	}
}
