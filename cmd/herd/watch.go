package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/push"
	"github.com/herd-project/herd/internal/ui"
)

// runWatch is `herd watch POLICY [push flags] [--converged-timeout D]
// [--poll D]`: apply, then keep every host converged (package push,
// watch.go) until Ctrl-C or, with --converged-timeout, until the whole
// cluster has been converged and quiet for that long.
func runWatch(in *interrupts, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f policyFlags
	f.register(fs)
	var pf pushFlags
	lockWait := pf.register(fs)
	convTimeout := fs.Duration("converged-timeout", 0, "exit 0 once every host has been converged, with no event anywhere, this long (0: run until Ctrl-C)")
	poll := fs.Duration("poll", 10*time.Second, "how often agents re-check packages, services, users and groups for drift (0: never; files are watched with inotify)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "lock-wait" {
			pf.lockWait = lockWait
		}
	})
	switch {
	case len(pos) != 1:
		fmt.Fprintf(stderr, "herd watch: want exactly one policy file, got %d\n", len(pos))
		return exitUsage
	case f.local:
		fmt.Fprintln(stderr, "herd watch: --local is not supported; watch pushes to the inventory's hosts")
		return exitUsage
	case *convTimeout < 0 || *poll < 0 || *lockWait < 0:
		fmt.Fprintln(stderr, "herd watch: --converged-timeout, --poll and --lock-wait must not be negative")
		return exitUsage
	}
	if err := validateFlags(fs, f, pf); err != nil {
		fmt.Fprintf(stderr, "herd watch: %v\n", err)
		return exitUsage
	}
	file := pos[0]
	ps, code := setupPush(in, file, f, pf, stdout, stderr)
	if ps == nil {
		return code
	}
	files, err := newFileWatch(ps.pol.Dir, inventoryFiles(ps.pol, ps.inv))
	if err != nil {
		fmt.Fprintf(stderr, "herd watch: %v\n", err)
		return exitUsage
	}
	defer files.Close()
	out := ui.New(stdout, ui.Options{JSON: f.json, Diff: f.diff, Verbose: f.verbose})
	out.MultiHost(true)
	var mu sync.Mutex // status lines and events share stdout
	sink := func(e event.Event) { mu.Lock(); defer mu.Unlock(); out.Handle(e) }
	status := func(s push.HostStatus, t push.Tally) {
		mu.Lock()
		defer mu.Unlock()
		if f.json {
			out.Handle(event.Event{Time: s.Since, Type: "host_state", Host: s.Host, Msg: fmt.Sprintf("%s %s (%s)", s.State, s.Msg, t)})
			return
		}
		msg := ""
		if s.Msg != "" {
			msg = ": " + s.Msg
		}
		fmt.Fprintf(stdout, "%s  %s %s since %s%s  [%s]\n", s.Since.Format("15:04:05"), s.Host, s.State, s.Since.Format("15:04:05.000"), msg, t)
	}
	reload := func() (*policy.Policy, *inventory.Inventory, error) {
		pol, err := policy.Load(file, f.loadOptions(in, stderr))
		if err != nil {
			return nil, nil, err
		}
		var inv *inventory.Inventory
		if len(pf.inventory) > 0 {
			if inv, err = loadSources(pf.inventory, file, f.vault); err != nil {
				return nil, nil, err
			}
		}
		files.setFiles(inventoryFiles(pol, inv))
		return pol, inv, nil
	}
	start := time.Now()
	res, err := push.Watch(in.ctx, ps.pol, push.WatchOptions{
		Options: push.Options{
			Parallel:      f.parallel,
			Limit:         ps.limit,
			Inventory:     ps.inv,
			Sink:          sink,
			Defaults:      ps.defaults,
			Transport:     transportConfig(pf, ps.maxConns),
			AskBecomePass: askBecomePass(pf),
			Stop:          in.stop,
			Agent:         ps.agent,
			MoreAgents:    ps.moreAgents,
		},
		Reload:           reload,
		Changes:          files.out,
		ConvergedTimeout: *convTimeout,
		Poll:             *poll,
		Status:           status,
	})
	if code, failed := runFailed(err, stderr); failed {
		return code
	}
	return watchExit(res, time.Since(start), stdout, in.stopped())
}

// watchExit prints each host's last state and picks the exit status: 0
// when every host ended converged, 1 when one failed, 3 when one was
// unreachable, 4 when interrupted while a host was still converging.
func watchExit(res *push.WatchResult, took time.Duration, stdout io.Writer, stopped bool) int {
	if res == nil {
		return exitInterrupted
	}
	worst := map[push.HostState]bool{}
	for _, name := range res.SortedHosts() {
		s := res.Hosts[name]
		worst[s.State] = true
		fmt.Fprintf(stdout, "%-20s %-10s since %s %s\n", name, s.State, s.Since.Format("15:04:05"), s.Msg)
	}
	why := "interrupted"
	if res.TimedOut {
		why = "converged timeout"
	}
	fmt.Fprintf(stdout, "watch ended (%s) after %s\n", why, took.Round(time.Millisecond))
	switch {
	case worst[push.HostFailed]:
		return exitFailed
	case worst[push.HostLost]:
		return exitUnreachable
	case worst[push.Converging] && stopped:
		return exitInterrupted
	}
	return exitOK
}

// inventoryFiles are the inventory files a policy (and -i) read.
func inventoryFiles(pol *policy.Policy, inv *inventory.Inventory) []string {
	var out []string
	if inv != nil && inv.Source != "" {
		out = append(out, inv.Source)
	}
	for _, i := range policy.Inventories(pol) {
		if i.Source != "" {
			out = append(out, i.Source)
		}
	}
	return out
}
