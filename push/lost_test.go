package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-project/herd/event"
	"github.com/herd-project/herd/lab"
	"github.com/herd-project/herd/push"
)

// Tests of "nothing is lost": refreshes survive a full state disk, two
// controllers on one host take turns, a cut transfer resumes.

var lostLabs atomic.Int32

// lostLab is a private three-host lab for one test.
func lostLab(t *testing.T) *lab.Lab {
	t.Helper()
	if ok, why := lab.Available(); !ok {
		t.Skip("lab: " + why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	name := fmt.Sprintf("lost%d%c", os.Getpid()%10000, 'a'+lostLabs.Add(1)%26)
	l, err := lab.Up(ctx, lab.Spec{Name: name, Flat: 3})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() { l.Down() })
	return l
}

// rootState is root's herd state directory on a lab host.
const rootState = "/root/.herd/state"

// With the state directory full, a change that owes a refresh is not
// applied (the refresh could not be recorded, and says so); once there is
// room, the next run applies it and delivers the refresh.
func TestFullStateDiskNeitherAppliesNorLosesTheRefresh(t *testing.T) {
	l := lostLab(t)
	h := l.Host("host1")
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"web": {"host1"}}),
		"site.star": `
inv = inventory("inventory.toml")
def web(host):
    file("/etc/lost.conf", content = "v2\n", notify = ["reload"])
    exec("reload", command = "echo reloaded >> /tmp/lost-reloads", refresh_only = True, label = "reload")
role("web", hosts = inv.hosts, main = web)
`,
	})
	if err := h.FillDisk(rootState, 64<<10); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	res := run(t, load(t, dir), options(t, l, rec))
	if err := h.FreeDisk(rootState); err != nil {
		t.Fatal(err)
	}
	if hr := res.Hosts["host1"]; !hr.Failed {
		t.Fatalf("run on a full state disk succeeded: %+v\n%s", hr, rec.dump())
	}
	if !strings.Contains(rec.dump(), "host1 failed file:/etc/lost.conf not applied: the refresh it owes exec:reload could not be recorded in the state directory /root/.herd/state: ") ||
		!strings.Contains(rec.dump(), "no space left on device") {
		t.Errorf("the failure does not say why:\n%s", rec.dump())
	}
	if _, err := h.ReadFile("/etc/lost.conf"); err == nil {
		t.Error("the change was applied although its refresh could not be recorded")
	}

	rec = &recorder{}
	run(t, load(t, dir), options(t, l, rec))
	if b, _ := h.ReadFile("/etc/lost.conf"); string(b) != "v2\n" {
		t.Errorf("second run: conf = %q", b)
	}
	if b, _ := h.ReadFile("/tmp/lost-reloads"); string(b) != "reloaded\n" {
		t.Errorf("second run: reloads = %q, want one\n%s", b, rec.dump())
	}
}

// lockPolicy is role "web" for one controller: its own file notifies a
// reload that is off (so the refresh stays pending), then a slow step.
func lockPolicy(name string, sleep string, sudo bool) string {
	return fmt.Sprintf(`
inv = inventory("inventory.toml")
def web(host):
    file("/etc/lost-%[1]s", content = "%[1]s\n", notify = ["reload"])
    exec("slow-%[1]s", command = "sleep %[2]s")
    exec("reload", command = "echo reload >> /tmp/lost-reloads", refresh_only = True, label = "reload", when = host.vars.get("reload", False))
role("web", hosts = inv.hosts, main = web, sudo = %[3]s)
`, name, sleep, map[bool]string{true: "True", false: "False"}[sudo])
}

// Two controllers applying to one host at once: the second waits for the
// first's run lock up to its lock wait. With a short wait it fails the host
// naming the holder and changes nothing; with a long one the runs follow
// each other and the pending refreshes of both are kept. The lock is the
// applying identity's: an SSH login as root and deploy becoming root
// collide.
func TestRunLockSerialisesControllers(t *testing.T) {
	l := lostLab(t)
	hostname, _ := os.Hostname()
	tests := []struct {
		name            string
		bUser           string
		bSudo           bool
		wait            time.Duration
		wantLocked      bool
		wantSerialised  bool
		wantPendingBoth bool
	}{
		{"short wait fails the host naming the holder", "root", false, 500 * time.Millisecond, true, false, false},
		{"become to root collides with a root login", "deploy", true, 500 * time.Millisecond, true, false, false},
		{"long wait: the runs take turns and both refreshes stay pending", "root", false, 30 * time.Second, false, true, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := l.Host(fmt.Sprintf("host%d", i+1))
			inv := fmt.Sprintf("[groups.web.hosts]\n\"%s\" = \"herd_host=%s\"\n", h.Name, h.Addr)
			a := project(t, map[string]string{"inventory.toml": inv, "site.star": lockPolicy("a", "5", false)})
			b := project(t, map[string]string{"inventory.toml": strings.Replace(inv, "herd_host", "herd_user="+tt.bUser+" herd_host", 1),
				"site.star": lockPolicy("b", "0", tt.bSudo)})
			recA, recB := &recorder{}, &recorder{}
			oa, ob := options(t, l, recA), options(t, l, recB)
			ob.Defaults.LockWait = &tt.wait
			// Warm both agents' caches (a check takes no lock), so the
			// concurrent runs below start in well under A's slow step.
			for _, w := range []struct {
				dir string
				o   push.Options
			}{{a, oa}, {b, ob}} {
				w.o.Check, w.o.Sink = true, (&recorder{}).sink
				run(t, load(t, w.dir), w.o)
			}
			started := make(chan struct{})
			var once sync.Once
			oa.Sink = func(e event.Event) {
				recA.sink(e)
				if e.Type == event.Start && e.Resource == "exec:slow-a" {
					once.Do(func() { close(started) })
				}
			}
			var resA *push.Result
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); resA = run(t, load(t, a), oa) }()
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				t.Fatalf("run A never started its slow step:\n%s", recA.dump())
			}
			resB := run(t, load(t, b), ob)
			wg.Wait()

			if hr := resA.Hosts[h.Name]; hr.Failed || hr.Unreachable {
				t.Fatalf("run A: %+v\n%s", hr, recA.dump())
			}
			hrB := resB.Hosts[h.Name]
			want := regexp.MustCompile(`^locked by root@` + regexp.QuoteMeta(hostname) + ` pid ` + fmt.Sprint(os.Getpid()) + ` since \d{4}-\d\d-\d\dT[\d:]+Z: another herd run is applying to this host \(waited 500ms; see --lock-wait\)$`)
			if tt.wantLocked {
				if !hrB.Failed || !want.MatchString(hrB.Err) {
					t.Fatalf("run B: %+v, want failed with %s\n%s", hrB, want, recB.dump())
				}
				if _, err := h.ReadFile("/etc/lost-b"); err == nil {
					t.Error("the locked-out run changed the host")
				}
				return
			}
			if hrB.Failed || hrB.Unreachable {
				t.Fatalf("run B: %+v\n%s", hrB, recB.dump())
			}
			if tt.wantSerialised {
				endA, startB := lastOf(recA, event.HostDone), firstOf(recB, event.Start)
				if startB.Before(endA) {
					t.Errorf("run B started a resource at %v, before run A ended at %v", startB, endA)
				}
			}
			if tt.wantPendingBoth {
				var f struct{ Pending map[string][]string }
				b, err := h.ReadFile(rootState + "/notify-web.json")
				if err != nil || json.Unmarshal(b, &f) != nil {
					t.Fatalf("pending file: %v %q", err, b)
				}
				if got := strings.Join(f.Pending["exec:reload"], ","); got != "file:/etc/lost-a,file:/etc/lost-b" {
					t.Errorf("pending refreshes of exec:reload = %q, want both runs'", got)
				}
			}
		})
	}
}

func firstOf(r *recorder, t event.Type) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Type == t {
			return e.Time
		}
	}
	return time.Time{}
}

func lastOf(r *recorder, t event.Type) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	for _, e := range r.events {
		if e.Type == t {
			last = e.Time
		}
	}
	return last
}
