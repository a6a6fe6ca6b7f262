// Command herd-bench measures herd against Ansible and Ansible+Mitogen on
// a lab of its own: 100 (-steps) sequential "hostname" steps on 1 and 20 hosts, on
// the LAN and at 180 ms RTT, and prints the wall times side by side.
//
//	sudo go run ./cmd/herd-bench                      # everything, 3 runs each
//	sudo go run ./cmd/herd-bench -quick -scenarios lan1,lan20 -tools herd,ansible
//	sudo go run ./cmd/herd-bench -watch               # herd watch on 20 hosts: edits, bytes, idle agents
//
// It needs what package lab needs (root, sshd, namespaces); Ansible comes
// from apt-get install ansible-core ansible-mitogen, and a missing one
// prints "n/a".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/herd-project/herd/internal/bench"
	"github.com/herd-project/herd/internal/lab"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	scenarios []bench.Scenario
	tools     []string
	reps      int
	json      bool
	timeout   time.Duration
	herd      string
	keep      bool
	bashrc    bool
	steps     int
	maxConns  int
	scale     scaleOptions
	s4, rtt   bool
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scen := fs.String("scenarios", "all", "comma-separated scenarios: lan1,lan20,wan1,wan20 (all), s4 (scale, -hosts), rtt (round trip breakdown)")
	tools := fs.String("tools", "all", "comma-separated tools: herd,ansible,mitogen")
	var o options
	fs.IntVar(&o.reps, "reps", 3, "timed runs per tool and scenario (the median counts)")
	fs.IntVar(&o.steps, "steps", bench.Steps, "exec steps per run (1 shows what the step count costs behind latency)")
	fs.IntVar(&o.maxConns, "max-conns", 0, "herd's --max-conns; 0: herd's default, -1: the scenario's host count (as Ansible's forks)")
	o.scale.flags(fs)
	quick := fs.Bool("quick", false, "one timed run per tool and scenario")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on one run of one tool")
	fs.StringVar(&o.herd, "herd", "", "herd binary to measure (default: build ./cmd/herd with CGO_ENABLED=0)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (policies, inventories, playbooks)")
	fs.BoolVar(&o.bashrc, "keep-bashrc", false, "leave the lab hosts' /root/.bashrc (Debian's /etc/skel copy) as it is")
	watch := fs.Bool("watch", false, "measure herd watch instead: save to converged, bytes per edit, idle agent CPU and RSS")
	watchHosts := fs.Int("watch-hosts", 20, "hosts for -watch")
	idle := fs.Duration("idle", 20*time.Second, "how long -watch samples the idle agents")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	rest, s4, rtt := splitS4(*scen)
	o.s4, o.rtt = s4, rtt
	if !(s4 || rtt) || strings.TrimSpace(rest) != "" {
		if o.scenarios, err = bench.ParseScenarios(rest); err != nil {
			fmt.Fprintf(stderr, "herd-bench: -scenarios: %v\n", err)
			return 2
		}
	}
	if s4 && (o.scale.hosts < 1 || o.scale.hosts > lab.MaxHosts) {
		fmt.Fprintf(stderr, "herd-bench: -hosts must be 1 to %d\n", lab.MaxHosts)
		return 2
	}
	if _, err := parseCounts(o.scale.subsets); err != nil {
		fmt.Fprintf(stderr, "herd-bench: -subsets: %v\n", err)
		return 2
	}
	if o.tools, err = bench.ParseTools(*tools); err != nil {
		fmt.Fprintf(stderr, "herd-bench: -tools: %v\n", err)
		return 2
	}
	if o.steps < 1 {
		fmt.Fprintf(stderr, "herd-bench: -steps must be at least 1\n")
		return 2
	}
	if *quick {
		o.reps = 1
	}
	if ok, why := lab.Available(); !ok {
		fmt.Fprintf(stderr, "herd-bench: cannot make a lab here: %s\n", why)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *watch {
		if *watchHosts < 1 || *idle <= 0 {
			fmt.Fprintf(stderr, "herd-bench: -watch-hosts and -idle must be positive\n")
			return 2
		}
		if err := measureWatch(ctx, o, *watchHosts, *idle, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "herd-bench: %v\n", err)
			return 1
		}
		return 0
	}
	if err := measureAll(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "herd-bench: %v\n", err)
		return 1
	}
	return 0
}

// workDir makes the run's scratch directory; cleanup removes it unless
// -keep asked to keep it (then its path is logged).
func workDir(o options, prefix string, logf func(string, ...any)) (dir string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	if o.keep {
		logf("work directory: %s", dir)
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// measureAll brings up the lab, measures every scenario and prints the
// table (or JSON) of what it measured, even when a scenario failed.
func measureAll(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	work, cleanup, err := workDir(o, "herd-bench-", logf)
	if err != nil {
		return err
	}
	defer cleanup()
	r := &bench.Runner{Herd: o.herd, Reps: o.reps, Timeout: o.timeout, Log: logf}
	machine := bench.Machine{CPUs: runtime.NumCPU(), Kernel: bench.Version("uname", "-sr"), Reps: o.reps, Steps: o.steps,
		Versions: map[string]string{"go": runtime.Version()}}
	if has(o.tools, "herd") && r.Herd == "" {
		if r.Herd, err = buildHerd(ctx, work); err != nil {
			return err
		}
	}
	if has(o.tools, "ansible") || has(o.tools, "mitogen") {
		machine.Versions["ansible"] = bench.Version("ansible-playbook")
	}
	if has(o.tools, "mitogen") {
		if r.MitogenStrategies, err = bench.MitogenStrategyDir(); err != nil {
			logf("mitogen: %v", err)
		} else {
			machine.Versions["mitogen"] = bench.Version("dpkg-query", "-W", "-f", "${Version}", "ansible-mitogen")
		}
	}

	if o.rtt {
		if err := measureRTT(ctx, o, r, work, stdout, logf); err != nil {
			return fmt.Errorf("rtt: %w", err)
		}
		if len(o.scenarios) == 0 && !o.s4 {
			return nil
		}
	}
	if o.s4 {
		if err := measureScale(ctx, o, r, work, stdout, logf); err != nil {
			return fmt.Errorf("s4: %w", err)
		}
		if len(o.scenarios) == 0 {
			return nil
		}
	}
	hosts := 0
	for _, s := range o.scenarios {
		hosts = max(hosts, s.Hosts)
	}
	start := time.Now()
	l, err := lab.Up(ctx, lab.Spec{Name: fmt.Sprintf("bench%d", os.Getpid()%100000), Flat: hosts})
	if err != nil {
		return err
	}
	defer l.Down()
	logf("lab %s: %d host(s) up in %v", l.Name, hosts, time.Since(start).Round(time.Millisecond))
	if !o.bashrc {
		// Lab hosts see the machine's /root. sshd runs every command through
		// root's bash, which reads ~/.bashrc: a developer's (pyenv init,
		// ~100 processes) adds ~150 ms to each SSH session, once per host
		// for herd but once per task for Ansible. Measure the tools, not
		// this machine's shell setup.
		for _, h := range l.Hosts {
			if out, err := h.Exec(ctx, "sh", "-c", ": > /root/.bashrc"); err != nil {
				return fmt.Errorf("%s: empty /root/.bashrc: %v: %s", h.Name, err, out)
			}
		}
	}
	machine.LoadBefore = bench.LoadAverage()

	var rows []bench.Row
	var failure error
	for _, s := range o.scenarios {
		row, err := scenario(ctx, l, r, s, o.tools, o.steps, o.maxConns, filepath.Join(work, s.Name), logf)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			failure = fmt.Errorf("%s: %w", s.Name, err)
			break
		}
		rows = append(rows, row)
	}
	machine.LoadAfter = bench.LoadAverage()
	if err := report(stdout, o, machine, rows); err != nil {
		return err
	}
	return failure
}

func report(stdout io.Writer, o options, machine bench.Machine, rows []bench.Row) error {
	if o.json {
		return bench.WriteJSON(stdout, machine, rows)
	}
	fmt.Fprintf(stdout, "%d × exec hostname; median of %d run(s); %d CPUs; %s; load average %s before, %s after\n",
		o.steps, o.reps, machine.CPUs, machine.Kernel, machine.LoadBefore, machine.LoadAfter)
	for _, k := range []string{"go", "ansible", "mitogen"} {
		if v := machine.Versions[k]; v != "" {
			fmt.Fprintf(stdout, "  %s: %s\n", k, v)
		}
	}
	return bench.WriteTable(stdout, rows)
}

// scenario measures every tool on the first s.Hosts hosts, through latency
// proxies when s has an RTT.
func scenario(ctx context.Context, l *lab.Lab, r *bench.Runner, s bench.Scenario, tools []string, steps, maxConns int, dir string, logf func(string, ...any)) (bench.Row, error) {
	row := bench.Row{Scenario: s, Tools: map[string]bench.Measurement{}}
	var targets []bench.Target
	for _, h := range l.Hosts[:s.Hosts] {
		t := bench.Target{Name: h.Name, Addr: h.Addr, Port: h.Port, HostKey: h.HostKey}
		if s.RTT > 0 {
			addr, stop, err := l.Latency(h, s.RTT/2, 0)
			if err != nil {
				return row, err
			}
			defer stop()
			host, port, _ := net.SplitHostPort(addr)
			t.Addr = host
			if t.Port, err = strconv.Atoi(port); err != nil {
				return row, fmt.Errorf("latency proxy for %s: address %q", h.Name, addr)
			}
		}
		targets = append(targets, t)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return row, err
	}
	p, err := bench.WriteProject(dir, targets, l.KeyFile, steps)
	if err != nil {
		return row, err
	}
	r.Forks = s.Hosts
	r.MaxConns = maxConns
	if maxConns < 0 {
		r.MaxConns = s.Hosts
	}
	for _, t := range tools {
		logf("%s: %s", s.Name, t)
		var m bench.Measurement
		switch t {
		case "herd":
			m = r.MeasureHerd(ctx, p)
		case "ansible":
			m = r.MeasureAnsible(ctx, p, false)
		case "mitogen":
			m = r.MeasureAnsible(ctx, p, true)
		}
		if m.OK() {
			logf("%s: %s median %v", s.Name, t, m.Median.Round(time.Millisecond))
		} else {
			logf("%s: %s n/a: %s", s.Name, t, m.NA)
		}
		row.Tools[t] = m
	}
	return row, nil
}

// buildHerd builds the CLI as users get it: static, no cgo.
func buildHerd(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "herd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/herd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build herd: %v\n%s", err, b)
	}
	return out, nil
}

func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the herd module (run from its tree, or pass -herd): %w", err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the herd module: run from its tree, or pass -herd BINARY")
	}
	return filepath.Dir(mod), nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
