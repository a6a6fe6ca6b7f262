package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/filewatch"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/push"
	"github.com/herd-project/herd/internal/ui"
)

// newWatchCmd is `herd watch POLICY [push flags] [--converged-timeout D]
// [--poll D]`: apply, then keep every host converged (package push,
// watch.go) until Ctrl-C or, with --converged-timeout, until the whole
// cluster has been converged and quiet for that long.
func newWatchCmd(a *app) *cobra.Command {
	var f policyFlags
	var pf pushFlags
	var w watchFlags
	cmd := &cobra.Command{
		Use:               "watch POLICY",
		Short:             "make it so and keep it so: re-apply edits, repair drift",
		Args:              exactlyOnePolicy,
		ValidArgsFunction: completePolicyFile,
		Run: func(cmd *cobra.Command, args []string) {
			in, end := watchInterrupts(a.stderr)
			defer end()
			a.code = runWatch(in, cmd, args[0], f, pf, w, a.stdout, a.stderr)
		},
	}
	f.register(cmd.Flags())
	pf.register(cmd)
	cmd.Flags().DurationVar(&w.convTimeout, "converged-timeout", 0, "exit 0 once every host has been converged, with no event anywhere, this long (0: run until Ctrl-C)")
	cmd.Flags().DurationVar(&w.poll, "poll", 10*time.Second, "how often agents re-check packages, services, users and groups for drift (0: never; files are watched with inotify)")
	return cmd
}

// watchFlags are the flags only watch has.
type watchFlags struct{ convTimeout, poll time.Duration }

func runWatch(in *interrupts, cmd *cobra.Command, file string, f policyFlags, pf pushFlags, w watchFlags, stdout, stderr io.Writer) int {
	switch {
	case f.local:
		fmt.Fprintln(stderr, "herd watch: --local is not supported; watch pushes to the inventory's hosts")
		return exitUsage
	case w.convTimeout < 0 || w.poll < 0 || pf.lockWaitFlag < 0:
		fmt.Fprintln(stderr, "herd watch: --converged-timeout, --poll and --lock-wait must not be negative")
		return exitUsage
	}
	if err := pf.finish(cmd.Flags(), &f); err != nil {
		fmt.Fprintf(stderr, "herd watch: %v\n", err)
		return exitUsage
	}
	ps, code := setupPush(in, file, f, pf, stdout, stderr)
	if ps == nil {
		return code
	}
	// Every input of the plans is watched, wherever it lives: what the
	// policy read so far, what planning reads later, the -i inventory.
	files, err := filewatch.New(ps.pol.Dir, invInputs(ps.inv))
	if err != nil {
		fmt.Fprintf(stderr, "herd watch: %v\n", err)
		return exitUsage
	}
	defer files.Close()
	ps.pol.OnInput(func(p string) { files.Add(p) })
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
		fmt.Fprintln(stdout, statusLine(s, t))
	}
	reload := func() (*policy.Policy, *inventory.Inventory, error) {
		opts := f.loadOptions(in, stderr)
		opts.OnInput = func(p string) { files.Add(p) } // also what a failing load read
		pol, err := policy.Load(file, opts)
		if err != nil {
			return nil, nil, err
		}
		var inv *inventory.Inventory
		if len(pf.inventory) > 0 {
			if inv, err = loadSources(pf.inventory, file, f.vault); err != nil {
				return nil, nil, err
			}
			files.Add(inv.Inputs...)
		}
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
			Transport:     transportConfig(pf, ps.maxConns, ps.defaults),
			AskBecomePass: askBecomePass(pf),
			Stop:          in.stop,
			Agent:         ps.agent,
			MoreAgents:    ps.moreAgents,
		},
		Reload:           reload,
		Changes:          files.Changes(),
		ConvergedTimeout: w.convTimeout,
		Poll:             w.poll,
		Status:           status,
	})
	if code, failed := runFailed(err, stderr); failed {
		return code
	}
	return watchExit(res, time.Since(start), stdout, in.stopped())
}

// statusLine is the live display's line for a host's new state: when,
// the host, its state since when and why, and the running count of hosts
// in each state ("[2 converged, 1 converging, 0 failed, 0 lost]").
func statusLine(s push.HostStatus, t push.Tally) string {
	msg := ""
	if s.Msg != "" {
		msg = ": " + s.Msg
	}
	return fmt.Sprintf("%s  %s %s since %s%s  [%s]", s.Since.Format("15:04:05"), s.Host, s.State, s.Since.Format("15:04:05.000"), msg, t)
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

// invInputs are the paths the -i inventory read (none without -i).
func invInputs(inv *inventory.Inventory) []string {
	if inv == nil {
		return nil
	}
	return inv.Inputs
}
