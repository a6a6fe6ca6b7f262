package push

import (
	"fmt"
	"strings"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/policy"
)

// planned is one role's new plan for one host.
type planned struct {
	wh    *watchHost
	role  *policy.Role
	p     *plan.Plan
	files *fileserver.Index
}

// replan evaluates the changed policy for every connected host and sends
// each host, per role, only a plan that differs from its last one. Any
// policy error leaves every host on its last plans: no host gets half of
// an edit.
func (w *watchLoop) replan(what string) {
	pol, inv, err := w.o.Reload()
	if err != nil {
		w.emit(event.Event{Type: event.Failed, Msg: fmt.Sprintf("%s changed; policy not applied, hosts keep their plans: %v", what, err)})
		return
	}
	if w.r.xv != nil {
		pol.SetExchange(w.r.xv)
	}
	roleHosts, err := resolveHosts(pol, inv, w.o.Limit)
	if err != nil {
		w.emit(event.Event{Type: event.Failed, Msg: fmt.Sprintf("%s changed; hosts keep their plans: %v", what, err)})
		return
	}
	var errs errorSet
	var todo []planned
	var join []*watchHost
	has := map[*watchHost]map[string]bool{}
	for i, role := range pol.Roles {
		for _, h := range roleHosts[i] {
			wh := w.hosts[h.Name]
			if wh == nil {
				wh = w.host(h)
				join = append(join, wh)
			}
			wh.h = h // its vars may have changed
			if has[wh] == nil {
				has[wh] = map[string]bool{}
			}
			has[wh][role.Name] = true
			wh.roles[role.Name] = role
			if wh.state == HostLost || !wh.known {
				continue // planned when it (re)joins
			}
			p, files, err := planFor(pol, role, wh)
			if err != nil {
				errs.add(h.Name, err)
				continue
			}
			todo = append(todo, planned{wh, role, p, files})
		}
	}
	if err := errs.result(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			w.emit(event.Event{Type: event.Failed, Msg: what + " changed; policy not applied, hosts keep their plans: " + line})
		}
		return
	}
	w.r.pol, w.r.o.Inventory, w.o.Inventory = pol, inv, inv
	for _, t := range todo {
		changed, removed := plan.Diff(t.wh.plans[t.role.Name], t.p)
		if len(changed) == 0 && len(removed) == 0 {
			if t.wh.plans[t.role.Name] != nil {
				// The agent's plan is this one; what only the controller
				// keeps (exported resources, literal exports, whether it
				// reads the exchange) is the edit's, and reaches the
				// store now.
				t.wh.plans[t.role.Name] = t.p
				w.publish(t.wh, t.role.Name, t.p, nil)
			}
			continue
		}
		if changed == nil {
			changed = []string{} // only removals: update the plan, run nothing
		}
		msg := fmt.Sprintf("role %s: new plan after %s changed: %d to run, %d removed", t.role.Name, what, len(changed), len(removed))
		w.emit(event.Event{Type: event.Log, Host: t.wh.h.Name, Role: t.role.Name, Msg: msg})
		w.send(t.wh, t.role, t.p, t.files, changed, msg)
		w.publish(t.wh, t.role.Name, t.p, nil)
	}
	w.follow() // the edit may have brought the exchange in
	// Roles a host no longer runs are forgotten on the agent (an empty
	// plan): nothing is deleted, their resources are no longer watched.
	for _, wh := range w.hosts {
		for name, p := range wh.plans {
			if has[wh][name] || len(p.Resources) == 0 {
				continue
			}
			delete(wh.failures, name)
			if role := wh.roles[name]; role != nil && wh.state != HostLost {
				w.send(wh, role, &plan.Plan{Version: plan.Version, Role: name, Host: wh.h.Name}, nil, []string{}, "role "+name+" dropped")
			}
		}
	}
	for _, wh := range join {
		w.setState(wh, HostLost, "new in the inventory: connecting")
		w.schedule(wh, 0)
	}
}

// planFor plans role for a connected host with the facts of its hello.
func planFor(pol *policy.Policy, role *policy.Role, wh *watchHost) (*plan.Plan, *fileserver.Index, error) {
	return planHost(pol, role, policy.Host{Name: wh.h.Name, Vars: wh.h.Vars, Facts: wh.facts})
}
