package push

import (
	"maps"
	"slices"
	"sync"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/wire"
)

// hub passes deferred exports between hosts of one role while it runs:
// an agent reports an export as soon as it exists (wire.Exported), and the
// controller pushes it to the agents whose plans wait for it
// (wire.Collected), which are blocked on just those resources. The store
// is still written once per host and role, after the role (publish).
//
// A host's deferred exports are "pending" from planning until they arrive
// or the host's role ends without them (then the waiters hear Missing and
// stop waiting at once, instead of at their collect_timeout).
type hub struct {
	mu sync.Mutex
	// pending: role → name → host, exports planned but not yet known.
	pending map[string]map[string]map[string]bool
	// sent: what this run delivered, by plan.Collected key, for waiters
	// that register later.
	sent map[string]*wire.Collected
	// waiters: key → agents whose running plan waits for it.
	waiters map[string][]*agentConn
	// batch: role → host → its serial batch (0 without serial=).
	batch map[string]map[string]int
}

func newHub() *hub {
	return &hub{pending: map[string]map[string]map[string]bool{}, sent: map[string]*wire.Collected{},
		waiters: map[string][]*agentConn{}, batch: map[string]map[string]int{}}
}

// batches records in which serial batch each host of role runs (runRole
// cuts hosts in batches of serial, in this order).
func (h *hub) batches(role string, hosts []string, serial int) {
	if serial <= 0 {
		serial = max(len(hosts), 1)
	}
	m := make(map[string]int, len(hosts))
	for i, name := range hosts {
		m[name] = i / serial
	}
	h.mu.Lock()
	h.batch[role] = m
	h.mu.Unlock()
}

// plannedDeferred records host's deferred exports in role.
func (h *hub) plannedDeferred(host, role string, p *plan.Plan) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range p.Exports {
		if _, lit := e.Literal(); lit {
			continue
		}
		byName := h.pending[role]
		if byName == nil {
			byName = map[string]map[string]bool{}
			h.pending[role] = byName
		}
		if byName[e.Name] == nil {
			byName[e.Name] = map[string]bool{}
		}
		byName[e.Name][host] = true
	}
}

// Pending lists the hosts whose export name in role is still to come:
// those that run before host or with it (wait), and those of later
// serial batches, which only run once host's batch is over (later).
func (h *hub) Pending(role, name, host string) (wait, later []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	mine := h.batch[role][host]
	for _, p := range slices.Sorted(maps.Keys(h.pending[role][name])) {
		if h.batch[role][p] > mine {
			later = append(later, p)
		} else {
			wait = append(wait, p)
		}
	}
	return wait, later
}

// sketch is Pending before any export is recorded: every host of role
// without a known value, split by batch as Pending does.
func (h *hub) sketch(role, host string, known map[string]string) (wait, later []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	mine := h.batch[role][host]
	for _, p := range slices.Sorted(maps.Keys(h.batch[role])) {
		if _, ok := known[p]; ok {
			continue
		}
		if h.batch[role][p] > mine {
			later = append(later, p)
		} else {
			wait = append(wait, p)
		}
	}
	return wait, later
}

// wait registers ac, which runs p, for the values p collects, and sends it
// those that came already. The returned func unregisters it.
func (h *hub) wait(ac *agentConn, p *plan.Plan) func() {
	var keys []string
	var now []*wire.Collected
	h.mu.Lock()
	for _, r := range p.Resources {
		for _, c := range r.Collects() {
			k := c.Key()
			if slices.Contains(keys, k) {
				continue
			}
			keys = append(keys, k)
			h.waiters[k] = append(h.waiters[k], ac)
			if m := h.sent[k]; m != nil {
				now = append(now, m)
			}
		}
	}
	h.mu.Unlock()
	for _, m := range now {
		ac.wc.Send(m)
	}
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, k := range keys {
			h.waiters[k] = slices.DeleteFunc(h.waiters[k], func(a *agentConn) bool { return a == ac })
		}
	}
}

// deliver passes host's export (or its absence) to every waiter; only the
// first word per host, role and name counts in a run.
func (h *hub) deliver(m *wire.Collected) {
	k := (&plan.Collected{Role: m.Role, Host: m.Host, Name: m.Name}).Key()
	h.mu.Lock()
	if h.sent[k] != nil {
		h.mu.Unlock()
		return
	}
	h.sent[k] = m
	delete(h.pending[m.Role][m.Name], m.Host)
	ws := slices.Clone(h.waiters[k])
	h.mu.Unlock()
	for _, ac := range ws {
		ac.wc.Send(m) // a lost agent fails its own host, not this one
	}
}

// ended tells the waiters of host's exports in role that never came that
// they will not: the host's role is over, whatever its outcome.
func (h *hub) ended(host, role string) {
	h.mu.Lock()
	var names []string
	for name, hosts := range h.pending[role] {
		if hosts[host] {
			names = append(names, name)
		}
	}
	h.mu.Unlock()
	for _, n := range names {
		h.deliver(&wire.Collected{Role: role, Host: host, Name: n, Missing: true})
	}
}

// fromAgent turns an agent's Exported into a delivery, trusting it only
// for names its plan declares as deferred exports of this host and role.
func (h *hub) fromAgent(host, role string, p *plan.Plan, e *wire.Exported) {
	for _, x := range p.Exports {
		if x.Name != e.Name {
			continue
		}
		if _, lit := x.Literal(); lit {
			return // known since planning; nothing waits for it
		}
		h.deliver(&wire.Collected{Role: role, Host: host, Name: e.Name, Value: e.Value, Missing: e.Missing})
		return
	}
}

// collecting wires one host's run of role into the hub: ac gets the values
// p waits for, and what the agent reports exporting goes to the others.
// Check mode exchanges nothing. The returned func ends the waiting.
func (r *runner) collecting(ac *agentConn, host, role string, p *plan.Plan) (func(*wire.Exported), func()) {
	if r.xv == nil || r.o.Check {
		return nil, func() {}
	}
	unwait := r.xv.hub.wait(ac, p)
	return func(e *wire.Exported) { r.xv.fromAgent(host, role, p, e) }, unwait
}
