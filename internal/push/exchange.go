package push

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/exchange"
	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/wire"
)

// OpenExchange opens the exchange store; push calls it at most once per
// run, the first time planning reads the exchange or a host publishes, so a
// run whose policy shares nothing never starts etcd.
type OpenExchange func(ctx context.Context) (*exchange.Store, error)

// exchangeView is the run's picture of the exchange: what the store held
// when first read, plus what this run published or planned to publish
// (literal exports are known when planning, so hosts of the same role see
// each other's). Deferred exports (cmd.stdout) are known once their role ran.
type exchangeView struct {
	ctx  context.Context
	open OpenExchange
	run  string
	emit func(event.Event)

	once sync.Once
	used atomic.Bool // the store was (being) opened in this run
	// sketching is set while the first plans are made (Pending).
	sketching atomic.Bool
	store     *exchange.Store
	err       error

	mu        sync.Mutex
	values    map[string]map[string]string                // name → host → value
	resources map[string]map[string][]plan.SharedResource // host → role → resources
	facts     map[string]facts.Facts
	runFacts  map[string]facts.Facts // hellos of this run: win over the store

	lockMu sync.Mutex
	locker *exchange.Locker

	hub *hub // deferred exports passed between hosts of a role (collect.go)

	// rev is the store revision load read: a watch follows from rev+1.
	rev int64
	// live: a watch's view. Deferred exports are not passed within a
	// role there (nothing waits on the target); a collecting host gets a
	// new plan when the value reaches the store (watchexchange.go).
	live bool
}

// lockHost takes host's cluster-wide lock for this run (shared etcd only),
// waiting up to wait for another controller's run.
func (v *exchangeView) lockHost(ctx context.Context, host string, holder exchange.Holder, wait time.Duration) error {
	st, err := v.load()
	if err != nil {
		return err
	}
	v.lockMu.Lock()
	if v.locker == nil {
		// The lease outlives the run's context: an interrupted run (Ctrl-C,
		// a watch's end) still revokes it in close, releasing its locks at
		// once instead of when the TTL runs out.
		if v.locker, err = st.NewLocker(context.WithoutCancel(v.ctx), holder, 15); err != nil {
			v.lockMu.Unlock()
			return err
		}
	}
	l := v.locker
	v.lockMu.Unlock()
	return l.Lock(ctx, host, wait)
}

func newExchangeView(ctx context.Context, open OpenExchange, run string, emit func(event.Event)) *exchangeView {
	return &exchangeView{ctx: ctx, open: open, run: run, emit: emit,
		values: map[string]map[string]string{}, resources: map[string]map[string][]plan.SharedResource{},
		facts: map[string]facts.Facts{}, runFacts: map[string]facts.Facts{}, hub: newHub()}
}

// load opens the store and reads the whole namespace once.
func (v *exchangeView) load() (*exchange.Store, error) {
	v.once.Do(func() {
		v.used.Store(true)
		v.store, v.err = v.open(v.ctx)
		if v.err != nil {
			return
		}
		if v.store.Embedded {
			v.emit(event.Event{Type: event.Log, Msg: fmt.Sprintf("exchange: embedded etcd started in %v", v.store.StartTime.Round(time.Millisecond))})
		}
		es, rev, err := v.store.Snapshot(v.ctx)
		if err != nil {
			v.err = err
			return
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		v.rev = rev
		for _, e := range es {
			v.apply(exchange.Change{Entry: e})
		}
	})
	return v.store, v.err
}

// apply records one stored entry, or its deletion, in the view (callers
// hold mu). A resource replaces the one of the same ID the host exported
// in that role.
func (v *exchangeView) apply(c exchange.Change) {
	e := c.Entry
	switch e.Kind {
	case exchange.KindValue:
		var s string
		switch {
		case c.Deleted:
			delete(v.values[e.Name], e.Host)
		case json.Unmarshal(e.Data, &s) == nil:
			v.setValue(e.Name, e.Host, s)
		}
	case exchange.KindResource:
		kind, name, _ := cut(e.Name)
		byRole := v.resources[e.Host]
		if byRole == nil {
			byRole = map[string][]plan.SharedResource{}
			v.resources[e.Host] = byRole
		}
		rs := slices.DeleteFunc(byRole[e.Role], func(r plan.SharedResource) bool { return r.Kind == kind && r.Name == name })
		if !c.Deleted {
			params, err := policy.DecodeParams(e.Data)
			if err != nil {
				return
			}
			rs = append(rs, plan.SharedResource{Kind: kind, Name: name, Tag: e.Tag, Params: params})
		}
		byRole[e.Role] = rs
	case exchange.KindFacts:
		var f facts.Facts
		switch {
		case c.Deleted:
			delete(v.facts, e.Host)
		case json.Unmarshal(e.Data, &f) == nil:
			v.facts[e.Host] = f
		}
	}
}

func cut(id string) (kind, name string, ok bool) {
	for i := 0; i < len(id); i++ {
		if id[i] == ':' {
			return id[:i], id[i+1:], true
		}
	}
	return "", id, false
}

// setValue records a value (callers hold mu).
func (v *exchangeView) setValue(name, host, val string) {
	m := v.values[name]
	if m == nil {
		m = map[string]string{}
		v.values[name] = m
	}
	m[host] = val
}

func (v *exchangeView) Values(name string) (map[string]string, error) {
	if _, err := v.load(); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]string{}
	for h, s := range v.values[name] {
		out[h] = s
	}
	return out, nil
}

func (v *exchangeView) Resources() ([]policy.HostResource, error) {
	if _, err := v.load(); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []policy.HostResource
	for h, byRole := range v.resources {
		for _, rs := range byRole {
			for _, r := range rs {
				out = append(out, policy.HostResource{Host: h, SharedResource: r})
			}
		}
	}
	return out, nil
}

func (v *exchangeView) Facts(host string) (facts.Facts, bool, error) {
	v.mu.Lock()
	f, ok := v.runFacts[host]
	v.mu.Unlock()
	if ok {
		return f, true, nil
	}
	if _, err := v.load(); err != nil {
		return facts.Facts{}, false, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	f, ok = v.facts[host]
	return f, ok, nil
}

// Pending implements policy.ExchangeView. While the first plans are
// made (sketching) nobody's exports are known yet: every host of the role
// without a known value counts as pending, so that a policy indexing
// collect()'s dict by host plans; the plans are made again once the real
// exports are recorded (afterPlanning). A watch's view (live) passes no
// deferred export within a role: nothing is pending there.
func (v *exchangeView) Pending(role, name, host string) (wait, later []string) {
	if v.live {
		return nil, nil
	}
	if !v.sketching.Load() {
		return v.hub.Pending(role, name, host)
	}
	v.mu.Lock()
	known := maps.Clone(v.values[name])
	v.mu.Unlock()
	return v.hub.sketch(role, host, known)
}

// fromAgent takes an export an agent reported mid-run: the run's view
// sees it at once (a plan made later in the role reads it as a plain
// value) and the hosts waiting for it get it.
func (v *exchangeView) fromAgent(host, role string, p *plan.Plan, e *wire.Exported) {
	for _, x := range p.Exports {
		if x.Name == e.Name && !e.Missing {
			v.mu.Lock()
			v.setValue(e.Name, host, e.Value)
			v.mu.Unlock()
		}
	}
	v.hub.fromAgent(host, role, p, e)
}

// planned records what a host's plan for role will publish, as far as it
// is known now: literal exports and exported resources.
// The store is read first (load), so what the run plans always wins over
// what it held.
func (v *exchangeView) planned(host, role string, p *plan.Plan) {
	if !v.used.Load() && len(p.Exports) == 0 && len(p.Shared.Resources) == 0 {
		return
	}
	if _, err := v.load(); err != nil {
		return // reported by whoever needs the store
	}
	v.hub.plannedDeferred(host, role, p)
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range p.Exports {
		if s, ok := e.Literal(); ok {
			v.setValue(e.Name, host, s)
		}
	}
	v.setResources(host, role, p.Shared.Resources)
}

// setResources replaces what host exports in role (the run's view of it).
func (v *exchangeView) setResources(host, role string, rs []plan.SharedResource) {
	byRole := v.resources[host]
	if byRole == nil {
		byRole = map[string][]plan.SharedResource{}
		v.resources[host] = byRole
	}
	byRole[role] = rs
}

// publish writes what host published in role, after the role ran, in one
// transaction: its exports as the agent resolved them (only names the plan
// declared: the agent does not choose keys), its exported resources, and
// its facts.
func (v *exchangeView) publish(host, role string, p *plan.Plan, exports map[string]string, f facts.Facts) error {
	if len(p.Exports) == 0 && len(p.Shared.Resources) == 0 && !v.used.Load() {
		return nil // nothing to say and the exchange is not in use
	}
	st, err := v.load()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	entry := func(kind, name string, data any) (exchange.Entry, error) {
		b, err := json.Marshal(data)
		return exchange.Entry{Kind: kind, Name: name, Host: host, Role: role, Run: v.run, Time: now, Data: b}, err
	}
	var es []exchange.Entry
	add := func(e exchange.Entry, err error) error {
		es = append(es, e)
		return err
	}
	published := map[string]string{}
	for _, e := range p.Exports {
		val, ok := exports[e.Name]
		if !ok {
			continue // its source did not run
		}
		published[e.Name] = val
		if err := add(entry(exchange.KindValue, e.Name, val)); err != nil {
			return err
		}
	}
	for _, r := range p.Shared.Resources {
		e, err := entry(exchange.KindResource, plan.ResourceID(r.Kind, r.Name), r.Params)
		e.Tag = r.Tag
		if err := add(e, err); err != nil {
			return err
		}
	}
	if err := add(entry(exchange.KindFacts, "", f)); err != nil {
		return err
	}
	if err := st.Publish(v.ctx, host, role, es, true); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for n, val := range published {
		v.setValue(n, host, val)
	}
	v.setResources(host, role, p.Shared.Resources)
	v.facts[host] = f
	return nil
}

func (v *exchangeView) close() {
	v.lockMu.Lock()
	if v.locker != nil {
		v.locker.Close()
	}
	v.lockMu.Unlock()
	if v.used.Load() && v.store != nil {
		v.store.Close()
	}
}

// replan makes a plan that read the exchange again right before its role
// runs, so it sees what earlier roles of this run published.
func (r *runner) replan(role *policy.Role, name string, hp *hostPlan, vars map[string]any) (*plan.Plan, error) {
	if r.xv == nil || !hp.plan.Shared.Reads {
		return hp.plan, nil
	}
	p, err := r.pol.Plan(role, policy.Host{Name: name, Vars: vars, Facts: hp.ac.hello.Facts})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// sketch plans again, one by one, the plans that failed while the
// exchange was in use, now counting every host of the role without a
// known value as pending (Pending): the first plans cannot know who
// exports what in the same role, so indexing collect()'s dict by host
// fails there. A plan that fails again reports its first error; one that
// plans is recorded and made again with the real exports (afterPlanning).
func (r *runner) sketch(retry []func()) {
	if len(retry) == 0 {
		return
	}
	r.xv.sketching.Store(true)
	defer r.xv.sketching.Store(false)
	for _, f := range retry {
		f()
	}
}

// batches tells the hub which serial batch each host of each role runs in.
func (r *runner) batches(roleHosts [][]*inventory.Host) {
	for i, role := range r.pol.Roles {
		names := make([]string, len(roleHosts[i]))
		for k, h := range roleHosts[i] {
			names[k] = h.Name
		}
		r.xv.hub.batches(role.Name, names, role.Serial)
	}
}

// afterPlanning records every plan's planned exports in the view, then
// plans again the hosts that read the exchange, so that hosts of one role
// see each other's literal exports in the same run.
func (r *runner) afterPlanning(roleHosts [][]*inventory.Host, plans []map[string]*hostPlan, errs *errorSet) {
	if r.xv == nil {
		return
	}
	for i, role := range r.pol.Roles {
		for _, h := range roleHosts[i] {
			if hp := plans[i][h.Name]; hp != nil && hp.plan != nil {
				r.xv.planned(h.Name, role.Name, hp.plan)
			}
		}
	}
	for i, role := range r.pol.Roles {
		for _, h := range roleHosts[i] {
			hp := plans[i][h.Name]
			if hp == nil || hp.plan == nil || !hp.plan.Shared.Reads {
				continue
			}
			p, err := r.replan(role, h.Name, hp, h.Vars)
			if err != nil {
				errs.add(h.Name, err)
				continue
			}
			hp.plan = p
		}
		ps := map[string]*plan.Plan{}
		for _, h := range roleHosts[i] {
			if hp := plans[i][h.Name]; hp != nil && hp.plan != nil {
				ps[h.Name] = hp.plan
			}
		}
		if in, err := waitCycle(role.Name, ps); err != nil {
			for _, h := range in {
				errs.add(h, err)
			}
		}
	}
}
