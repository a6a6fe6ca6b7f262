package push_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/push"
)

// watchRun drives push.Watch against lab hosts: the test writes the
// policy's files and says when they changed (cmd/herd does that part
// with fsnotify).
type watchRun struct {
	rec     *recorder
	changes chan string
	stop    chan struct{}
	done    chan struct{}
	res     *push.WatchResult
	err     error
	ended   time.Time

	mu     sync.Mutex
	states map[string]push.HostStatus
	log    []push.HostStatus
}

func startWatch(t *testing.T, dir string, wo push.WatchOptions) *watchRun {
	t.Helper()
	return startWatchWith(t, dir, wo, nil)
}

func startWatchWith(t *testing.T, dir string, wo push.WatchOptions, tune func(*push.Options)) *watchRun {
	t.Helper()
	wo.Reload = func() (*policy.Policy, *inventory.Inventory, error) { p, err := loadErr(dir); return p, nil, err }
	return startWatchOn(t, load(t, dir), wo, tune)
}

// startWatchPolicy watches pol with the caller's Reload and Changes.
func startWatchPolicy(t *testing.T, pol *policy.Policy, wo push.WatchOptions) *watchRun {
	t.Helper()
	return startWatchOn(t, pol, wo, nil)
}

func startWatchOn(t *testing.T, pol *policy.Policy, wo push.WatchOptions, tune func(*push.Options)) *watchRun {
	t.Helper()
	l := flatLab(t)
	w := &watchRun{rec: &recorder{}, changes: make(chan string, 1), stop: make(chan struct{}), done: make(chan struct{}), states: map[string]push.HostStatus{}}
	wo.Options = options(t, l, w.rec)
	if tune != nil {
		tune(&wo.Options)
	}
	wo.Stop = w.stop
	if wo.Changes == nil {
		wo.Changes = w.changes
	}
	wo.Status = func(s push.HostStatus, _ push.Tally) {
		w.mu.Lock()
		w.states[s.Host] = s
		w.log = append(w.log, s)
		w.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	go func() {
		defer cancel()
		defer close(w.done)
		w.res, w.err = push.Watch(ctx, pol, wo)
		w.ended = time.Now()
	}()
	t.Cleanup(func() {
		select {
		case <-w.stop:
		default:
			close(w.stop)
		}
		<-w.done
	})
	return w
}

// waitConverged waits until every host of names is converged, and
// returns when the last one got there.
func (w *watchRun) waitConverged(t *testing.T, names ...string) time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		var last time.Time
		ok := true
		for _, n := range names {
			s := w.states[n]
			if s.State != push.Converged {
				ok = false
			}
			if s.Since.After(last) {
				last = s.Since
			}
		}
		w.mu.Unlock()
		if ok {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("hosts %v not converged in time:\n%s", names, w.rec.dump())
	return time.Time{}
}

func (w *watchRun) mark() int {
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	return len(w.rec.events)
}

// since returns the events from mark on.
func (w *watchRun) since(mark int) []event.Event {
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	return append([]event.Event(nil), w.rec.events[mark:]...)
}

const watchPolicy = `
inv = inventory("inventory.toml")
def main(host):
    directory("/root/watchtest", mode = 0o755)
    template("/root/watchtest/app.conf", src = "app.conf.tmpl")
    file("/root/watchtest/static", content = "same everywhere\n")
role("w", hosts = inv.hosts, main = main)
`

// Editing a template during a watch sends a new plan only to the host
// whose rendered content changed; the others receive nothing and re-apply
// nothing. A file edited behind herd's back is repaired at once, with an
// event saying so.
func TestWatchTemplateEditAndDrift(t *testing.T) {
	l := flatLab(t)
	names := []string{"host7", "host8", "host9"}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": names}),
		"site.star":      watchPolicy,
		"app.conf.tmpl":  "name={{ .host.name }}\n",
	})
	w := startWatch(t, dir, push.WatchOptions{Poll: 0})
	w.waitConverged(t, names...)
	for _, n := range names {
		b, err := l.Host(n).ReadFile("/root/watchtest/app.conf")
		if err != nil || string(b) != "name="+n+"\n" {
			t.Fatalf("%s: app.conf = %q, %v", n, b, err)
		}
	}

	// Only host8's rendering changes.
	mark := w.mark()
	os.WriteFile(filepath.Join(dir, "app.conf.tmpl"), []byte("name={{ .host.name }}\n{{ if eq .host.name \"host8\" }}extra=1\n{{ end }}"), 0o644)
	saved := time.Now()
	w.changes <- "app.conf.tmpl"
	time.Sleep(50 * time.Millisecond) // the re-plan is sent before host8 can converge again
	conv := w.waitConverged(t, names...)
	t.Logf("save to converged: %v", conv.Sub(saved).Round(time.Millisecond))
	if d := conv.Sub(saved); d > 2*time.Second {
		t.Errorf("host8 converged %v after the save, want within 2s", d)
	}
	w.mu.Lock()
	for _, s := range w.log {
		if s.Host == "host8" && s.State == push.Converging && s.Since.After(saved) {
			t.Logf("host8: %s", s.Msg) // the bytes the edit cost
		}
	}
	w.mu.Unlock()
	b, _ := l.Host("host8").ReadFile("/root/watchtest/app.conf")
	if string(b) != "name=host8\nextra=1\n" {
		t.Fatalf("host8 app.conf = %q", b)
	}
	changed := map[string][]string{}
	for _, e := range w.since(mark) {
		if e.Host != "" && e.Host != "host8" {
			t.Errorf("host %s heard from after an edit that does not concern it: %s %s %s", e.Host, e.Type, e.Resource, e.Msg)
		}
		if e.Type == event.OK || e.Type == event.Changed {
			changed[e.Host] = append(changed[e.Host], string(e.Type)+" "+e.Resource)
		}
	}
	if got := strings.Join(changed["host8"], ","); got != "changed file:/root/watchtest/app.conf" {
		t.Errorf("host8 ran %q, want only the changed template", got)
	}

	// Drift: edit a managed file on host9 behind herd's back.
	mark = w.mark()
	edited := time.Now()
	if err := os.WriteFile(l.Host("host9").Path("/root/watchtest/static"), []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var drift event.Event
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && drift.Type == ""; time.Sleep(20 * time.Millisecond) {
		for _, e := range w.since(mark) {
			if e.Type == event.Drift && e.Host == "host9" {
				drift = e
			}
		}
	}
	if drift.Type == "" {
		t.Fatalf("no drift event from host9:\n%s", w.rec.dump())
	}
	t.Logf("drift repaired %v after the edit: %s", time.Since(edited).Round(time.Millisecond), drift.Msg)
	if drift.Msg != "drift repaired: /root/watchtest/static edited outside herd" {
		t.Errorf("drift event says %q", drift.Msg)
	}
	b, _ = l.Host("host9").ReadFile("/root/watchtest/static")
	if string(b) != "same everywhere\n" {
		t.Errorf("host9 static = %q after repair", b)
	}
	w.waitConverged(t, names...)
	for _, e := range w.since(mark) {
		if e.Host != "host9" && e.Host != "" {
			t.Errorf("drift on host9 made %s report: %s %s", e.Host, e.Type, e.Msg)
		}
	}

	// A broken edit is reported and no host gets anything.
	mark = w.mark()
	os.WriteFile(filepath.Join(dir, "site.star"), []byte(strings.Replace(watchPolicy, "content =", "contnet =", 1)), 0o644)
	w.changes <- "site.star"
	var refused string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && refused == ""; time.Sleep(20 * time.Millisecond) {
		for _, e := range w.since(mark) {
			if e.Host != "" {
				t.Fatalf("a broken policy reached %s: %s %s", e.Host, e.Type, e.Msg)
			}
			if e.Type == event.Failed && strings.Contains(e.Msg, "policy not applied, hosts keep their plans") {
				refused = e.Msg
			}
		}
	}
	t.Logf("broken edit: %s", refused)
	if !strings.Contains(refused, "site.star:") || !strings.Contains(refused, "contnet") {
		t.Fatalf("want the error at file:line, got %q:\n%s", refused, w.rec.dump())
	}
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatalf("Watch: %v", w.err)
	}
	for _, n := range names {
		if s := w.res.Hosts[n]; s.State != push.Converged {
			t.Errorf("%s ended %s after a broken edit", n, s.State)
		}
	}
}

// With a converged timeout the watch ends once every host has been
// converged and quiet for that long, measured cluster-wide from the last
// change on the last host: not when the first host converges (host9 takes
// a second longer than the others), and an edit that reaches only host7
// restarts the clock for everyone.
func TestWatchConvergedTimeout(t *testing.T) {
	l := flatLab(t)
	names := []string{"host7", "host8", "host9"}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": names}),
		"site.star": watchPolicy + `
def slow(host):
    if host.name == "host9":
        exec("slow", command = "sleep 1")
role("slow", hosts = inv.hosts, main = slow)
`,
		"app.conf.tmpl": "v=1 {{ .host.name }}\n",
	})
	const timeout = 2 * time.Second
	w := startWatch(t, dir, push.WatchOptions{ConvergedTimeout: timeout})
	lastInitial := w.waitConverged(t, names...)
	w.mu.Lock()
	first := map[string]time.Time{}
	for _, s := range w.log {
		if s.State == push.Converged && first[s.Host].IsZero() {
			first[s.Host] = s.Since
		}
	}
	w.mu.Unlock()
	if d := first["host9"].Sub(first["host7"]); d < 800*time.Millisecond {
		t.Fatalf("host9 converged %v after host7, want its sleep 1 to hold it back", d)
	}
	time.Sleep(time.Until(lastInitial.Add(timeout / 2)))
	os.WriteFile(filepath.Join(dir, "app.conf.tmpl"), []byte("v=1 {{ .host.name }}\n{{ if eq .host.name \"host7\" }}v=2\n{{ end }}"), 0o644)
	w.changes <- "app.conf.tmpl"
	select {
	case <-w.done:
		t.Fatalf("watch ended %v after the first convergence, before the edit was applied", w.ended.Sub(lastInitial))
	case <-time.After(100 * time.Millisecond):
	}
	<-w.done
	if w.err != nil || w.res == nil || !w.res.TimedOut {
		t.Fatalf("Watch: %v, %+v", w.err, w.res)
	}
	w.mu.Lock()
	var last time.Time
	for _, s := range w.log {
		if s.Since.After(last) {
			last = s.Since
		}
	}
	w.mu.Unlock()
	quiet := w.ended.Sub(last)
	t.Logf("ended %v after the last change (host7's re-plan; timeout %v), %v after the first host converged, %v after host9, the last, first converged",
		quiet.Round(time.Millisecond), timeout, w.ended.Sub(first["host7"]).Round(time.Millisecond), w.ended.Sub(lastInitial).Round(time.Millisecond))
	if quiet < timeout || quiet > timeout+time.Second {
		t.Errorf("ended %v after the last change, want about %v", quiet, timeout)
	}
	if w.ended.Sub(lastInitial) < timeout*3/2 {
		t.Errorf("ended %v after the first convergence of all: host7's edit did not restart the clock", w.ended.Sub(lastInitial))
	}
	for _, n := range names {
		if s := w.res.Hosts[n]; s.State != push.Converged {
			t.Errorf("%s ended %s", n, s.State)
		}
	}
	if b, _ := l.Host("host7").ReadFile("/root/watchtest/app.conf"); string(b) != "v=1 host7\nv=2\n" {
		t.Errorf("host7 app.conf = %q", b)
	}
}

func loadErr(dir string) (*policy.Policy, error) {
	return policy.Load(filepath.Join(dir, "site.star"), policy.LoadOptions{})
}

// A host whose link is cut during a watch is reported lost and retried
// with back-off while the others go on (an edit meanwhile reaches them);
// once the link is back it rejoins and converges on the current policy.
func TestWatchHostRejoins(t *testing.T) {
	l := flatLab(t)
	names := []string{"host7", "host8", "host9"}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": names}),
		"site.star":      watchPolicy,
		"app.conf.tmpl":  "r=1 {{ .host.name }}\n",
	})
	oldMin, oldMax, oldPing := push.RetryMin, push.RetryMax, push.PingInterval
	push.RetryMin, push.RetryMax, push.PingInterval = 300*time.Millisecond, time.Second, 250*time.Millisecond
	defer func() { push.RetryMin, push.RetryMax, push.PingInterval = oldMin, oldMax, oldPing }()
	// The agent binary is cached on the hosts first: a keepalive this
	// short would give up behind its upload on a loaded machine.
	run(t, load(t, dir), options(t, l, &recorder{}))
	w := startWatchWith(t, dir, push.WatchOptions{}, func(o *push.Options) {
		o.Transport.KeepAlive = 200 * time.Millisecond
		o.Transport.ConnectTimeout = time.Second
	})
	w.waitConverged(t, names...)
	h9 := l.Host("host9")
	orphan := agentPids(t, h9)
	if len(orphan) != 1 {
		t.Fatalf("want one agent on host9 before the cut, got %v", orphan)
	}
	if err := h9.CutLink(); err != nil {
		t.Fatal(err)
	}
	defer h9.RestoreLink()
	w.waitState(t, "host9", push.HostLost)

	os.WriteFile(filepath.Join(dir, "app.conf.tmpl"), []byte("r=2 {{ .host.name }}\n"), 0o644)
	w.changes <- "app.conf.tmpl"
	time.Sleep(50 * time.Millisecond)
	w.waitConverged(t, "host7", "host8")
	for _, n := range []string{"host7", "host8"} {
		if b, _ := l.Host(n).ReadFile("/root/watchtest/app.conf"); string(b) != "r=2 "+n+"\n" {
			t.Errorf("%s did not go on while host9 was out: %q", n, b)
		}
	}
	mark := w.mark()
	w.mu.Lock()
	logMark := len(w.log)
	w.mu.Unlock()
	if err := h9.RestoreLink(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	w.waitConverged(t, names...)
	// The rejoin concerns host9 alone: nothing sent to or heard from the
	// others, whose state never changed.
	for _, e := range w.since(mark) {
		if e.Host == "host7" || e.Host == "host8" {
			t.Errorf("host9's rejoin reached %s: %s %s %s", e.Host, e.Type, e.Resource, e.Msg)
		}
	}
	w.mu.Lock()
	for _, s := range w.log {
		if s.Host != "host9" && s.State != push.Converged && s.State != push.Converging {
			t.Errorf("%s was %s while host9 was out", s.Host, s.State)
		}
	}
	for _, s := range w.log[logMark:] {
		if s.Host != "host9" {
			t.Errorf("%s changed state (%s) when host9 rejoined", s.Host, s.State)
		}
	}
	w.mu.Unlock()
	t.Logf("host9 converged %v after its link came back", time.Since(back).Round(time.Millisecond))
	if b, _ := h9.ReadFile("/root/watchtest/app.conf"); string(b) != "r=2 host9\n" {
		t.Errorf("host9 after rejoining: %q", b)
	}
	// The agent the cut orphaned took the silent controller for gone and
	// left; only the new one watches host9.
	if now := agentPids(t, h9); len(now) != 1 || now[0] == orphan[0] {
		t.Errorf("agents on host9 after rejoining: %v (the orphan was %v)", now, orphan)
	}
}

// agentPids lists the herd agents running on h (in its PID namespace).
func agentPids(t *testing.T, h *lab.Host) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, "ps", "-eo", "pid=,args=")
	if err != nil {
		t.Fatalf("ps on %s: %v", h.Name, err)
	}
	var pids []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 2 && strings.HasSuffix(f[1], "herd") && f[2] == "agent" {
			pids = append(pids, f[0])
		}
	}
	return pids
}

// waitState waits until host is in state s.
func (w *watchRun) waitState(t *testing.T, host string, s push.HostState) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		w.mu.Lock()
		got := w.states[host].State
		w.mu.Unlock()
		if got == s {
			return
		}
	}
	t.Fatalf("%s never %s:\n%s", host, s, w.rec.dump())
}

// A sudo role is watched by the privileged agent: a root-owned file
// changed behind herd's back is repaired as root.
func TestWatchBecomeRepairsDrift(t *testing.T) {
	l := flatLab(t)
	dir := project(t, map[string]string{
		"inventory.toml": becomeInventory(l, map[string]string{"host10": "herd_user=deploy"}),
		"site.star": `
inv = inventory("inventory.toml")
def main(host):
    file("/root/watch-become.conf", content = "root only\n", mode = 0o600)
role("r", hosts = inv.hosts, main = main, sudo = True)
`,
	})
	w := startWatch(t, dir, push.WatchOptions{})
	w.waitConverged(t, "host10")
	mark := w.mark()
	h := l.Host("host10")
	if err := os.WriteFile(h.Path("/root/watch-become.conf"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := h.ReadFile("/root/watch-become.conf"); string(b) == "root only\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not repaired:\n%s", w.rec.dump())
		}
	}
	found := false
	for deadline := time.Now().Add(5 * time.Second); !found && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, e := range w.since(mark) {
			found = found || (e.Type == event.Drift && e.Host == "host10")
		}
	}
	if !found {
		t.Errorf("no drift event:\n%s", w.rec.dump())
	}
	fi, err := os.Stat(h.Path("/root/watch-become.conf"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after repair: %v, %v", fi, err)
	}
}

// A host whose role fails is reported failed; the edit that fixes the
// failing resource makes it converged again (the agent re-runs what failed
// with the changed resources, so a role's report covers the whole role).
func TestWatchFailedHostRecovers(t *testing.T) {
	l := flatLab(t)
	broken := `
inv = inventory("inventory.toml")
def main(host):
    file("/root/watchfail/ok", content = "fine\n")
    line("/root/watchfail/needs", line = "x = 1")
    file("/root/watchfail/other", content = "1\n")
role("w", hosts = inv.hosts, main = main)
`
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host7"}}),
		"site.star":      broken,
	})
	l.Host("host7").Exec(context.Background(), "rm", "-rf", "/root/watchfail")
	l.Host("host7").Exec(context.Background(), "mkdir", "/root/watchfail")
	w := startWatch(t, dir, push.WatchOptions{})
	w.waitState(t, "host7", push.HostFailed)
	// An edit elsewhere in the role does not make the failure go away.
	os.WriteFile(filepath.Join(dir, "site.star"), []byte(strings.Replace(broken, `"1\n"`, `"2\n"`, 1)), 0o644)
	w.changes <- "site.star"
	time.Sleep(100 * time.Millisecond)
	w.waitState(t, "host7", push.HostFailed)
	// The fix does.
	os.WriteFile(filepath.Join(dir, "site.star"), []byte(strings.Replace(strings.Replace(broken, `"1\n"`, `"2\n"`, 1), `line = "x = 1"`, `line = "x = 1", create = True`, 1)), 0o644)
	w.changes <- "site.star"
	time.Sleep(100 * time.Millisecond)
	w.waitConverged(t, "host7")
	if b, _ := l.Host("host7").ReadFile("/root/watchfail/needs"); string(b) != "x = 1\n" {
		t.Errorf("needs = %q", b)
	}
}
