package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
)

// Collector gives a plan the values other hosts export in the same run
// (plan.Collected). On an agent they are pushed by the controller as the
// exporting hosts produce them.
type Collector interface {
	// Await returns c's value once it arrived (ok), or ok=false once the
	// controller said it will not come in this run; an error when ctx
	// ended first.
	Await(ctx context.Context, c *plan.Collected) (value string, ok bool, err error)
}

type collectedValue struct {
	value string
	ok    bool
}

// mustWait says resource i still has to wait for other hosts' values
// before it can run. Check mode never waits: nothing is exported.
func (r *runner) mustWait(i int) bool {
	res := r.p.Resources[i]
	if r.o.Check || len(res.Collects()) == 0 {
		return false
	}
	r.outMu.Lock()
	defer r.outMu.Unlock()
	return !r.waited[res.ID]
}

// await waits for the values resource i collects, at most the longest of
// their timeouts, and less when the run is cancelled or stopped; it holds
// no worker slot. Events: a Wait naming the cross-host edges, then a Wait
// without edges saying what came and which hosts were missing.
func (r *runner) await(ctx context.Context, i int) {
	res := r.p.Resources[i]
	cs, _ := uniqueCollects(res)
	wait := time.Duration(0)
	var now, later []*plan.Collected
	var edges []string // the cross-host edges waited on
	for _, c := range cs {
		if c.Later {
			later = append(later, c)
			continue
		}
		now = append(now, c)
		edges = append(edges, c.Host+":"+c.Name)
		wait = max(wait, c.Wait())
	}
	if len(now) > 0 {
		msg := fmt.Sprintf("waiting for %s (at most %v)", describeEdges(now), wait)
		if len(later) > 0 {
			msg += "; not for " + describeEdges(later) + " (" + laterBatch + ")"
		}
		r.report(i, event.Event{Type: event.Wait, Waits: edges, Msg: msg}, true)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	go func() {
		select {
		case <-r.o.Stop:
			cancel()
		case <-wctx.Done():
		}
	}()
	start := time.Now()
	got := make([]collectedValue, len(cs))
	why := make([]string, len(cs))
	done := make(chan struct{}, len(cs))
	for k, c := range cs {
		go func() {
			defer func() { done <- struct{}{} }()
			if c.Later {
				why[k] = laterBatch
				return
			}
			if r.o.Collect == nil {
				why[k] = "no controller to send it"
				return
			}
			v, ok, err := r.o.Collect.Await(wctx, c)
			switch {
			case err != nil:
				why[k] = fmt.Sprintf("not within %v", wait)
				if ctx.Err() != nil || r.stopped(ctx) {
					why[k] = r.stopReason(ctx)
				}
			case !ok:
				why[k] = "not exported in this run"
			default:
				got[k] = collectedValue{value: v, ok: true}
			}
		}()
	}
	for range cs {
		<-done
	}
	var missing []string
	r.outMu.Lock()
	for k, c := range cs {
		r.collected[c.Key()] = got[k]
		if !got[k].ok {
			using := "nothing"
			if c.HasFallback {
				using = "its earlier value"
			}
			missing = append(missing, fmt.Sprintf("%s's %q (%s; using %s)", c.Host, c.Name, why[k], using))
		}
	}
	r.waited[res.ID] = true
	r.outMu.Unlock()
	msg := fmt.Sprintf("collected %d of %d after %v", len(cs)-len(missing), len(cs), time.Since(start).Round(time.Millisecond))
	if len(missing) > 0 {
		msg += "; missing: " + strings.Join(missing, ", ")
	}
	r.report(i, event.Event{Type: event.Wait, Msg: msg}, true)
}

// laterBatch says why a collected value is not waited for: its host runs
// the role in a later serial batch, after this one ended.
const laterBatch = "later serial batch"

// uniqueCollects lists what res waits for, once each, sorted, and the
// cross-host edges as "host:export".
func uniqueCollects(res plan.Resource) ([]*plan.Collected, []string) {
	var cs []*plan.Collected
	seen := map[string]bool{}
	for _, c := range res.Collects() {
		if !seen[c.Key()] {
			seen[c.Key()] = true
			cs = append(cs, c)
		}
	}
	slices.SortFunc(cs, func(a, b *plan.Collected) int { return strings.Compare(a.Host+"\x00"+a.Name, b.Host+"\x00"+b.Name) })
	edges := make([]string, len(cs))
	for k, c := range cs {
		edges[k] = c.Host + ":" + c.Name
	}
	return cs, edges
}

func describeEdges(cs []*plan.Collected) string {
	var s []string
	for _, c := range cs {
		s = append(s, fmt.Sprintf("%s's export %q", c.Host, c.Name))
	}
	return strings.Join(s, ", ")
}

// collectedValue is a collected part's text when the resource runs: what
// came, else the value of an earlier run, else nothing (callers hold
// outMu). In check mode the value is not known: the resource "would wait".
func (r *runner) collectedValue(b plan.Binding, c *plan.Collected) (string, error) {
	if r.o.Check && !c.Later {
		return "", fmt.Errorf("%s: would wait for %s's export %q%w", b.Place(), c.Host, c.Name, errNoOutput)
	}
	if v := r.collected[c.Key()]; v.ok {
		return v.value, nil
	}
	if c.HasFallback {
		return c.Fallback, nil
	}
	return "", nil
}

// passExports hands Exported every export whose sources have all
// finished (id just did), once: other hosts may be waiting for it.
func (r *runner) passExports(id string) {
	if r.o.Exported == nil || len(r.p.Exports) == 0 {
		return
	}
	type pass struct {
		name, value string
		ok          bool
	}
	var out []pass
	r.outMu.Lock()
	r.finished[id] = true
	for _, e := range r.p.Exports {
		if r.exported[e.Name] || !r.sourcesFinished(e) {
			continue
		}
		r.exported[e.Name] = true
		v, ok := r.exportValue(e)
		out = append(out, pass{e.Name, v, ok})
	}
	r.outMu.Unlock()
	for _, p := range out {
		r.o.Exported(p.name, p.value, p.ok)
	}
}

func (r *runner) sourcesFinished(e plan.Export) bool {
	for _, p := range e.Parts {
		if p.IsRef() && !r.finished[p.From] {
			return false
		}
	}
	return true
}

// checkWait is check mode's word on a resource that collects: whom apply
// would wait for, and whom it would not (later serial batches: their
// earlier value, or nothing).
func checkWait(res plan.Resource, took time.Duration) event.Event {
	cs, _ := uniqueCollects(res)
	var now, later []*plan.Collected
	var said, edges []string
	for _, c := range cs {
		if c.Later {
			later = append(later, c)
		} else {
			now = append(now, c)
			edges = append(edges, c.Host+":"+c.Name)
		}
	}
	if len(now) > 0 {
		said = append(said, "would wait for "+describeEdges(now))
	}
	if len(later) > 0 {
		said = append(said, "would not wait for "+describeEdges(later)+" ("+laterBatch+"; using nothing)")
	}
	return event.Event{Type: event.Changed, Duration: took, Waits: edges, Msg: "may change: " + strings.Join(said, "; ")}
}
