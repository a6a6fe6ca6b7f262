package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/wire"
)

// Every plan of every role for every host is made before the first change:
// a policy error in the last role must not be found after the first role
// changed half the fleet. Plans depend only on the inventory, the -e vars
// and the facts, and the facts come with the agent's hello, so the run
// first connects to every host it will contact (no changes, no hooks but
// should_contact), then plans everything, and only then applies role by
// role. The price: before_connect no longer runs before the SSH connection
// is made, only before the host's changes in its role (see README).

// hostPlan is what planning decided for one host in one role.
type hostPlan struct {
	skip   bool       // should_contact returned false
	unreac error      // the host could not be reached; nothing was planned
	ac     *agentConn // the host's plain agent (facts came from its hello)
	plan   *plan.Plan
	// files is what this controller serves for plan: the sources it
	// references, re-checked against the role's serving rules.
	files *fileserver.Index
}

// PolicyErrors are the errors planning found, each once however many hosts
// it hit. Nothing was changed on any host when Run returns one.
type PolicyErrors []PolicyError

// PolicyError is one distinct error (same file:line and message) and the
// hosts it was found for, sorted.
type PolicyError struct {
	Msg   string
	Hosts []string
}

func (e PolicyError) String() string {
	switch n := len(e.Hosts); {
	case n == 0:
		return e.Msg
	case n == 1:
		return e.Msg + " (host " + e.Hosts[0] + ")"
	case n <= 5:
		return fmt.Sprintf("%s (%d hosts: %s)", e.Msg, n, strings.Join(e.Hosts, ", "))
	default:
		return fmt.Sprintf("%s (%d hosts: %s, …)", e.Msg, n, strings.Join(e.Hosts[:5], ", "))
	}
}

// Error is one line per distinct error.
func (es PolicyErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.String()
	}
	return strings.Join(lines, "\n")
}

// errorSet collects planning errors by message, from many goroutines.
type errorSet struct {
	mu    sync.Mutex
	hosts map[string][]string
	order []string
}

func (s *errorSet) add(host string, err error) {
	msg := err.Error()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hosts == nil {
		s.hosts = map[string][]string{}
	}
	if _, ok := s.hosts[msg]; !ok {
		s.order = append(s.order, msg)
	}
	s.hosts[msg] = append(s.hosts[msg], host)
}

func (s *errorSet) result() error {
	if len(s.order) == 0 {
		return nil
	}
	out := make(PolicyErrors, 0, len(s.order))
	for _, msg := range s.order {
		hs := s.hosts[msg]
		sort.Strings(hs)
		out = append(out, PolicyError{Msg: msg, Hosts: slices.Compact(hs)})
	}
	// Stable output whatever order the goroutines finished in.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Msg < out[j].Msg })
	return out
}

// planWorkers bounds how many plans are evaluated at once: Starlark is CPU
// work on the controller, more goroutines than cores only add memory.
const planWorkers = 8

// planAll connects to every host that some role will contact and plans
// every role for it. It returns PolicyErrors when any plan (or
// should_contact) failed; an unreachable host is not an error here, it is
// recorded and reported when its first role runs.
func (r *runner) planAll(ctx context.Context, roleHosts [][]*inventory.Host) ([]map[string]*hostPlan, error) {
	var errs errorSet
	plans := make([]map[string]*hostPlan, len(r.pol.Roles))
	contact := map[string]*inventory.Host{} // hosts to connect to
	var order []string
	for i, role := range r.pol.Roles {
		plans[i] = map[string]*hostPlan{}
		for _, h := range roleHosts[i] {
			hp := &hostPlan{}
			plans[i][h.Name] = hp
			if role.ShouldContact != nil {
				v, err := role.ShouldContact.Call(policy.Host{Name: h.Name, Vars: h.Vars})
				if err != nil {
					errs.add(h.Name, fmt.Errorf("should_contact of role %s: %w", role.Name, err))
					continue
				}
				if !v.Truth() {
					hp.skip = true
					continue
				}
			}
			if _, ok := contact[h.Name]; !ok {
				contact[h.Name] = h
				order = append(order, h.Name)
			}
		}
	}
	if err := errs.result(); err != nil {
		return nil, err
	}

	// Connect to every host at once (the pool bounds SSH set-ups), with the
	// first role that names it supplying the connection settings.
	conns := map[string]*hostPlan{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range order {
		h := contact[name]
		role := firstRoleOf(r.pol.Roles, roleHosts, plans, name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ac, err := r.agent(ctx, role, h)
			mu.Lock()
			conns[name] = &hostPlan{ac: ac, unreac: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if r.xv != nil {
		for name, c := range conns {
			if c.ac != nil {
				r.xv.runFacts[name] = c.ac.hello.Facts
			}
		}
		r.batches(roleHosts)
	}
	var sketch []func() // plans to retry while sketching (exchange.go)
	sem := make(chan struct{}, planWorkers)
	for i, role := range r.pol.Roles {
		for _, h := range roleHosts[i] {
			hp := plans[i][h.Name]
			c, ok := conns[h.Name]
			if hp.skip || !ok {
				continue
			}
			if hp.ac, hp.unreac = c.ac, c.unreac; hp.unreac != nil {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			plan1 := func(fail func(error)) {
				phost := policy.Host{Name: h.Name, Vars: h.Vars, Facts: hp.ac.hello.Facts}
				p, files, err := planHost(r.pol, role, phost)
				if err == nil {
					err = checkPlanSize(h.Name, role.Name, &wire.RunPlan{Plan: p, Check: r.o.Check, Parallel: r.o.Parallel})
				}
				if err != nil {
					fail(err)
					return
				}
				hp.plan, hp.files = p, files
			}
			go func() {
				defer func() { <-sem; wg.Done() }()
				plan1(func(err error) {
					if r.xv == nil || !r.xv.used.Load() {
						errs.add(h.Name, err)
						return
					}
					mu.Lock()
					sketch = append(sketch, func() { plan1(func(error) { errs.add(h.Name, err) }) })
					mu.Unlock()
				})
			}()
		}
	}
	wg.Wait()
	r.sketch(sketch)
	if err := errs.result(); err != nil {
		return nil, err
	}
	r.afterPlanning(roleHosts, plans, &errs)
	if err := errs.result(); err != nil {
		return nil, err
	}
	return plans, ctx.Err()
}

// planHost plans role for a host and returns, beside the plan, the files
// the controller serves for it: push needs nothing more from the policy to
// run the plan.
func planHost(pol *policy.Policy, role *policy.Role, h policy.Host) (*plan.Plan, *fileserver.Index, error) {
	p, src, err := pol.PlanWithSources(role, h)
	if err != nil {
		return nil, nil, err
	}
	var rules *fileserver.Rules
	if len(src) > 0 {
		if rules, err = pol.ServingRules(role); err != nil {
			return nil, nil, err
		}
	}
	return p, fileserver.NewIndex(src, rules), nil
}

// firstRoleOf is the first role that contacts host name.
func firstRoleOf(roles []*policy.Role, roleHosts [][]*inventory.Host, plans []map[string]*hostPlan, name string) *policy.Role {
	for i, role := range roles {
		if hp, ok := plans[i][name]; ok && !hp.skip {
			return role
		}
	}
	return roles[0]
}

// IsPolicyErrors reports whether err says planning found policy errors.
func IsPolicyErrors(err error) (PolicyErrors, bool) {
	var pe PolicyErrors
	ok := errors.As(err, &pe)
	return pe, ok
}
