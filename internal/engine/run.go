package engine

import (
	"context"
	"sync"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
)

// runner is the state of one Run.
type runner struct {
	p       *plan.Plan
	prep    *prepared
	o       Options
	pending *pendingStore

	emitMu sync.Mutex // serialises Sink calls and guards counts
	counts event.Counts

	outMu   sync.Mutex
	outputs map[string]map[string]string // sender ID → outputs, once it ran
	whenOff map[string]bool              // resources skipped by when=False
	sentChg map[string]bool              // sender ID → it changed in this run
	ahead   map[string]bool              // check mode: resources that would change

	// Exchange (collect.go): what arrived for plan.Collected parts, which
	// resources have waited, which resources finished, which exports were
	// passed on. Guarded by outMu.
	collected map[string]collectedValue
	waited    map[string]bool
	finished  map[string]bool
	exported  map[string]bool
}

func newRunner(p *plan.Plan, prep *prepared, o Options) *runner {
	return &runner{p: p, prep: prep, o: o, outputs: map[string]map[string]string{}, whenOff: map[string]bool{}, sentChg: map[string]bool{}, ahead: map[string]bool{},
		collected: map[string]collectedValue{}, waited: map[string]bool{}, finished: map[string]bool{}, exported: map[string]bool{}}
}

// run dispatches ready resources to at most o.Parallel goroutines. The
// scheduler is owned by this goroutine only; workers report back on done.
func (r *runner) run(ctx context.Context) Result {
	sched := r.prep.graph.NewScheduler()
	type outcome struct {
		id string
		ok bool
	}
	done := make(chan outcome)
	waitDone := make(chan string)
	var queue []string
	running, waiting := 0, 0
	for {
		queue = append(queue, sched.Ready()...)
		for !r.stopped(ctx) && len(queue) > 0 {
			id := queue[0]
			i := r.prep.index[id]
			if r.p.Resources[i].Meta.Skip {
				// Needs no slot: report it and let its dependents go.
				queue = queue[1:]
				r.skipWhenFalse(i)
				sched.Done(id)
				queue = append(queue, sched.Ready()...)
				continue
			}
			if r.mustWait(i) {
				// Waiting for other hosts takes no slot: what this
				// host must export meanwhile can run.
				queue = queue[1:]
				waiting++
				go func() { r.await(ctx, i); waitDone <- id }()
				continue
			}
			if running >= r.o.Parallel {
				break
			}
			queue = queue[1:]
			running++
			go func() { done <- outcome{id, r.runGuarded(ctx, i)} }()
		}
		if running == 0 && waiting == 0 {
			break
		}
		var out outcome
		select {
		case id := <-waitDone:
			waiting--
			queue = append(queue, id)
			continue
		case out = <-done:
		}
		running--
		if out.ok {
			sched.Done(out.id)
			continue
		}
		for _, b := range sched.Fail(out.id) {
			msg := "dependency failed: " + b.Cause
			if r.stopped(ctx) {
				msg = r.stopReason(ctx)
			}
			r.skip(r.prep.index[b.Node], msg)
		}
	}
	cancelled := false
	for _, id := range append(queue, sched.Unstarted()...) {
		cancelled = true
		r.skip(r.prep.index[id], r.stopReason(ctx))
	}
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	return Result{Counts: r.counts, Failed: r.counts.Failed > 0 || cancelled}
}

// stopped says no resource may start any more: the run was cancelled or
// asked to stop.
func (r *runner) stopped(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	select {
	case <-r.o.Stop:
		return true
	default:
		return false
	}
}

func (r *runner) stopReason(ctx context.Context) string {
	if ctx.Err() != nil {
		return "run cancelled"
	}
	return "run stopped"
}

// skipWhenFalse reports a resource the policy disabled. A refresh pending
// for it stays pending: it was not delivered.
func (r *runner) skipWhenFalse(i int) {
	r.outMu.Lock()
	r.whenOff[r.p.Resources[i].ID] = true
	r.outMu.Unlock()
	msg := "when is false"
	if r.pending.has(r.p.Resources[i].ID) {
		msg += "; its pending refresh is kept for a later run"
	}
	r.skip(i, msg)
}

func (r *runner) skip(i int, msg string) {
	r.report(i, event.Event{Type: event.Skipped, Msg: msg}, true)
}

// report fills the common fields of an event about resource i, masks it if
// the resource is no_log, counts it if terminal, and hands it to the Sink.
// msgSafe says Msg was written by the engine and holds no resource output,
// so it may be shown even for a no_log resource.
func (r *runner) report(i int, ev event.Event, msgSafe bool) {
	res := r.p.Resources[i]
	if r.prep.noLog[i] {
		var keep bool
		ev, keep = mask(ev, msgSafe)
		if !keep {
			return
		}
	}
	ev.Resource = res.ID
	ev.Pos = res.Pos
	ev.Check = ev.Check || r.o.Check
	r.emit(ev)
	switch ev.Type {
	case event.OK, event.Changed, event.Failed, event.Skipped:
		r.passExports(res.ID)
	}
}

// emit stamps and delivers an event, one at a time.
func (r *runner) emit(ev event.Event) {
	ev.Time = time.Now()
	ev.Host = r.o.Host
	ev.Role = r.o.Role
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	switch ev.Type {
	case event.OK, event.Changed, event.Failed, event.Skipped:
		r.counts.Add(ev.Type)
	}
	if r.o.Sink != nil {
		r.o.Sink(ev)
	}
}
