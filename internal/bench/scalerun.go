package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// LinkCounter returns the bytes sent to and received from the first n
// targets so far (lab.Host.LinkBytes summed).
type LinkCounter func(n int) (sent, recv int64, err error)

// ScaleSpec is what MeasureScale runs.
type ScaleSpec struct {
	Dir     string
	Targets []Target
	KeyFile string
	Links   LinkCounter
	// ClearCache empties the targets' agent cache before first contact.
	ClearCache func(ctx context.Context) error
	Cached     int   // cached runs on all hosts
	SkipFirst  bool  // the agents are cached already: no first contact
	Subsets    []int // host counts for the RSS-per-host runs
	// MitogenHosts and MitogenForks shape the Ansible+Mitogen run (0 hosts:
	// none).
	MitogenHosts, MitogenForks int
}

// MeasureScale runs S4: first contact, cached runs, cached runs on subsets
// and Ansible+Mitogen on a subset.
func (r *Runner) MeasureScale(ctx context.Context, s ScaleSpec) (ScaleResult, error) {
	res := ScaleResult{Hosts: len(s.Targets)}
	project := func(n int) (*Project, error) {
		dir := filepath.Join(s.Dir, fmt.Sprintf("hosts%d", n))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		p, err := WriteProject(dir, s.Targets[:n], s.KeyFile, ScaleSteps)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(p.Policy, []byte(ScalePolicy(n)), 0o644); err != nil {
			return nil, err
		}
		return p, os.WriteFile(p.Playbook, []byte(ScalePlaybook()), 0o644)
	}
	all, err := project(len(s.Targets))
	if err != nil {
		return res, err
	}
	if s.ClearCache != nil && !s.SkipFirst {
		if err := s.ClearCache(ctx); err != nil {
			return res, fmt.Errorf("clear the agent cache: %w", err)
		}
	}
	// First contact writes the files and runs the commands everywhere.
	if !s.SkipFirst {
		if res.First, err = r.scaleRun(ctx, all, s.Links, ScaleSteps); err != nil {
			return res, fmt.Errorf("first contact: %w", err)
		}
		r.logf("s4: first contact on %d hosts: %v", res.Hosts, res.First.Wall.Round(time.Millisecond))
	}
	// Hosts first contact missed get their agent now, untimed, so that the
	// cached runs are cached everywhere.
	for i := 0; i < 3 && res.First.Unreachable+res.First.Failed > 0; i++ {
		w, err := r.scaleRun(ctx, all, s.Links, -1)
		if err != nil {
			return res, fmt.Errorf("warm-up after first contact: %w", err)
		}
		res.WarmUps++
		if w.Unreachable+w.Failed == 0 {
			break
		}
	}
	// Cached: the files are in place, the commands run again.
	cachedChanges := ScaleSteps - ScaleFiles
	for i := 0; i < s.Cached; i++ {
		c, err := r.scaleRun(ctx, all, s.Links, cachedChanges)
		if err != nil {
			return res, fmt.Errorf("cached run %d: %w", i+1, err)
		}
		r.logf("s4: cached run %d on %d hosts: %v", i+1, res.Hosts, c.Wall.Round(time.Millisecond))
		res.Cached = append(res.Cached, c)
	}
	for _, n := range s.Subsets {
		if n <= 0 || n >= len(s.Targets) {
			continue
		}
		p, err := project(n)
		if err != nil {
			return res, err
		}
		c, err := r.scaleRun(ctx, p, s.Links, cachedChanges)
		if err != nil {
			return res, fmt.Errorf("cached run on %d hosts: %w", n, err)
		}
		r.logf("s4: cached run on %d hosts: %v", n, c.Wall.Round(time.Millisecond))
		res.Subsets = append(res.Subsets, c)
	}
	if n := min(s.MitogenHosts, len(s.Targets)); n > 0 {
		p, err := project(n)
		if err != nil {
			return res, err
		}
		r.Forks = s.MitogenForks
		res.MitogenHosts, res.MitogenForks = n, s.MitogenForks
		res.Mitogen, res.MitogenReached, res.MitogenProgress = r.mitogenReach(ctx, p)
		switch {
		case res.Mitogen.OK() && res.MitogenReached > 0:
			res.Extrapolated = time.Duration(float64(res.Mitogen.Median) / float64(res.MitogenReached) * float64(res.Hosts))
		case res.MitogenProgress.TasksDone > 0:
			// Killed at the bound: scale its time per host-task reached
			// to every task on every host.
			res.Extrapolated = res.MitogenProgress.PerTask() * time.Duration(res.Hosts*ScaleSteps)
		}
	}
	return res, nil
}

// scaleRun runs herd apply --json once on p's hosts and takes its wall
// time, peak RSS and link bytes; the run must report changes changed
// events per host (-1: not checked).
func (r *Runner) scaleRun(ctx context.Context, p *Project, links LinkCounter, changes int) (ScaleRun, error) {
	run := ScaleRun{Hosts: p.Hosts}
	args := []string{"apply", p.Policy, "-i", p.Inventory, "--ssh-config", "none", "--known-hosts", p.KnownHosts, "--json"}
	if r.MaxConns > 0 {
		args = append(args, "--max-conns", fmt.Sprint(r.MaxConns))
	}
	c := exec.Command(r.Herd, args...)
	c.Env = r.env(p, nil)
	c.Dir = p.Dir
	sent0, recv0, err := links(p.Hosts)
	if err != nil {
		return run, err
	}
	d, out, st, err := r.timedState(ctx, c)
	r.runs++
	if log := filepath.Join(p.Dir, fmt.Sprintf("herd-%d.jsonl", r.runs)); os.WriteFile(log, out, 0o644) == nil {
		r.logf("  output: %s", log)
	}
	// Exit 3 is hosts failed: counted below, not a broken run.
	if err != nil && (st == nil || st.ExitCode() != 3) {
		return run, err
	}
	sent1, recv1, err := links(p.Hosts)
	if err != nil {
		return run, err
	}
	run.Wall = d
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		run.MaxRSS = ru.Maxrss * 1024 // kilobytes on Linux
		run.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	run.SentPerHost = (sent1 - sent0) / int64(p.Hosts)
	run.RecvPerHost = (recv1 - recv0) / int64(p.Hosts)
	run.Changed = bytes.Count(out, []byte(`"type":"changed"`))
	run.Unreachable = bytes.Count(out, []byte(`"type":"unreachable"`))
	run.Failed = bytes.Count(out, []byte(`"type":"failed"`))
	if run.Unreachable > 0 || run.Failed > 0 {
		r.logf("  %d unreachable, %d failed: %s", run.Unreachable, run.Failed, tellingLine(out))
	}
	// A run with failed hosts stops before the next role and may leave
	// others not run: the count proves the work only when all succeeded.
	// More is fine: files an earlier, stopped run did not reach change now.
	if want := changes * p.Hosts; changes >= 0 && run.Unreachable+run.Failed == 0 && run.Changed < want {
		return run, fmt.Errorf("run had %d changed events, want at least %d: %s", run.Changed, want, tellingLine(out))
	}
	return run, nil
}

// mitogenReach runs Ansible+Mitogen once on p's hosts and counts the hosts
// it got through (recap: nothing unreachable or failed). A run that left
// hosts unreachable still has a time; one that reached none has not. A run
// killed at the time bound reports how far it got (MitogenProgress), so
// that its time per host-task can still be extrapolated.
func (r *Runner) mitogenReach(ctx context.Context, p *Project) (Measurement, int, MitogenProgress) {
	bin, err := exec.LookPath("ansible-playbook")
	if err != nil {
		return Measurement{NA: "ansible-playbook not installed (apt-get install ansible-core)"}, 0, MitogenProgress{}
	}
	if r.MitogenStrategies == "" {
		return Measurement{NA: "ansible-mitogen not installed (apt-get install ansible-mitogen)"}, 0, MitogenProgress{}
	}
	d, out, st, err := r.timedState(ctx, r.ansibleCmd(bin, p, "mitogen", 1, true))
	stopMasters(p.Dir)
	if log := filepath.Join(p.Dir, "mitogen.log"); os.WriteFile(log, out, 0o644) == nil {
		r.logf("  output: %s", log)
	}
	prog := MitogenProgress{Wall: d, TasksDone: tasksDone(out), Tasks: p.Hosts * ScaleSteps}
	reached := recapReached(out)
	// Exit 4: some hosts unreachable, 2: some failed.
	if err != nil && (st == nil || (st.ExitCode() != 4 && st.ExitCode() != 2) || reached == 0) {
		prog.Killed = true
		r.logf("  mitogen: %v; %d of %d host-tasks done", err, prog.TasksDone, prog.Tasks)
		return Measurement{NA: err.Error()}, reached, prog
	}
	r.logf("  mitogen: %v, %d of %d hosts reached", d.Round(time.Millisecond), reached, p.Hosts)
	return measured([]time.Duration{d}), reached, prog
}

// MitogenProgress is how far an Ansible+Mitogen run got: host-tasks
// reported ok or changed out of hosts × steps, in Wall.
type MitogenProgress struct {
	Wall      time.Duration `json:"wall_ns"`
	TasksDone int           `json:"tasks_done"`
	Tasks     int           `json:"tasks"`
	Killed    bool          `json:"killed,omitempty"`
}

// PerTask is the wall time per host-task reached.
func (m MitogenProgress) PerTask() time.Duration {
	if m.TasksDone == 0 {
		return 0
	}
	return m.Wall / time.Duration(m.TasksDone)
}

// tasksDone counts Ansible's per-host task results that succeeded.
func tasksDone(out []byte) int {
	n := 0
	for _, l := range bytes.Split(out, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("ok: [")) || bytes.HasPrefix(l, []byte("changed: [")) {
			n++
		}
	}
	return n
}

// recapReached counts recap lines with nothing unreachable or failed.
func recapReached(out []byte) int {
	n := 0
	for _, l := range bytes.Split(out, []byte("\n")) {
		if bytes.Contains(l, []byte(" changed=")) && bytes.Contains(l, []byte("unreachable=0 ")) && bytes.Contains(l, []byte("failed=0 ")) {
			n++
		}
	}
	return n
}
