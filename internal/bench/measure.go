package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Measurement is one tool's wall times in one scenario. NA, when set, says
// why there is no number (tool missing, refused, failed, timed out).
type Measurement struct {
	Runs   []time.Duration `json:"runs_ns,omitempty"`
	Median time.Duration   `json:"median_ns,omitempty"`
	NA     string          `json:"na,omitempty"`
}

// OK reports whether m has a number.
func (m Measurement) OK() bool { return m.NA == "" && len(m.Runs) > 0 }

func measured(runs []time.Duration) Measurement {
	s := slices.Clone(runs)
	slices.Sort(s)
	return Measurement{Runs: runs, Median: s[len(s)/2]}
}

// Runner runs the tools as a user would: as subprocesses, so process start
// and (for herd) policy evaluation are part of every number.
type Runner struct {
	Herd    string        // herd binary (static, CGO_ENABLED=0)
	Reps    int           // timed runs per tool and scenario; the median counts
	Timeout time.Duration // bound on one run
	Forks   int           // Ansible forks (the number of hosts is fair)
	// MaxConns is herd's --max-conns, its counterpart of forks: connection
	// set-ups at once. 0 leaves herd's default.
	MaxConns int
	// MitogenStrategies is ansible_mitogen's strategy plugin directory
	// ("" when ansible-mitogen is not installed).
	MitogenStrategies string
	Log               func(format string, args ...any)

	runs int // herd runs so far, to name their saved output
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		r.Log(format, args...)
	}
}

// MeasureHerd runs herd apply once to put the agent in the targets' cache
// (the targets assume a cached agent), then Reps timed runs.
func (r *Runner) MeasureHerd(ctx context.Context, p *Project) Measurement {
	if r.Herd == "" {
		return Measurement{NA: "no herd binary"}
	}
	cmd := func(extra ...string) *exec.Cmd {
		args := []string{"apply", p.Policy, "-i", p.Inventory, "--ssh-config", "none", "--known-hosts", p.KnownHosts}
		if r.MaxConns > 0 {
			args = append(args, "--max-conns", fmt.Sprint(r.MaxConns))
		}
		args = append(args, extra...)
		c := exec.Command(r.Herd, args...)
		c.Env = r.env(p, nil)
		c.Dir = p.Dir
		return c
	}
	// The warm-up also proves the run does the work: every step changed on
	// every host.
	_, out, err := r.timed(ctx, cmd("--json"))
	if err == nil {
		err = wantCount(out, `"type":"changed"`, p.Steps*p.Hosts, "changed events")
	}
	if err != nil {
		return Measurement{NA: "warm-up: " + err.Error()}
	}
	return r.repeat(ctx, "herd", func() *exec.Cmd { return cmd() }, nil, nil)
}

// wantCount fails unless out holds needle exactly n times.
func wantCount(out []byte, needle string, n int, what string) error {
	if got := bytes.Count(out, []byte(needle)); got != n {
		return fmt.Errorf("run had %d %s, want %d: %s", got, what, n, tellingLine(out))
	}
	return nil
}

// RunHerd runs herd apply on p once with extra flags (such as
// --persist), for scenarios that look at one run rather than a median.
func (r *Runner) RunHerd(ctx context.Context, p *Project, extra ...string) (time.Duration, []byte, error) {
	if r.Herd == "" {
		return 0, nil, errors.New("no herd binary")
	}
	args := append([]string{"apply", p.Policy, "-i", p.Inventory, "--ssh-config", "none", "--known-hosts", p.KnownHosts}, extra...)
	c := exec.Command(r.Herd, args...)
	c.Env = r.env(p, nil)
	c.Dir = p.Dir
	return r.timed(ctx, c)
}

// MeasureAnsible runs ansible-playbook Reps times, with Mitogen's
// mitogen_linear strategy when mitogen is set. SSH settings are Ansible's
// defaults plus pipelining (what its docs advise for speed); each run
// starts without a live ControlMaster, as herd starts without connections.
func (r *Runner) MeasureAnsible(ctx context.Context, p *Project, mitogen bool) Measurement {
	// Each run must report every step changed on every host.
	return r.measureAnsibleChecked(ctx, p, mitogen, func(out []byte) error {
		return wantCount(out, fmt.Sprintf("changed=%d ", p.Steps), p.Hosts, "hosts with all steps changed in the recap")
	})
}

// measureAnsibleChecked is MeasureAnsible with the check of each run's
// output given.
func (r *Runner) measureAnsibleChecked(ctx context.Context, p *Project, mitogen bool, check func([]byte) error) Measurement {
	bin, err := exec.LookPath("ansible-playbook")
	if err != nil {
		return Measurement{NA: "ansible-playbook not installed (apt-get install ansible-core)"}
	}
	if mitogen && r.MitogenStrategies == "" {
		return Measurement{NA: "ansible-mitogen not installed (apt-get install ansible-mitogen)"}
	}
	name := "ansible"
	if mitogen {
		name = "mitogen"
	}
	rep := 0
	cmd := func() *exec.Cmd {
		rep++
		return r.ansibleCmd(bin, p, name, rep, mitogen)
	}
	// A run's ControlMasters would speed up the next one; herd has nothing
	// that outlives its process, so neither may Ansible.
	return r.repeat(ctx, name, cmd, check, func() { stopMasters(p.Dir) })
}

// ansibleCmd is one ansible-playbook run of p (rep numbers its
// ControlMaster directory).
func (r *Runner) ansibleCmd(bin string, p *Project, name string, rep int, mitogen bool) *exec.Cmd {
	cp := filepath.Join(p.Dir, fmt.Sprintf("cp-%s-%d", name, rep))
	os.MkdirAll(cp, 0o700)
	forks := r.Forks
	if forks < 1 {
		forks = 20
	}
	env := []string{
		"ANSIBLE_HOST_KEY_CHECKING=True",
		"ANSIBLE_PRIVATE_KEY_FILE=" + p.KeyFile,
		"ANSIBLE_PIPELINING=True",
		"ANSIBLE_FORKS=" + fmt.Sprint(forks),
		"ANSIBLE_SSH_CONTROL_PATH_DIR=" + cp,
		// Ansible's default ssh_args plus the project's known_hosts,
		// so keys are checked against the hosts' real keys.
		"ANSIBLE_SSH_ARGS=-C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=" + p.KnownHosts +
			" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes",
		"ANSIBLE_RETRY_FILES_ENABLED=False",
		// herd waits up to a minute for an agent to start; give Ansible's
		// connections as long (default 10 s), or a loaded lab machine
		// measures timeouts instead of Ansible.
		"ANSIBLE_TIMEOUT=60",
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_LOCAL_TEMP=" + filepath.Join(p.Home, ".ansible", "tmp"),
	}
	if mitogen {
		env = append(env, "ANSIBLE_STRATEGY_PLUGINS="+r.MitogenStrategies, "ANSIBLE_STRATEGY=mitogen_linear")
	}
	c := exec.Command(bin, "-i", p.INI, p.Playbook)
	c.Env = r.env(p, env)
	c.Dir = p.Dir
	return c
}

// repeat times Reps runs of cmd, checking each run's output with check and
// calling after (each if set) after each.
func (r *Runner) repeat(ctx context.Context, name string, cmd func() *exec.Cmd, check func([]byte) error, after func()) Measurement {
	reps := max(r.Reps, 1)
	var runs []time.Duration
	for i := 0; i < reps; i++ {
		d, out, err := r.timed(ctx, cmd())
		if after != nil {
			after()
		}
		if err == nil && check != nil {
			err = check(out)
		}
		if err != nil {
			return Measurement{Runs: runs, NA: err.Error()}
		}
		r.logf("  %s run %d/%d: %v", name, i+1, reps, d.Round(time.Millisecond))
		runs = append(runs, d)
	}
	return measured(runs)
}

// timed runs c to completion within r.Timeout and returns its wall time
// and output. A failure is reported with the most telling line of its
// output.
func (r *Runner) timed(ctx context.Context, c *exec.Cmd) (time.Duration, []byte, error) {
	d, out, _, err := r.timedState(ctx, c)
	return d, out, err
}

// timedState is timed that also returns the process state, whose rusage
// holds the peak RSS.
func (r *Runner) timedState(ctx context.Context, c *exec.Cmd) (time.Duration, []byte, *os.ProcessState, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	run := exec.CommandContext(ctx, c.Path, c.Args[1:]...)
	run.Env, run.Dir = c.Env, c.Dir
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	// Ansible forks workers and ssh clients: a timeout ends the whole group.
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	run.Cancel = func() error { return syscall.Kill(-run.Process.Pid, syscall.SIGKILL) }
	run.WaitDelay = 5 * time.Second
	start := time.Now()
	err := run.Run()
	d := time.Since(start)
	if ctx.Err() == context.DeadlineExceeded {
		return d, out.Bytes(), run.ProcessState, fmt.Errorf("timed out after %v", timeout)
	}
	if err != nil {
		return d, out.Bytes(), run.ProcessState, fmt.Errorf("%s: %v: %s", filepath.Base(c.Path), err, tellingLine(out.Bytes()))
	}
	return d, out.Bytes(), run.ProcessState, nil
}

// tellingLine picks the line of a failed run's output that says why: an
// error or fatal line, else the last non-empty one.
func tellingLine(out []byte) string {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" {
			continue
		}
		low := strings.ToLower(l)
		if strings.HasPrefix(low, "error") || strings.HasPrefix(low, "fatal") || strings.HasPrefix(low, "herd:") ||
			strings.Contains(low, "mitogen") && strings.Contains(low, "version") {
			return truncate(l, 300)
		}
		last = l
	}
	if last == "" {
		return "no output"
	}
	return truncate(last, 300)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// env is a minimal environment: PATH, the project's HOME, no ssh-agent, no
// user Ansible config.
func (r *Runner) env(p *Project, extra []string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + p.Home,
		"LANG=C.UTF-8",
	}
	return append(env, extra...)
}

// stopMasters ends the OpenSSH ControlMasters Ansible left under dir.
func stopMasters(dir string) {
	socks, _ := filepath.Glob(filepath.Join(dir, "cp-*", "*"))
	for _, s := range socks {
		c := exec.Command("ssh", "-o", "ControlPath="+s, "-O", "exit", "bench")
		c.Run()
		os.Remove(s)
	}
}

// MitogenStrategyDir finds ansible_mitogen's strategy plugins from the
// Debian package's file list, or says why it cannot.
func MitogenStrategyDir() (string, error) {
	out, err := exec.Command("dpkg", "-L", "ansible-mitogen").Output()
	if err != nil {
		return "", errors.New("ansible-mitogen is not installed (apt-get install ansible-mitogen)")
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasSuffix(l, "/ansible_mitogen/plugins/strategy") {
			return l, nil
		}
	}
	return "", errors.New("ansible-mitogen is installed but has no plugins/strategy directory")
}

// Version returns the first line of `name --version`, or "" when missing.
func Version(name string, args ...string) string {
	if len(args) == 0 {
		args = []string{"--version"}
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return l
}
