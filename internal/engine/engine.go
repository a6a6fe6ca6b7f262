// Package engine runs a plan on the machine it is on: it builds every
// resource, orders them by the plan's edges, runs independent branches in
// parallel, and reports each step as an event. Everything that can be found
// wrong with a plan is found before the first resource runs, so a bad policy
// never leaves a machine half-configured.
package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
)

// DefaultParallel is how many resources run at once when Options.Parallel is
// not set: enough to overlap slow package installs, few enough not to
// overload a small machine.
const DefaultParallel = 4

// Options tune one Run.
type Options struct {
	// Check runs in check mode: resources are only inspected (Check), never
	// changed (no Apply, no Refresh), and nothing is written to StateDir. The
	// events say what would change.
	Check bool
	// Parallel bounds how many resources run at once (DefaultParallel if <= 0).
	Parallel int
	// StateDir holds herd's state on this machine (pending notifications,
	// generated passwords). Default ~/.herd/state. Created 0700 in apply mode.
	StateDir string
	// Sink receives every event, one call at a time (the event.Sink
	// contract); it should not block long, since resources wait for it.
	// Nil discards events.
	Sink event.Sink
	// Host and Role are copied into every event.
	Host, Role string
	// Fetch is lent to resources (resource.Env.Fetch) to get contents that
	// stay on the controller until needed: over the wire on an agent, from
	// the controller's own files in local mode (cmd/herd passes a
	// fileserver index; the engine never imports controller code).
	Fetch func(ctx context.Context, h string, offset int64, w io.Writer) error
	// Stop, when closed, ends the run softly: no resource starts after it
	// (nor a retry of one), the resources in flight finish under ctx, and
	// the rest are skipped. The agent closes it when its controller goes
	// away or asks to stop; cancelling ctx instead also aborts what runs.
	Stop <-chan struct{}
}

// Result sums up a run.
type Result struct {
	Counts event.Counts
	// Failed is true when a resource failed or the run was cancelled before
	// every resource ran.
	Failed bool
}

// Run executes p. It returns an error only when p cannot be run at all: a
// structural problem (unknown reference, unknown kind, bad params, cycle)
// named by resource ID and policy position, or an unusable StateDir. Such
// errors are found before any resource runs. Failures of resources are
// reported as events and in Result, not as an error.
func Run(ctx context.Context, p *plan.Plan, o Options) (Result, error) {
	if p == nil {
		return Result{}, fmt.Errorf("engine: no plan")
	}
	prep, err := prepare(p)
	if err != nil {
		return Result{}, err
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Role == "" {
		o.Role = p.Role
	}
	if o.Host == "" {
		o.Host = p.Host
	}
	if o.StateDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return Result{}, fmt.Errorf("engine: no state directory given and no home directory: %w", err)
		}
		o.StateDir = filepath.Join(home, ".herd", "state")
	}
	if !o.Check {
		if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
			return Result{}, fmt.Errorf("engine: state directory: %w", err)
		}
	}
	r := newRunner(p, prep, o)
	// Pending refreshes are keyed by the plan's role: that is what the
	// next run of the same policy will carry.
	role := p.Role
	if role == "" {
		role = o.Role
	}
	pending, err := loadPending(o.StateDir, role, !o.Check)
	if err != nil {
		return Result{}, err
	}
	r.pending = pending
	if err := r.dropStalePending(); err != nil {
		return Result{}, err
	}
	return r.run(ctx), nil
}
