package push_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/push"
)

// An idle watching agent blocks instead of polling: over a few seconds
// its threads together wake a few times a second at most and use well
// under 1% of a CPU. Measured from the kernel's accounting of the agent's
// threads (run time in ns and context switches), not from wall time, so a
// loaded machine does not hide a busy loop or fake one. The agent watches
// files with inotify and re-checks the rest every --poll (1 s here).
func TestWatchIdleAgentDoesNotPoll(t *testing.T) {
	l := flatLab(t)
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host7"}}),
		"site.star":      watchPolicy,
		"app.conf.tmpl":  "idle={{ .host.name }}\n",
	})
	w := startWatch(t, dir, push.WatchOptions{Poll: time.Second})
	w.waitConverged(t, "host7")
	time.Sleep(time.Second) // herd's own writes have woken the watcher; let it settle
	h := l.Host("host7")
	pids := agentPids(t, h)
	if len(pids) != 1 {
		t.Fatalf("want one agent on host7, got %v", pids)
	}
	mark := w.mark()
	run0, sw0 := threadLoad(t, h, pids[0])
	const window = 3 * time.Second
	time.Sleep(window)
	run1, sw1 := threadLoad(t, h, pids[0])
	cpu := 100 * float64(run1-run0) / float64(window)
	wakeups := float64(sw1-sw0) / window.Seconds()
	t.Logf("idle agent over %v: %.3f%% CPU (%v on CPU), %.1f context switches/s", window, cpu, time.Duration(run1-run0), wakeups)
	if cpu >= 1 {
		t.Errorf("idle agent used %.2f%% CPU, want < 1%%", cpu)
	}
	if wakeups > 20 {
		t.Errorf("idle agent switched %.1f times a second: it polls", wakeups)
	}
	if evs := w.since(mark); len(evs) > 0 {
		t.Errorf("events while idle: %+v", evs)
	}
}

// threadLoad sums, over every thread of pid on h, the time spent on a CPU
// (ns, /proc/PID/task/TID/schedstat) and the context switches, voluntary
// and not (/proc/PID/task/TID/status).
func threadLoad(t *testing.T, h *lab.Host, pid string) (runNs, switches int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, "sh", "-c", "for f in /proc/"+pid+"/task/*/schedstat; do echo sched $(cat $f); done; cat /proc/"+pid+"/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range strings.Split(string(out), "\n") {
		f := strings.Fields(ln)
		switch {
		case len(f) == 4 && f[0] == "sched": // run ns, wait ns, timeslices
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("schedstat line %q", ln)
			}
			runNs += n
		case len(f) == 2 && strings.HasSuffix(f[0], "ctxt_switches:"):
			n, _ := strconv.ParseInt(f[1], 10, 64)
			switches += n
		}
	}
	if runNs == 0 {
		t.Fatalf("no schedstat for agent %s on %s:\n%s", pid, h.Name, out)
	}
	return runNs, switches
}
