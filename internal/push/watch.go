package push

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/wire"
)

// Watch mode (herd watch): connect to every host once, apply, and keep the
// agents. On a change of the policy's files (Reload) every host is planned
// again, and each host gets, per role, the new plan only when it differs
// from the last one it was sent, with the IDs of the resources that are
// new or changed (plan.Diff); the agent keeps the plan, runs only those
// (plan.Subset) and watches every managed resource for drift (package
// agent, watch.go). Hosts whose plans did not change receive nothing.
//
// The cluster is converged when no host has a plan or repair in flight;
// with ConvergedTimeout, Watch returns once it has been converged with no
// event anywhere for that long (any event or edit restarts the clock).
// Differences from apply: roles are sent to every host at once (a host
// runs its roles in order, but no host waits for others to finish a role),
// serial/max_fail do not apply, and before_connect/after_connect hooks do
// not run.

// WatchOptions configure Watch.
type WatchOptions struct {
	Options
	// Reload evaluates the policy (and the -i inventory) again after a
	// change; an error is reported and the hosts keep their plans.
	Reload func() (*policy.Policy, *inventory.Inventory, error)
	// Changes delivers one value per (debounced) change of the files the
	// policy reads; the caller owns the file watching (cmd/herd).
	Changes <-chan string
	// ConvergedTimeout: 0 watches until Stop or ctx ends.
	ConvergedTimeout time.Duration
	// Poll is the agents' re-check interval for what inotify cannot see.
	Poll time.Duration
	// Status hears every change of a host's state, with the counts.
	Status func(HostStatus, Tally)
}

// HostState is a host's place in the watch.
type HostState string

const (
	Converging HostState = "converging"
	Converged  HostState = "converged"
	HostFailed HostState = "failed"
	HostLost   HostState = "lost" // connection lost, being retried
)

// HostStatus is a host's state and since when.
type HostStatus struct {
	Host  string
	State HostState
	Since time.Time
	Msg   string
}

// Tally counts hosts by state.
type Tally map[HostState]int

func (t Tally) String() string {
	var parts []string
	for _, s := range []HostState{Converged, Converging, HostFailed, HostLost} {
		parts = append(parts, fmt.Sprintf("%d %s", t[s], s))
	}
	return strings.Join(parts, ", ")
}

// WatchResult is each host's last state when Watch returned.
type WatchResult struct {
	Hosts map[string]HostStatus
	// TimedOut: the run ended because the cluster stayed converged for
	// ConvergedTimeout.
	TimedOut bool
}

// agentMsg is what a host's reader hands the watch loop.
type agentMsg struct {
	host string
	ac   *agentConn
	msg  wire.Message
	err  error // the connection ended
}

// Watch runs pol and keeps it applied; see above.
func Watch(ctx context.Context, pol *policy.Policy, o WatchOptions) (*WatchResult, error) {
	r, roleHosts, err := prepare(pol, o.Options)
	if err != nil {
		return nil, err
	}
	defer r.close()
	o.Options = r.o
	r.useExchange(ctx, pol, true)
	plans, err := r.planAll(ctx, roleHosts)
	if err != nil {
		return nil, err
	}
	w := newWatchLoop(ctx, r, o)
	defer w.unfollow()
	var reached []*inventory.Host
	for i := range pol.Roles {
		for _, h := range roleHosts[i] {
			hp := plans[i][h.Name]
			if !hp.skip && hp.unreac == nil && !slices.ContainsFunc(reached, func(o *inventory.Host) bool { return o.Name == h.Name }) {
				reached = append(reached, h)
			}
		}
	}
	refused := w.lockHosts(reached)
	for i, role := range pol.Roles {
		for _, h := range roleHosts[i] {
			hp := plans[i][h.Name]
			if hp.skip {
				continue
			}
			wh := w.host(h)
			wh.roles[role.Name] = role
			if wh.state == HostLost {
				continue // rejoin plans every role
			}
			if hp.unreac != nil {
				w.lost(wh, hp.unreac)
				continue
			}
			wh.facts, wh.known = hp.ac.hello.Facts, true
			if err := refused[h.Name]; err != nil {
				w.lost(wh, err)
				continue
			}
			w.send(wh, role, hp.plan, hp.files, nil, "role "+role.Name+": whole plan")
		}
	}
	w.follow()
	return w.loop()
}

// loop is the watch's single owner of state: agents' messages, policy
// changes, retries and the converged clock all come through here.
func (w *watchLoop) loop() (*WatchResult, error) {
	conv := time.NewTimer(time.Hour)
	conv.Stop()
	defer conv.Stop()
	ping := time.NewTicker(PingInterval)
	defer ping.Stop()
	for {
		w.armConverged(conv)
		select {
		case <-w.ctx.Done():
			return w.result(false), w.ctx.Err()
		case <-w.o.Stop:
			return w.result(false), nil
		case m := <-w.msgs:
			w.handle(m)
		case f := <-w.retries:
			f()
		case <-ping.C:
			w.ping()
		case b := <-w.xch.changes:
			w.exchanged(b)
		case what, ok := <-w.o.Changes:
			if !ok {
				w.o.Changes = nil
				continue
			}
			w.activity = time.Now()
			w.replan(what)
		case <-conv.C:
			if w.settled() && time.Since(w.activity) >= w.o.ConvergedTimeout {
				return w.result(true), nil
			}
		}
	}
}

// armConverged sets the converged clock: ConvergedTimeout after the last
// activity, while every host is settled.
func (w *watchLoop) armConverged(t *time.Timer) {
	if w.o.ConvergedTimeout <= 0 {
		return
	}
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	if w.settled() {
		t.Reset(max(time.Until(w.activity.Add(w.o.ConvergedTimeout)), 0))
	}
}

// settled: no host has work in flight. A lost host does not hold the
// others back (it is retried, and counted in the exit status).
func (w *watchLoop) settled() bool {
	for _, wh := range w.hosts {
		if wh.state == Converging {
			return false
		}
	}
	return true
}

func (w *watchLoop) result(timedOut bool) *WatchResult {
	res := &WatchResult{Hosts: map[string]HostStatus{}, TimedOut: timedOut}
	for name, wh := range w.hosts {
		res.Hosts[name] = HostStatus{Host: name, State: wh.state, Since: wh.since, Msg: wh.msg}
	}
	return res
}

// SortedHosts returns the host names in order.
func (r *WatchResult) SortedHosts() []string {
	out := make([]string, 0, len(r.Hosts))
	for h := range r.Hosts {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}
