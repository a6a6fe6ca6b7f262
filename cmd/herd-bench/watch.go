package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/herd-project/herd/internal/bench"
	"github.com/herd-project/herd/internal/lab"
)

// measureWatch is herd-bench -watch: herd watch on a lab of n hosts (see
// bench.MeasureWatch), printed as text or JSON.
func measureWatch(ctx context.Context, o options, n int, idle time.Duration, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	work, cleanup, err := workDir(o, "herd-bench-watch-", logf)
	if err != nil {
		return err
	}
	defer cleanup()
	r := &bench.Runner{Herd: o.herd, Reps: o.reps, Timeout: 2 * time.Minute, Log: logf}
	if r.Herd == "" {
		if r.Herd, err = buildHerd(ctx, work); err != nil {
			return err
		}
	}
	start := time.Now()
	l, err := lab.Up(ctx, lab.Spec{Name: fmt.Sprintf("benchw%d", os.Getpid()%10000), Flat: n})
	if err != nil {
		return err
	}
	defer l.Down()
	logf("lab %s: %d host(s) up in %v", l.Name, n, time.Since(start).Round(time.Millisecond))
	var targets []bench.Target
	var names []string
	byName := map[string]*lab.Host{}
	for _, h := range l.Hosts[:n] {
		if !o.bashrc {
			h.Exec(ctx, "sh", "-c", ": > /root/.bashrc") // as in measureAll
		}
		targets = append(targets, bench.Target{Name: h.Name, Addr: h.Addr, Port: h.Port, HostKey: h.HostKey})
		names = append(names, h.Name)
		byName[h.Name] = h
	}
	p, err := bench.WriteProject(filepath.Join(work, "watch"), targets, l.KeyFile, 1)
	if err != nil {
		return err
	}
	probe := bench.Probe{
		Agents: func(ctx context.Context, host string) ([]int, error) {
			out, err := byName[host].Exec(ctx, "ps", "-eo", "pid=,args=")
			if err != nil {
				return nil, err
			}
			var pids []int
			for _, ln := range strings.Split(string(out), "\n") {
				if f := strings.Fields(ln); len(f) >= 3 && strings.HasSuffix(f[1], "herd") && f[2] == "agent" {
					pid, _ := strconv.Atoi(f[0])
					pids = append(pids, pid)
				}
			}
			return pids, nil
		},
		Stat: func(ctx context.Context, host string, pid int) (int64, int64, error) {
			stat, err := byName[host].Exec(ctx, "cat", fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				return 0, 0, err
			}
			status, err := byName[host].Exec(ctx, "cat", fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				return 0, 0, err
			}
			return bench.ParseProcStat(string(stat), string(status))
		},
		RxBytes: func(ctx context.Context, host string) (int64, error) {
			out, err := byName[host].Exec(ctx, "cat", "/proc/net/dev")
			if err != nil {
				return 0, err
			}
			for _, ln := range strings.Split(string(out), "\n") {
				name, rest, ok := strings.Cut(strings.TrimSpace(ln), ":")
				if ok && name == "eth0" {
					if f := strings.Fields(rest); len(f) > 0 {
						return strconv.ParseInt(f[0], 10, 64)
					}
				}
			}
			return 0, fmt.Errorf("%s: no eth0 in /proc/net/dev", host)
		},
	}
	load := bench.LoadAverage()
	f, err := r.MeasureWatch(ctx, p, names, probe, idle, o.reps)
	if err != nil {
		return err
	}
	if o.json {
		return bench.WriteWatchJSON(stdout, f)
	}
	fmt.Fprintf(stdout, "%s, %d CPUs, %s; load average %s before, %s after\n",
		time.Now().Format("2006-01-02"), runtime.NumCPU(), bench.Version("uname", "-sr"), load, bench.LoadAverage())
	bench.WriteWatch(stdout, f)
	return nil
}
