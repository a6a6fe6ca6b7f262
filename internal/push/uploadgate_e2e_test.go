package push_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/push"
)

// gzipShim stands in for gzip on a lab host. The agent bootstrap runs
// `gzip -dc >"$dir/.herd.PID"` for the bytes of an upload; when the output
// is under the test's agent directory (tag), the shim logs its start,
// waits until the test releases this host (or 30 s), decompresses, and logs
// its end. Anything else is the real gzip, untouched.
const gzipShim = `#!/bin/sh
case $(readlink /proc/$$/fd/1) in
*/TAG/*) ;;
*) exec /bin/gzip "$@" ;;
esac
echo "start $(date +%s%N)" >>/tmp/TAG.log
i=0
while [ ! -e /tmp/TAG.go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
echo "go $(date +%s%N)" >>/tmp/TAG.log
/bin/gzip "$@"
rc=$?
echo "end $(date +%s%N)" >>/tmp/TAG.log
exit $rc
`

// uploadSpan is one host's upload as its gzip shim logged it (machine
// clock: lab hosts share the kernel).
type uploadSpan struct {
	host       string
	start, end time.Time // end is zero while it runs
}

// readSpan reads host h's shim log; ok is false before its upload began.
func readSpan(h *lab.Host, tag string) (s uploadSpan, ok bool) {
	b, err := os.ReadFile(h.Path("/tmp/" + tag + ".log"))
	if err != nil {
		return s, false
	}
	s.host = h.Name
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		kind, ns, _ := strings.Cut(line, " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if err != nil {
			continue
		}
		switch kind {
		case "start":
			s.start, ok = time.Unix(0, n), true
		case "end":
			s.end = time.Unix(0, n)
		}
	}
	return s, ok
}

func cond[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

// maxOverlap is the most spans running at one instant.
func maxOverlap(spans []uploadSpan) int {
	most := 0
	for _, a := range spans {
		n := 0
		for _, b := range spans {
			if !b.start.After(a.start) && (b.end.IsZero() || b.end.After(a.start)) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// On a cold run the agent uploads take turns (at most the gate's size at
// once), and a host waiting for its turn is not timed out for it. With a
// gate of 1, four hosts and a start timeout of 3 s (more on a slow
// machine), the test holds each upload on its host (a gzip shim) for half a
// second, and the third one until the last host has waited longer than the
// timeout; that host must still be configured, and the hosts' own logs must
// show one upload at a time.
func TestAgentUploadsTakeTurnsAndWaitingHostsDoNotTimeOut(t *testing.T) {
	const (
		gate = 1
		hold = 500 * time.Millisecond
		// margin past the timeout the last host is made to wait.
		margin = 200 * time.Millisecond
	)
	l := flatLab(t)
	names := []string{"host1", "host2", "host3", "host4"}
	// A fresh agent directory per run: every host needs the upload, and
	// no other test's cache is touched.
	tag := fmt.Sprintf("herdgate%d", time.Now().UnixNano()%1e9)
	agentDir := "/tmp/" + tag
	// The lean agent: a few MB to send (this test binary would be 45 MB).
	lean, _ := nativeAgent(t)
	agent := &push.Binary{Path: lean}
	// The start timeout: 3 s, or three uploads' time where the machine is
	// slower (a loaded CI machine), so that each upload fits in it with
	// room to spare.
	u := uploadTime(t, l, agent, "host5")
	timeout := max(3*time.Second, 3*u)
	vars := map[string]string{}
	for _, name := range names {
		installShim(t, l.Host(name), tag, agentDir)
		vars[name] = "herd_agent_dir=" + agentDir
	}
	proj := project(t, map[string]string{
		"inventory.toml": becomeInventory(l, vars),
		"site.star":      gatePolicy,
	})
	rec := &recorder{}
	o := options(t, l, rec)
	o.Agent = agent
	push.SetAgentUploads(&o, gate)
	push.SetAgentStartTimeout(&o, timeout)
	pol := load(t, proj)
	t.Logf("one upload took %v: start timeout %v", u.Round(time.Millisecond), timeout.Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type outcome struct {
		res *push.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := push.Run(ctx, pol, o)
		done <- outcome{res, err}
	}()

	// Drive the uploads: watch every host's shim, check the bound, and
	// release each hold (soon enough for the holder's own start timeout).
	// When each host asked for the agent (its agent directory appeared) is
	// noted: when one host is left waiting, the holder is kept until that
	// host will have waited longer than the start timeout. u is how long an
	// upload takes past its release (from a release to the next upload's
	// start), which a holder needs from its own timeout.
	arrived := map[string]time.Time{}
	heldSince := map[string]time.Time{}
	released := map[string]bool{}
	var lastRelease time.Time
	var uMin, uMax time.Duration
	var out outcome
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
watch:
	for {
		select {
		case out = <-done:
			break watch
		case <-tick.C:
		}
		var spans []uploadSpan
		holder, waiting := "", []string{}
		for _, name := range names {
			h := l.Host(name)
			if _, ok := arrived[name]; !ok {
				if _, err := os.Stat(h.Path(agentDir)); err == nil {
					arrived[name] = time.Now()
				}
			}
			s, ok := readSpan(h, tag)
			if !ok {
				waiting = append(waiting, name)
				continue
			}
			spans = append(spans, s)
			if _, seen := heldSince[name]; !seen {
				heldSince[name] = time.Now()
				if !lastRelease.IsZero() {
					u := s.start.Sub(lastRelease)
					uMin, uMax = cond(uMin == 0 || u < uMin, u, uMin), max(uMax, u)
				}
			}
			if s.end.IsZero() {
				holder = cond(holder == "", name, holder+" "+name)
			}
		}
		if strings.Contains(holder, " ") {
			for _, n := range names {
				b, _ := os.ReadFile(l.Host(n).Path("/tmp/" + tag + ".log"))
				t.Logf("%s: %s", n, b)
			}
			t.Fatalf("agent uploads at once on %s, the gate allows %d (or a held upload outlived its start timeout: it ends only when released): %+v", holder, gate, spans)
		}
		if holder == "" || released[holder] || time.Since(heldSince[holder]) < hold {
			continue
		}
		held := time.Since(heldSince[holder])
		if len(waiting) == 1 && held+uMax*13/10+margin < timeout {
			if a, ok := arrived[waiting[0]]; !ok || time.Since(a)+uMin < timeout+margin {
				continue
			}
		}
		if err := os.WriteFile(l.Host(holder).Path("/tmp/"+tag+".go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		lastRelease, released[holder] = time.Now(), true
	}
	if out.err != nil {
		t.Fatalf("push.Run: %v\n%s", out.err, rec.dump())
	}
	var spans []uploadSpan
	for _, name := range names {
		if hr := out.res.Hosts[name]; hr == nil || hr.Failed || hr.Unreachable {
			t.Errorf("%s: not configured (%+v), want every host to wait its turn without timing out\n%s", name, hr, rec.dump())
		}
		s, ok := readSpan(l.Host(name), tag)
		if !ok || s.end.IsZero() {
			t.Fatalf("%s: no finished upload logged by the gzip shim", name)
		}
		spans = append(spans, s)
	}
	// From the hosts' own clocks: never more than the gate at once.
	if n := maxOverlap(spans); n > gate {
		t.Errorf("uploads overlapped %d at once, the gate allows %d: %+v", n, gate, spans)
	}
	// The last host's wait for its turn outlasted the start timeout: the
	// wait did not count against it.
	slices.SortFunc(spans, func(a, b uploadSpan) int { return a.start.Compare(b.start) })
	last := spans[len(spans)-1]
	if arrived[last.host].IsZero() {
		t.Fatalf("%s: its agent directory was never seen before its upload", last.host)
	}
	if waited := last.start.Sub(arrived[last.host]); waited <= timeout {
		t.Errorf("%s waited %v for its turn, want more than the %v start timeout (the test did not test the pause)", last.host, waited, timeout)
	} else {
		t.Logf("%s waited %v for its upload turn with a %v start timeout", last.host, waited.Round(time.Millisecond), timeout)
	}
}

// uploadTime is how long an agent upload takes on this machine now: from
// the upload's start on host (its gzip shim, not held) to the end of a
// one-host run, which also starts the agent and applies one file.
func uploadTime(t *testing.T, l *lab.Lab, agent *push.Binary, host string) time.Duration {
	t.Helper()
	tag := fmt.Sprintf("herdcal%d", time.Now().UnixNano()%1e9)
	agentDir := "/tmp/" + tag
	h := l.Host(host)
	installShim(t, h, tag, agentDir)
	if err := os.WriteFile(h.Path("/tmp/"+tag+".go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	proj := project(t, map[string]string{
		"inventory.toml": becomeInventory(l, map[string]string{host: "herd_agent_dir=" + agentDir}),
		"site.star":      gatePolicy,
	})
	rec := &recorder{}
	o := options(t, l, rec)
	o.Agent = agent
	res := run(t, load(t, proj), o)
	end := time.Now()
	if hr := res.Hosts[host]; hr == nil || hr.Failed || hr.Unreachable {
		t.Fatalf("cold run on %s: %+v\n%s", host, hr, rec.dump())
	}
	span, ok := readSpan(h, tag)
	if !ok {
		t.Fatalf("%s: the upload was not logged", host)
	}
	return end.Sub(span.start)
}

// installShim puts gzipShim for tag on h until the test ends.
func installShim(t *testing.T, h *lab.Host, tag, agentDir string) {
	shim := h.Path("/usr/local/bin/gzip")
	if err := os.WriteFile(shim, []byte(strings.ReplaceAll(gzipShim, "TAG", tag)), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(shim)
		h.Exec(context.Background(), "rm", "-rf", agentDir, "/tmp/"+tag+".log", "/tmp/"+tag+".go")
	})
}

const gatePolicy = `
inv = inventory("inventory.toml")
def main(host):
    file("/tmp/herd-gate-ok", content = "ok\n")
role("r", hosts = inv.hosts, main = main)
`
