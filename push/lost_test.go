package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herd-project/herd/event"
	"github.com/herd-project/herd/lab"
	"github.com/herd-project/herd/push"
	"github.com/herd-project/herd/transport"
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

// controllerEnv, when set, makes TestLostControllerProcess a controller
// (run as a subprocess so the test can SIGKILL it): its value is the JSON
// of a controllerJob.
const controllerEnv = "HERD_LOST_CONTROLLER"

type controllerJob struct {
	Dir, Key   string
	KnownHosts []string
}

func TestLostControllerProcess(t *testing.T) {
	var job controllerJob
	if err := json.Unmarshal([]byte(os.Getenv(controllerEnv)), &job); err != nil {
		t.Skip("only run as a controller subprocess")
	}
	o := push.Options{
		Agent:     agentBinary(t),
		Defaults:  push.Defaults{SSHUser: "root", KeyFile: job.Key, KnownHosts: job.KnownHosts},
		Transport: transport.Config{SSHConfigFile: "none", NoAgent: true, ConnectTimeout: 10 * time.Second},
	}
	run(t, load(t, job.Dir), o)
}

// A controller that dies in the middle of a transfer leaves the partial file
// on the target (the agent lives on until it sees the end of its input);
// the next run resumes from it instead of starting over, and leaves no temp
// file. (A cancelled run closes the session the same way; resource's unit
// tests cover each kind of interruption.)
func TestInterruptedControllerLeavesAResumablePartial(t *testing.T) {
	const size = 64 << 20
	tests := []struct {
		name string
		stop func(t *testing.T, dir string, o push.Options, partialAt func() int64)
	}{
		{"controller SIGKILLed", func(t *testing.T, dir string, o push.Options, partialAt func() int64) {
			job, _ := json.Marshal(controllerJob{Dir: dir, Key: o.Defaults.KeyFile, KnownHosts: o.Defaults.KnownHosts})
			cmd := exec.Command(os.Args[0], "-test.run=^TestLostControllerProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), controllerEnv+"="+string(job))
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			waitPartial(t, partialAt, size/8)
			cmd.Process.Kill() // SIGKILL, by pid
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := lostLab(t)
			h := l.Host("host1")
			dir := project(t, map[string]string{"site.star": `
inv = inventory("inventory.toml")
def web(host):
    file("/srv/big.bin", source = "files/big.bin")
role("web", hosts = inv.hosts, main = web)
`})
			want := writeRandom(t, filepath.Join(dir, "files", "big.bin"), 7, size)
			inventory := func(addr string, port int) {
				body := fmt.Sprintf("[groups.g.hosts]\n\"host1\" = \"herd_host=%s herd_port=%d\"\n", addr, port)
				if err := os.WriteFile(filepath.Join(dir, "inventory.toml"), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// Install the agent first, so the slow link carries the file only.
			inventory(h.Addr, 22)
			warm := options(t, l, &recorder{})
			warm.Check = true
			run(t, load(t, dir), warm)

			addr, stopProxy, err := l.Latency(h, 0, 6<<10) // 6 MiB/s
			if err != nil {
				t.Fatal(err)
			}
			defer stopProxy()
			var port int
			fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &port)
			kh := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(h.HostKey))), 0o600); err != nil {
				t.Fatal(err)
			}
			inventory("127.0.0.1", port)
			o := options(t, l, &recorder{})
			o.Defaults.KnownHosts = []string{kh}
			partialAt := func() int64 {
				matches, _ := filepath.Glob(h.Path("/srv/.herd-partial-big.bin-*"))
				if len(matches) != 1 {
					return -1
				}
				fi, err := os.Stat(matches[0])
				if err != nil {
					return -1
				}
				return fi.Size()
			}
			tt.stop(t, dir, o, partialAt)

			// The agent sees its input end and fails the fetch; the
			// partial must outlive it.
			time.Sleep(2 * time.Second)
			kept := partialAt()
			if kept <= 0 {
				t.Fatalf("the partial was removed after the controller stopped (%d)", kept)
			}
			if _, err := h.ReadFile("/srv/big.bin"); err == nil {
				t.Fatal("the cut transfer installed the file")
			}

			inventory(h.Addr, 22)
			res := run(t, load(t, dir), options(t, l, &recorder{}))
			hr := res.Hosts["host1"]
			if hr.Failed || hr.Unreachable || hr.Counts.Changed != 1 {
				t.Fatalf("resumed run: %+v", hr)
			}
			t.Logf("partial kept: %.1f MiB of %d MiB; the next run fetched %.1f MiB", float64(kept)/(1<<20), size>>20, float64(hr.FileBytes)/(1<<20))
			if hr.FileBytes > size-kept {
				t.Errorf("resumed run fetched %d bytes, the partial had %d of %d: not resumed", hr.FileBytes, kept, size)
			}
			if got := hostHash(t, h, "/srv/big.bin"); got != want {
				t.Fatal("resumed file is wrong")
			}
			if temps := herdTemps(t, h, "/srv"); len(temps) > 0 {
				t.Errorf("temp files left: %v", temps)
			}
		})
	}
}

// waitPartial waits until the partial holds at least n bytes.
func waitPartial(t *testing.T, partialAt func() int64, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for partialAt() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the transfer never reached %d bytes (at %d)", n, partialAt())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
