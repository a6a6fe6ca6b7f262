package push

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/exchange"
	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/plan"
)

// The exchange in a watch (herd watch with export/collect). The watch
// sets up the exchange as a run does (runner.useExchange) and:
//   - holds every host's cluster-wide lock (a shared etcd only) from before
//     its first plan until the watch ends; a lost host that rejoins keeps
//     it, a host new in the inventory takes it when it joins;
//   - publishes what a host exports whenever it changes: after an agent's
//     Done whose exports differ from what the watch last published for the
//     host and role (a command's output that changed), and after a policy
//     edit that changed literal exports or exported resources;
//   - follows the cluster's namespace with an etcd watch (from the
//     revision it first read, so nothing is missed), which brings this
//     watch's own writes and other controllers' alike: the view takes each
//     change, and every host whose plans read the exchange is planned
//     again; only those whose plan differs get the difference, with a
//     "collected value from <exporter> changed" event.
//
// Within a role nothing waits on the target in a watch (collect() of a
// deferred export yields the value last published): a collecting host
// converges again when the value reaches the store.

// xchState is the watch's exchange bookkeeping, owned by the loop.
type xchState struct {
	following bool
	changes   chan []exchange.Change
	cancel    context.CancelFunc
	// exports and published are, per host and role, the exports the
	// agent last resolved and the last payload written to the store.
	exports   map[string]map[string]map[string]string
	published map[string]map[string]string
}

func newXchState() *xchState {
	return &xchState{changes: make(chan []exchange.Change, 4),
		exports: map[string]map[string]map[string]string{}, published: map[string]map[string]string{}}
}

// lockHosts takes the cluster-wide lock of every host about to get a plan,
// all at once (each waits up to the lock wait), and returns why a host
// could not be locked.
func (w *watchLoop) lockHosts(hosts []*inventory.Host) map[string]error {
	out := map[string]error{}
	if w.r.xv == nil || !w.r.o.ExchangeLocks {
		return out
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.r.clusterLock(w.ctx, h.Name); err != nil {
				mu.Lock()
				out[h.Name] = lockRefused{err}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// lockRefused is why a host could not be locked (another controller holds
// it): the host is retried like a lost one, with back-off, and reported
// as failed rather than unreachable. It gets no plan meanwhile.
type lockRefused struct{ error }

func (e lockRefused) Unwrap() error { return e.error }

// publish writes what host exports in role when it differs from what the
// watch last wrote: the plan's literal exports, the values the agent
// resolved (agent: nil when none came), and its exported resources.
func (w *watchLoop) publish(wh *watchHost, role string, p *plan.Plan, agent map[string]string) {
	xv := w.r.xv
	if xv == nil || p == nil || len(p.Resources)+len(p.Exports)+len(p.Shared.Resources) == 0 {
		return // no exchange, or a dropped role: what it published stays
	}
	name := wh.h.Name
	byRole := w.xch.exports[name]
	if byRole == nil {
		byRole = map[string]map[string]string{}
		w.xch.exports[name] = byRole
	}
	vals := map[string]string{}
	for _, e := range p.Exports {
		if s, ok := e.Literal(); ok {
			vals[e.Name] = s
		} else if s, ok := agent[e.Name]; ok {
			vals[e.Name] = s
		} else if s, ok := byRole[role][e.Name]; ok {
			vals[e.Name] = s
		}
	}
	byRole[role] = vals
	payload, _ := json.Marshal(struct {
		V map[string]string
		R []plan.SharedResource
	}{vals, p.Shared.Resources})
	if prev, ok := w.xch.published[name][role]; ok && prev == string(payload) {
		return
	}
	if !xv.used.Load() && len(p.Exports) == 0 && len(p.Shared.Resources) == 0 {
		return // nothing to say and the exchange is not in use
	}
	if err := xv.publish(name, role, p, vals, wh.facts); err != nil {
		w.emit(event.Event{Type: event.Failed, Host: name, Role: role, Msg: err.Error()})
		return
	}
	if w.xch.published[name] == nil {
		w.xch.published[name] = map[string]string{}
	}
	w.xch.published[name][role] = string(payload)
	w.follow()
}

// follow starts the etcd watch on the cluster's namespace once the store
// is open, from the revision the view read.
func (w *watchLoop) follow() {
	xv := w.r.xv
	if xv == nil || w.xch.following || !xv.used.Load() {
		return
	}
	st, err := xv.load()
	if err != nil {
		return // reported by whoever needed the store
	}
	w.xch.following = true
	ctx, cancel := context.WithCancel(w.ctx)
	w.xch.cancel = cancel
	xv.mu.Lock()
	rev := xv.rev
	xv.mu.Unlock()
	ch, ended := st.Watch(ctx, rev+1)
	go func() {
		for b := range ch {
			select {
			case w.xch.changes <- b:
			case <-ctx.Done():
				return
			}
		}
		err := ended()
		if ctx.Err() != nil {
			return
		}
		// The watch failed (a compacted revision, a lost leader): read
		// the namespace again and follow from there, after a pause.
		w.emit(event.Event{Type: event.Log, Msg: fmt.Sprintf("exchange: watch ended (%v); reading it again in %v", err, RetryMin)})
		w.later(RetryMin, w.resync)
	}()
}

// resync reads the whole namespace again after a failed etcd watch and
// follows from there; every reading host is planned again.
func (w *watchLoop) resync() {
	xv := w.r.xv
	st, err := xv.load()
	if err != nil {
		return
	}
	es, rev, err := st.Snapshot(w.ctx)
	if err != nil {
		w.emit(event.Event{Type: event.Log, Msg: fmt.Sprintf("exchange: %v; trying again in %v", err, RetryMin)})
		w.later(RetryMin, w.resync)
		return
	}
	var hosts []string
	xv.mu.Lock()
	xv.values, xv.resources, xv.facts = map[string]map[string]string{}, map[string]map[string][]plan.SharedResource{}, map[string]facts.Facts{}
	for _, e := range es {
		xv.apply(exchange.Change{Entry: e})
		hosts = append(hosts, e.Host)
	}
	xv.rev = rev
	xv.mu.Unlock()
	w.unfollow()
	w.xch.following = false
	w.follow()
	w.recollect(hosts)
}

// exchanged takes a batch of changes the etcd watch reported (more may be
// waiting: they are taken too) and plans the reading hosts again.
func (w *watchLoop) exchanged(batch []exchange.Change) {
	for more := true; more; {
		select {
		case b := <-w.xch.changes:
			batch = append(batch, b...)
		default:
			more = false
		}
	}
	xv := w.r.xv
	var hosts []string
	xv.mu.Lock()
	for _, c := range batch {
		xv.apply(c)
		hosts = append(hosts, c.Entry.Host)
	}
	xv.mu.Unlock()
	w.activity = time.Now()
	w.recollect(hosts)
}

// recollect plans again, with the view as it is now, every role of a
// connected host whose last plan read the exchange, and sends the hosts
// whose plan changed the difference; the others receive nothing.
// exporters are the hosts whose entries changed.
func (w *watchLoop) recollect(exporters []string) {
	slices.Sort(exporters)
	from := strings.Join(slices.Compact(exporters), ", ")
	for _, name := range slices.Sorted(maps.Keys(w.hosts)) {
		wh := w.hosts[name]
		if wh.state == HostLost || !wh.known {
			continue // planned in full when it rejoins
		}
		for _, role := range w.r.pol.Roles {
			old := wh.plans[role.Name]
			if old == nil || !old.Shared.Reads {
				continue
			}
			p, files, err := planFor(w.r.pol, role, wh)
			if err != nil {
				w.emit(event.Event{Type: event.Failed, Host: name, Role: role.Name, Msg: fmt.Sprintf("collected value from %s changed; planning again: %v", from, err)})
				continue
			}
			changed, removed := plan.Diff(old, p)
			if len(changed) == 0 && len(removed) == 0 {
				continue
			}
			if changed == nil {
				changed = []string{}
			}
			msg := fmt.Sprintf("collected value from %s changed; role %s: new plan: %d to run, %d removed", from, role.Name, len(changed), len(removed))
			w.emit(event.Event{Type: event.Log, Host: name, Role: role.Name, Msg: msg})
			w.send(wh, role, p, files, changed, msg)
			w.publish(wh, role.Name, p, nil)
		}
	}
}

// later runs f on the loop after d (unless the watch ended).
func (w *watchLoop) later(d time.Duration, f func()) {
	time.AfterFunc(d, func() {
		select {
		case w.retries <- f:
		case <-w.ctx.Done():
		}
	})
}

// unfollow ends the etcd watch.
func (w *watchLoop) unfollow() {
	if w.xch.cancel != nil {
		w.xch.cancel()
	}
}
