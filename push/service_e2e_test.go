package push_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/event"
	"github.com/herd-project/herd/lab"
	"github.com/herd-project/herd/push"
)

// The service kind runs on host10 only. Lab hosts have no init system, so
// this is the SysV path: a real LSB init script, update-rc.d and rc links.
// The systemd path is covered by unit tests of its command lines.
const serviceHost = "host10"

// e2eInitScript keeps a `sleep 1000` running with a pid file in /run, and
// counts reloads in a marker file.
const e2eInitScript = `#!/bin/sh
### BEGIN INIT INFO
# Provides:          herd-e2e-svc
# Required-Start:
# Required-Stop:
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: herd end-to-end test service
### END INIT INFO
PID=/run/herd-e2e-svc.pid
MARK=/run/herd-e2e-svc.reloads
alive() { [ -f $PID ] && kill -0 "$(cat $PID)" 2>/dev/null; }
do_start() { alive && return 0; sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >$PID; }
do_stop() { alive && kill "$(cat $PID)"; rm -f $PID; }
case "$1" in
start) do_start ;;
stop) do_stop ;;
restart) do_stop; do_start ;;
reload) alive || exit 7; n=$(cat $MARK 2>/dev/null || echo 0); echo $((n + 1)) >$MARK ;;
status) alive && exit 0; [ -f $PID ] && exit 1; exit 3 ;;
*) echo "usage: $0 start|stop|restart|reload|status" >&2; exit 2 ;;
esac
`

func servicePolicy(conf string, running, enabled bool) string {
	star := map[bool]string{true: "True", false: "False"}
	return fmt.Sprintf(`inv = inventory("inventory.toml")
def main(host):
    file("/etc/herd-e2e-svc.conf", content = %q, notify = ["service:herd-e2e-svc"])
    service("herd-e2e-svc", running = %s, enabled = %s, on_refresh = "reload")
role("svc", hosts = inv.hosts, main = main)
`, conf, star[running], star[enabled])
}

func pushService(t *testing.T, l *lab.Lab, policy string, check bool) (*recorder, *push.Result) {
	t.Helper()
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"svc": {serviceHost}}),
		"site.star":      policy,
	})
	rec := &recorder{}
	o := options(t, l, rec)
	o.Check = check
	res := run(t, load(t, dir), o)
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("run failed:\n%s", rec.dump())
	}
	return rec, res
}

// inHost runs a shell snippet inside the host and returns its trimmed
// output, or "" when it fails.
func inHost(t *testing.T, h *lab.Host, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, "sh", "-c", script)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// daemonPid is the pid of the service's sleep if it runs inside the host
// (a zombie does not count), else "".
func daemonPid(t *testing.T, h *lab.Host) string {
	return inHost(t, h, `pid=$(cat /run/herd-e2e-svc.pid) && kill -0 "$pid" &&
		grep -q sleep /proc/$pid/cmdline && ! grep -q '^State:.*Z' /proc/$pid/status && echo "$pid"`)
}

func refreshMsg(rec *recorder, host, id string) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.events {
		if e.Host == host && e.Resource == id && e.Type == event.Refresh {
			return e.Msg
		}
	}
	return ""
}

func TestServiceSysV(t *testing.T) {
	l := flatLab(t)
	h := l.Host(serviceHost)
	if _, err := os.Stat(h.Path("/usr/sbin/update-rc.d")); err != nil {
		t.Skip("update-rc.d is not installed on the lab hosts' base system")
	}
	const id = "service:herd-e2e-svc"
	if err := os.WriteFile(h.Path("/etc/init.d/herd-e2e-svc"), []byte(e2eInitScript), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		inHost(t, h, "/etc/init.d/herd-e2e-svc stop; rm -f /etc/init.d/herd-e2e-svc /etc/rc?.d/[SK]??herd-e2e-svc /etc/herd-e2e-svc.conf /run/herd-e2e-svc.*")
		if _, err := h.Kill("sleep 1000"); err != nil {
			t.Log(err)
		}
	})
	reloads := func() string { return inHost(t, h, "cat /run/herd-e2e-svc.reloads 2>/dev/null || echo 0") }
	startLinks := func() string { return inHost(t, h, "ls /etc/rc2.d/ | grep 'herd-e2e-svc$'") }

	// Check mode reports the start and the enabling and does neither.
	rec, res := pushService(t, l, servicePolicy("v1\n", true, true), true)
	if typ, msg := msgOf(rec, serviceHost, id); typ != event.Changed || msg != "enable, start" {
		t.Errorf("check: service event %s %q\n%s", typ, msg, rec.dump())
	}
	if c := total(res); c.Changed != 2 {
		t.Errorf("check: %+v, want 2 changes", c)
	}
	if pid, links := daemonPid(t, h), startLinks(); pid != "" || links != "" {
		t.Fatalf("check mode started the service (pid %q) or enabled it (links %q)", pid, links)
	}

	// Started and enabled; the refresh from the new file has nothing to
	// add to a start.
	rec, _ = pushService(t, l, servicePolicy("v1\n", true, true), false)
	if typ, msg := msgOf(rec, serviceHost, id); typ != event.Changed || msg != "enable, start" {
		t.Errorf("apply: service event %s %q\n%s", typ, msg, rec.dump())
	}
	pid := daemonPid(t, h)
	if pid == "" {
		t.Fatalf("the service does not run after apply:\n%s", rec.dump())
	}
	if links := startLinks(); !strings.HasPrefix(links, "S") {
		t.Errorf("rc2.d links after enable: %q, want an S link", links)
	}
	if n := reloads(); n != "0" {
		t.Errorf("reloaded %s times right after starting", n)
	}

	rec, res = pushService(t, l, servicePolicy("v1\n", true, true), false)
	if c := total(res); c.Changed != 0 || c.OK != 2 {
		t.Errorf("second run: %+v, want changed=0\n%s", c, rec.dump())
	}

	// A changed file reloads the running service, once; the same file
	// again does not.
	rec, _ = pushService(t, l, servicePolicy("v2\n", true, true), false)
	if typ, msg := msgOf(rec, serviceHost, id); typ != event.Changed || msg != "reloaded" {
		t.Errorf("refresh: service event %s %q\n%s", typ, msg, rec.dump())
	}
	if msg := refreshMsg(rec, serviceHost, id); !strings.HasPrefix(msg, "reloaded (notified by file:") {
		t.Errorf("refresh event %q", msg)
	}
	if n := reloads(); n != "1" {
		t.Errorf("reload count %s after a changed file, want 1", n)
	}
	if now := daemonPid(t, h); now != pid {
		t.Errorf("pid %q after a reload, was %q: the service was restarted", now, pid)
	}
	rec, res = pushService(t, l, servicePolicy("v2\n", true, true), false)
	if c := total(res); c.Changed != 0 || reloads() != "1" {
		t.Errorf("unchanged file: %+v, reloads %s\n%s", c, reloads(), rec.dump())
	}

	// Check mode says it would stop and disable, and does not.
	rec, _ = pushService(t, l, servicePolicy("v2\n", false, false), true)
	if typ, msg := msgOf(rec, serviceHost, id); typ != event.Changed || msg != "disable, stop" {
		t.Errorf("check stop: service event %s %q", typ, msg)
	}
	if now := daemonPid(t, h); now != pid {
		t.Fatalf("check mode stopped the service (pid %q)", now)
	}

	rec, _ = pushService(t, l, servicePolicy("v2\n", false, false), false)
	if typ, msg := msgOf(rec, serviceHost, id); typ != event.Changed || msg != "disable, stop" {
		t.Errorf("stop: service event %s %q\n%s", typ, msg, rec.dump())
	}
	if now := daemonPid(t, h); now != "" {
		t.Errorf("the service still runs (pid %s)", now)
	}
	if alive := inHost(t, h, "kill -0 "+pid+" 2>/dev/null && ! grep -q '^State:.*Z' /proc/"+pid+"/status && echo alive"); alive != "" {
		t.Errorf("process %s survived the stop", pid)
	}
	if links := startLinks(); !strings.HasPrefix(links, "K") {
		t.Errorf("rc2.d links after disable: %q, want only a K link", links)
	}

	// Stopped and wanted stopped: a changed file does not start or reload it.
	rec, res = pushService(t, l, servicePolicy("v3\n", false, false), false)
	if c := total(res); c.Changed != 1 {
		t.Errorf("file change with the service stopped: %+v, want 1 change (the file)\n%s", c, rec.dump())
	}
	if now, n := daemonPid(t, h), reloads(); now != "" || n != "1" {
		t.Errorf("a refresh of a stopped service started it (pid %q) or reloaded it (%s)", now, n)
	}
	rec, res = pushService(t, l, servicePolicy("v3\n", false, false), false)
	if c := total(res); c.Changed != 0 {
		t.Errorf("stopped twice: %+v\n%s", c, rec.dump())
	}
	if _, err := os.Stat(filepath.Join(h.Path("/run"), "herd-e2e-svc.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left after stop: %v", err)
	}
}

// Check mode predicts apply: a service whose init script a file of the
// same run installs is "would change" (not "init script not found"), and
// a refresh check announces counts as the change apply makes. Check and
// apply report the same counts, round after round.
func TestCheckPredictsServiceInstalledInTheSameRun(t *testing.T) {
	l := flatLab(t)
	h := l.Host(serviceHost)
	const name = "herd-e2e-new"
	script := strings.ReplaceAll(e2eInitScript, "herd-e2e-svc", name)
	cleanup := func() {
		inHost(t, h, "/etc/init.d/"+name+" stop; rm -f /etc/init.d/"+name+" /etc/"+name+".conf /run/"+name+".*")
	}
	cleanup()
	t.Cleanup(cleanup)
	policy := func(conf string) string {
		return fmt.Sprintf(`inv = inventory("inventory.toml")
def main(host):
    file("/etc/init.d/%[1]s", content = %[2]q, mode = 0o755)
    file("/etc/%[1]s.conf", content = %[3]q, notify = ["service:%[1]s"])
    service("%[1]s", running = True, on_refresh = "reload")
role("svc", hosts = inv.hosts, main = main)
`, name, script, conf)
	}
	for _, round := range []struct {
		conf        string
		wantChanged int
	}{
		{"v1\n", 3}, // script, conf, start (the refresh adds nothing to a start)
		{"v2\n", 2}, // conf, reload
	} {
		rec, check := pushService(t, l, policy(round.conf), true)
		if typ, msg := msgOf(rec, serviceHost, "service:"+name); typ != event.Changed {
			t.Fatalf("check %q: service %s %q, want would change\n%s", round.conf, typ, msg, rec.dump())
		}
		_, apply := pushService(t, l, policy(round.conf), false)
		if c, a := total(check), total(apply); c != a || a.Changed != round.wantChanged {
			t.Errorf("conf %q: check counts %+v, apply counts %+v, want both %d changed", round.conf, c, a, round.wantChanged)
		}
		if daemon := inHost(t, h, "/etc/init.d/"+name+" status && echo up"); daemon != "up" {
			t.Fatalf("the service does not run after apply (%q)", daemon)
		}
	}
}
