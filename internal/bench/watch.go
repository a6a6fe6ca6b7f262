package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The watch bench (herd-bench -watch): `herd watch` on many hosts, a role
// of one template and WatchFiles files. It measures the time from the save
// of a template edit to every host converged, the bytes that edit cost on
// each host's network interface, and the idle agents' CPU and memory.

// WatchFiles is how many plain files the watch bench's role manages
// besides its template.
const WatchFiles = 20

// WatchPolicy is the watch bench's policy.
func WatchPolicy() string {
	var b strings.Builder
	b.WriteString("def main(host):\n    directory(\"/root/watchbench\", mode = 0o755)\n")
	b.WriteString("    template(\"/root/watchbench/app.conf\", src = \"app.conf.tmpl\")\n")
	for i := 1; i <= WatchFiles; i++ {
		fmt.Fprintf(&b, "    file(\"/root/watchbench/f%d\", content = \"file %d of \" + host.name + \"\\n\")\n", i, i)
	}
	b.WriteString("\nrole(\"watchbench\", main = main)\n")
	return b.String()
}

// WatchTemplate is the template after edit n: a line for host only
// (every host when host is "").
func WatchTemplate(n int, host string) string {
	base := "name={{ .host.name }}\nport=8080\nworkers=4\n"
	if n == 0 {
		return base
	}
	if host == "" {
		return base + fmt.Sprintf("edit=%d\n", n)
	}
	return base + fmt.Sprintf("{{ if eq .host.name %q }}edit=%d\n{{ end }}", host, n)
}

// Probe reads a target's counters, from inside it (not over SSH, so the
// reading costs no bytes on the measured link).
type Probe struct {
	// Agents returns the PIDs of the herd agents on host.
	Agents func(ctx context.Context, host string) ([]int, error)
	// Stat returns a PID's CPU time in clock ticks and RSS in KiB.
	Stat func(ctx context.Context, host string, pid int) (ticks, rssKiB int64, err error)
	// RxBytes is what host's network interface received so far.
	RxBytes func(ctx context.Context, host string) (int64, error)
}

// WatchFigures are the watch bench's results.
type WatchFigures struct {
	Hosts int `json:"hosts"`
	// FirstConverged: from start to every host converged (includes the
	// agent install when the cache was cold).
	FirstConverged time.Duration `json:"first_converged_ns"`
	// One host's line edited, per edit: save to every host converged, bytes
	// received by the edited host, the most any other host received
	// (pings and keepalives only, when the edit reached no other host),
	// and the others' idle baseline over as long.
	OneHost []EditFigures `json:"one_host"`
	// Every host's rendering edited.
	AllHosts []EditFigures `json:"all_hosts"`
	// Idle: agents' CPU over IdleFor, and RSS.
	IdleFor       time.Duration `json:"idle_for_ns"`
	AgentCPUMax   float64       `json:"agent_cpu_max_pct"`
	AgentCPUMean  float64       `json:"agent_cpu_mean_pct"`
	AgentRSSMax   int64         `json:"agent_rss_max_kib"`
	AgentRSSMean  int64         `json:"agent_rss_mean_kib"`
	IdleRxPerHost int64         `json:"idle_rx_bytes_per_host"` // mean, over IdleFor
	ControllerRSS int64         `json:"controller_rss_kib"`
	ControllerCPU float64       `json:"controller_cpu_pct"`
}

// EditFigures are one edit's results.
type EditFigures struct {
	SaveToConverged time.Duration `json:"save_to_converged_ns"`
	EditedRx        int64         `json:"edited_rx_bytes"` // mean over the edited hosts
	OthersRxMax     int64         `json:"others_rx_max_bytes"`
	PlansSent       int           `json:"plans_sent"`
	PlanBytes       int64         `json:"plan_bytes"` // as herd reports them, summed
}

var tallyRe = regexp.MustCompile(`\((\d+) converged, (\d+) converging, (\d+) failed, (\d+) lost\)`)
var sentRe = regexp.MustCompile(`\((\d+) bytes sent\)`)

// watchProc is a running herd watch and what its --json output said.
type watchProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	cond *sync.Cond
	// allConverged is when the tally last showed every host converged
	// (zero while some host is not).
	allConverged time.Time
	states       []hostState
	done         bool
	tail         []string
}

type hostState struct {
	at    time.Time
	host  string
	state string
	sent  int64
}

func (w *watchProc) read(r io.Reader, hosts int) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var e struct {
			Type string `json:"type"`
			Host string `json:"host"`
			Msg  string `json:"msg"`
		}
		now := time.Now()
		w.mu.Lock()
		w.tail = append(w.tail, line)
		if len(w.tail) > 20 {
			w.tail = w.tail[1:]
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Type == "host_state" {
			st := hostState{at: now, host: e.Host, state: strings.Fields(e.Msg + " ?")[0]}
			if m := sentRe.FindStringSubmatch(e.Msg); m != nil {
				st.sent, _ = strconv.ParseInt(m[1], 10, 64)
			}
			w.states = append(w.states, st)
			if m := tallyRe.FindStringSubmatch(e.Msg); m != nil && m[1] == strconv.Itoa(hosts) {
				w.allConverged = now
			} else {
				w.allConverged = time.Time{}
			}
		}
		w.cond.Broadcast()
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.done = true
	w.cond.Broadcast()
	w.mu.Unlock()
}

// waitConverged waits until every host is converged after since, and
// returns when the tally said so.
func (w *watchProc) waitConverged(ctx context.Context, since time.Time, timeout time.Duration) (time.Time, error) {
	stop := time.AfterFunc(timeout, func() { w.mu.Lock(); w.cond.Broadcast(); w.mu.Unlock() })
	defer stop.Stop()
	deadline := time.Now().Add(timeout)
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		// A converging state after since must have been seen, then all
		// converged again.
		moved := false
		for _, s := range w.states {
			if s.at.After(since) && s.state == "converging" {
				moved = true
			}
		}
		if moved && w.allConverged.After(since) {
			return w.allConverged, nil
		}
		if w.done || time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("hosts not all converged %v after the edit: %s", timeout, strings.Join(w.tail, "\n"))
		}
		w.cond.Wait()
	}
}

// MeasureWatch runs herd watch on the project's hosts (p.Dir must hold
// WatchPolicy as site.star), lets it go idle, and edits the template:
// reps edits of one host's line, reps edits of every host's.
func (r *Runner) MeasureWatch(ctx context.Context, p *Project, hosts []string, probe Probe, idle time.Duration, reps int) (*WatchFigures, error) {
	tmpl := filepath.Join(p.Dir, "app.conf.tmpl")
	if err := os.WriteFile(tmpl, []byte(WatchTemplate(0, "")), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.Policy, []byte(WatchPolicy()), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(r.Herd, "watch", p.Policy, "-i", p.Inventory, "--ssh-config", "none",
		"--known-hosts", p.KnownHosts, "--json", "--poll", "10s")
	cmd.Env, cmd.Dir = r.env(p, nil), p.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	w := &watchProc{cmd: cmd}
	w.cond = sync.NewCond(&w.mu)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go w.read(out, len(hosts))
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		ended := make(chan struct{})
		go func() { cmd.Wait(); close(ended) }()
		select {
		case <-ended:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-ended
		}
	}()
	f := &WatchFigures{Hosts: len(hosts), IdleFor: idle}
	conv, err := w.waitConverged(ctx, start, r.Timeout)
	if err != nil {
		return nil, err
	}
	f.FirstConverged = conv.Sub(start)
	r.logf("watch: %d hosts converged %v after start", len(hosts), f.FirstConverged.Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let the first run's stragglers settle
	if err := r.measureIdle(ctx, f, hosts, probe, cmd.Process.Pid); err != nil {
		return nil, err
	}
	for i := 1; i <= 2*reps; i++ {
		one := i <= reps
		target := "" // every host's line
		if one {
			target = hosts[0] // its line goes from edit=i-1 to edit=i
		}
		e, err := r.edit(ctx, w, tmpl, WatchTemplate(i, target), target, hosts, probe, f.IdleRxPerHost, idle)
		if err != nil {
			return nil, err
		}
		if one {
			f.OneHost = append(f.OneHost, e)
		} else {
			f.AllHosts = append(f.AllHosts, e)
		}
		r.logf("watch: edit %d (%s): converged %v after the save, %d plan(s) sent, %d bytes received per edited host, others at most %d",
			i, map[bool]string{true: "one host", false: "all hosts"}[one], e.SaveToConverged.Round(time.Millisecond), e.PlansSent, e.EditedRx, e.OthersRxMax)
	}
	return f, nil
}

// edit saves the template and measures the edit's cost.
func (r *Runner) edit(ctx context.Context, w *watchProc, tmpl, body, target string, hosts []string, probe Probe, idleRx int64, idle time.Duration) (EditFigures, error) {
	var e EditFigures
	rx0, err := rxAll(ctx, hosts, probe)
	if err != nil {
		return e, err
	}
	w.mu.Lock()
	mark := len(w.states)
	w.mu.Unlock()
	// Write and rename, as editors save: one event, whole content.
	tmp := tmpl + ".new"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return e, err
	}
	saved := time.Now()
	if err := os.Rename(tmp, tmpl); err != nil {
		return e, err
	}
	conv, err := w.waitConverged(ctx, saved, r.Timeout)
	if err != nil {
		return e, err
	}
	e.SaveToConverged = conv.Sub(saved)
	time.Sleep(time.Second) // late bytes (TCP acks) land in this edit's count
	rx1, err := rxAll(ctx, hosts, probe)
	if err != nil {
		return e, err
	}
	w.mu.Lock()
	edited := map[string]bool{}
	for _, s := range w.states[mark:] {
		if s.state == "converging" && s.sent > 0 {
			edited[s.host] = true
			e.PlansSent++
			e.PlanBytes += s.sent
		}
	}
	w.mu.Unlock()
	if target != "" && (len(edited) != 1 || !edited[target]) {
		return e, fmt.Errorf("one-host edit of %s sent plans to %v", target, edited)
	}
	if target == "" && len(edited) != len(hosts) {
		return e, fmt.Errorf("all-host edit sent plans to %d of %d hosts", len(edited), len(hosts))
	}
	var sum int64
	for _, h := range hosts {
		d := rx1[h] - rx0[h]
		if edited[h] {
			sum += d
		} else {
			e.OthersRxMax = max(e.OthersRxMax, d)
		}
	}
	e.EditedRx = sum / int64(len(edited))
	return e, nil
}

// measureIdle samples every agent's CPU time and RSS over f.IdleFor, and
// the controller's.
func (r *Runner) measureIdle(ctx context.Context, f *WatchFigures, hosts []string, probe Probe, controller int) error {
	type sample struct {
		host string
		pid  int
		t0   int64
	}
	var samples []sample
	for _, h := range hosts {
		pids, err := probe.Agents(ctx, h)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return fmt.Errorf("no herd agent on %s while watching", h)
		}
		for _, pid := range pids {
			t0, _, err := probe.Stat(ctx, h, pid)
			if err != nil {
				return err
			}
			samples = append(samples, sample{h, pid, t0})
		}
	}
	c0, _, err := procStat(controller)
	if err != nil {
		return err
	}
	rx0, err := rxAll(ctx, hosts, probe)
	if err != nil {
		return err
	}
	begin := time.Now()
	select {
	case <-time.After(f.IdleFor):
	case <-ctx.Done():
		return ctx.Err()
	}
	took := time.Since(begin).Seconds()
	rx1, err := rxAll(ctx, hosts, probe)
	if err != nil {
		return err
	}
	var cpus []float64
	var rssSum int64
	for _, s := range samples {
		t1, rss, err := probe.Stat(ctx, s.host, s.pid)
		if err != nil {
			return err
		}
		cpus = append(cpus, 100*float64(t1-s.t0)/clkTck/took)
		rssSum += rss
		f.AgentRSSMax = max(f.AgentRSSMax, rss)
	}
	for _, h := range hosts {
		f.IdleRxPerHost += rx1[h] - rx0[h]
	}
	f.IdleRxPerHost /= int64(len(hosts))
	f.AgentCPUMax = slices.Max(cpus)
	for _, c := range cpus {
		f.AgentCPUMean += c / float64(len(cpus))
	}
	f.AgentRSSMean = rssSum / int64(len(samples))
	c1, rss, err := procStat(controller)
	if err != nil {
		return err
	}
	f.ControllerCPU = 100 * float64(c1-c0) / clkTck / took
	f.ControllerRSS = rss
	r.logf("watch: idle %v: %d agents, CPU max %.2f%% mean %.3f%%, RSS max %d KiB; controller %.2f%% CPU, %d KiB",
		f.IdleFor, len(samples), f.AgentCPUMax, f.AgentCPUMean, f.AgentRSSMax, f.ControllerCPU, f.ControllerRSS)
	return nil
}

// clkTck is USER_HZ, 100 on every Linux that herd targets.
const clkTck = 100

func rxAll(ctx context.Context, hosts []string, probe Probe) (map[string]int64, error) {
	out := map[string]int64{}
	for _, h := range hosts {
		n, err := probe.RxBytes(ctx, h)
		if err != nil {
			return nil, err
		}
		out[h] = n
	}
	return out, nil
}

// ParseProcStat reads utime+stime (clock ticks) from /proc/PID/stat text
// and VmRSS (KiB) from /proc/PID/status text.
func ParseProcStat(stat, status string) (ticks, rssKiB int64, err error) {
	i := strings.LastIndex(stat, ")")
	if i < 0 {
		return 0, 0, fmt.Errorf("not a /proc/PID/stat: %q", stat)
	}
	fields := strings.Fields(stat[i+1:])
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("short /proc/PID/stat: %q", stat)
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad /proc/PID/stat times: %q", stat)
	}
	for _, ln := range strings.Split(status, "\n") {
		if f := strings.Fields(ln); len(f) >= 2 && f[0] == "VmRSS:" {
			rssKiB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return ut + st, rssKiB, nil
}

func procStat(pid int) (int64, int64, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return ParseProcStat(string(stat), string(status))
}

// WriteWatch prints the watch figures as text.
func WriteWatch(w io.Writer, f *WatchFigures) {
	fmt.Fprintf(w, "herd watch, %d hosts, a role of 1 template + %d files\n", f.Hosts, WatchFiles)
	fmt.Fprintf(w, "  start to all converged:           %v\n", f.FirstConverged.Round(time.Millisecond))
	for _, set := range []struct {
		name  string
		edits []EditFigures
	}{{"one host's line edited", f.OneHost}, {"every host's line edited", f.AllHosts}} {
		var ds []time.Duration
		var rx, others, planBytes int64
		plans := 0
		for _, e := range set.edits {
			ds = append(ds, e.SaveToConverged)
			rx += e.EditedRx
			others = max(others, e.OthersRxMax)
			plans += e.PlansSent
			planBytes += e.PlanBytes
		}
		if len(ds) == 0 {
			continue
		}
		n := int64(len(set.edits))
		slices.Sort(ds)
		fmt.Fprintf(w, "  %s (%d edits):\n", set.name, n)
		fmt.Fprintf(w, "    save to all converged:          median %v, max %v\n", ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
		fmt.Fprintf(w, "    plans sent per edit:            %d (herd counts %d bytes of plan per plan)\n", int64(plans)/n, planBytes/int64(max(plans, 1)))
		fmt.Fprintf(w, "    received per edited host (net): %d bytes (mean)\n", rx/n)
		fmt.Fprintf(w, "    received by any other host:     at most %d bytes (idle baseline %d bytes per %v)\n", others, f.IdleRxPerHost, f.IdleFor)
	}
	fmt.Fprintf(w, "  idle over %v: agent CPU max %.2f%%, mean %.3f%%; agent RSS max %d KiB, mean %d KiB\n",
		f.IdleFor, f.AgentCPUMax, f.AgentCPUMean, f.AgentRSSMax, f.AgentRSSMean)
	fmt.Fprintf(w, "  controller: %.2f%% CPU idle, %d KiB RSS\n", f.ControllerCPU, f.ControllerRSS)
}

// WriteWatchJSON prints the watch figures as JSON.
func WriteWatchJSON(w io.Writer, f *WatchFigures) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(f)
}
