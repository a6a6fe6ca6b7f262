package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/resource"
)

// runOne takes resource i from Start to its terminal event and reports
// whether its dependents may run.
func (r *runner) runOne(ctx context.Context, i int) bool {
	res := r.p.Resources[i]
	start := time.Now()
	r.report(i, event.Event{Type: event.Start}, true)

	failed := func(err error, out resource.Change, msgSafe bool) bool {
		r.report(i, event.Event{
			Type: event.Failed, Msg: err.Error(), Stdout: out.Stdout, Stderr: out.Stderr,
			Duration: time.Since(start),
		}, msgSafe)
		return false
	}

	if r.o.Check && len(res.Collects()) > 0 {
		// Nothing is exported in check mode: say whom apply would wait for.
		r.markAhead(res.ID)
		r.report(i, checkWait(res, time.Since(start)), true)
		return true
	}
	params, err := r.bindParams(res)
	if err != nil && r.o.Check && errors.Is(err, errNoOutput) {
		// The sender would only produce the value when it really runs.
		r.markAhead(res.ID)
		r.report(i, event.Event{Type: event.Changed, Duration: time.Since(start),
			Msg: "may change: a value it receives is known only when the run applies (" + err.Error() + ")"}, true)
		return true
	}
	if err != nil {
		return failed(err, resource.Change{}, true)
	}
	built := res
	built.Params = params
	inst, err := resource.New(built, r.p.Blobs)
	if err != nil {
		// Params were validated with placeholders; only bound values can
		// fail here, and they may be secret.
		return failed(err, resource.Change{}, false)
	}

	env := &resource.Env{
		StateDir:     r.o.StateDir,
		Log:          r.logger(i),
		Refreshed:    r.pending.has(res.ID),
		BoundChanged: r.boundChanged(res),
		Fetch:        r.o.Fetch,
	}
	change, err := r.withRetry(ctx, i, func(ctx context.Context) (resource.Change, error) {
		return r.checkAndApply(ctx, i, inst, env)
	})
	if err != nil && r.o.Check {
		if dep := r.changeAhead(res); dep != "" {
			// Check mode predicts apply: what fails to inspect now (an init
			// script not there yet) may be put right by what runs first.
			r.markAhead(res.ID)
			r.report(i, event.Event{Type: event.Changed, Duration: time.Since(start),
				Msg: "may change: " + err.Error() + " now, but " + dep + " runs before it and would change first"}, false)
			return true
		}
	}
	if err != nil {
		return failed(err, change, false)
	}
	if s, ok := inst.(resource.Sender); ok {
		r.setOutputs(res.ID, s.Outputs())
		r.setSentChanged(res.ID, change.Changed)
	}
	if env.Refreshed {
		refreshed, err := r.deliverRefresh(ctx, i, inst, env)
		if err != nil {
			return failed(err, refreshed, false)
		}
		if _, acts := inst.(resource.Refresher); acts && r.o.Check {
			// Count a refresh that would act as apply counts the one
			// that did: the resource changes.
			refreshed.Changed = true
			if refreshed.Summary == "" {
				refreshed.Summary = "would refresh"
			}
		}
		change.Changed = change.Changed || refreshed.Changed
		if change.Summary == "" {
			change.Summary = refreshed.Summary
		}
	}

	ev := event.Event{Type: event.OK, Msg: change.Summary, Duration: time.Since(start)}
	if change.Changed && r.o.Check {
		r.markAhead(res.ID)
	}
	if change.Changed {
		ev.Type = event.Changed
		ev.Diff, ev.Stdout, ev.Stderr = change.Diff, change.Stdout, change.Stderr
	}
	r.report(i, ev, false)
	return true
}

// checkAndApply is one attempt: Check, then Apply if something differs and
// this is not check mode. What Apply reports wins; what it leaves empty is
// taken from Check, which usually computed the diff already.
//
// The refreshes a change owes are recorded before Apply (durably, in apply
// mode): whatever fails afterwards — Apply itself, the state disk, the
// agent — the refresh stays pending for the next run. If it cannot be
// recorded, nothing is applied. An Apply that then fails leaves a refresh
// that may not have been needed; that is the safe side.
func (r *runner) checkAndApply(ctx context.Context, i int, inst resource.Resource, env *resource.Env) (resource.Change, error) {
	found, err := inst.Check(ctx, env)
	if err != nil {
		return found, fmt.Errorf("check: %w", err)
	}
	if !found.Changed && !found.Run {
		return found, nil
	}
	res := r.p.Resources[i]
	if found.Changed && len(res.Notify) > 0 {
		if err := r.pending.add(res.Notify, res.ID); err != nil {
			return found, fmt.Errorf("not applied: the refresh it owes %s could not be recorded in the state directory %s: %w",
				strings.Join(res.Notify, ", "), r.o.StateDir, err)
		}
	}
	if r.o.Check {
		return found, nil
	}
	did, err := inst.Apply(ctx, env)
	if err != nil {
		return did, fmt.Errorf("apply: %w", err)
	}
	if !found.Run {
		did.Changed = true
	} else if found.Changed && !did.Changed && len(res.Notify) > 0 {
		// Apply's verdict: nothing changed, so nothing is owed.
		for _, t := range res.Notify {
			if err := r.pending.clear(t, []string{res.ID}); err != nil {
				return did, fmt.Errorf("the refresh recorded for %s could not be cleared in %s: %w", t, r.o.StateDir, err)
			}
		}
	}
	if did.Summary == "" {
		did.Summary = found.Summary
	}
	if did.Diff == "" {
		did.Diff = found.Diff
	}
	return did, nil
}

// logger is Env.Log for resource i: an Output event, or nothing for no_log
// resources whose messages might carry what they must hide.
func (r *runner) logger(i int) func(string) {
	if r.prep.noLog[i] {
		return func(string) {}
	}
	return func(msg string) {
		r.report(i, event.Event{Type: event.Output, Msg: msg}, false)
	}
}

func (r *runner) setOutputs(id string, out map[string]string) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	r.outputs[id] = maps.Clone(out)
}

// markAhead records, in check mode, that id would (or may) change: what
// runs after it may find the machine different from how it is now.
func (r *runner) markAhead(id string) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	r.ahead[id] = true
}

// changeAhead names a resource that res runs after, directly or not, which
// would change in this (check) run, or "".
func (r *runner) changeAhead(res plan.Resource) string {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	seen := map[string]bool{}
	stack := res.Deps()
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] {
			continue
		}
		seen[id] = true
		if r.ahead[id] {
			return id
		}
		if j, ok := r.prep.index[id]; ok {
			stack = append(stack, r.p.Resources[j].Deps()...)
		}
	}
	return ""
}
