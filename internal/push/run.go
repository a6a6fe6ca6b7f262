// Package push is the controller side of push mode: it runs a policy's roles
// in order over the inventory's hosts. Within a role every host runs the
// whole role on its own, as fast as it can (no lock-step between hosts); all
// hosts finish a role before the next role starts; a host failure stops the
// run after that role unless the role's max_fail allows it (OpsMop
// semantics). Connections and agents are kept for the whole run.
package push

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/transport"
	"github.com/herd-project/herd/internal/wire"
)

// Options configure a push run.
type Options struct {
	Check    bool
	Parallel int // resources at once on each host
	Limit    Limit
	// Inventory serves roles that name no hosts (from -i on the command line).
	Inventory *inventory.Inventory
	// Sink receives every host's events, one call at a time (the event.Sink
	// contract: push serialises the hosts' goroutines).
	Sink  event.Sink
	Agent *Binary
	// MoreAgents are builds for other architectures (LoadAgentDir); a
	// target's uname -m picks among them and Agent.
	MoreAgents []*Binary
	Transport  transport.Config
	Defaults   Defaults
	// AskBecomePass is asked for the become password, once per run, when a
	// host's sudo/su/doas wants one and none is configured.
	AskBecomePass func() (string, error)
	// Stop, when closed, stops the run softly (see stop.go): nothing new
	// starts, plans in flight finish their running resources and report.
	Stop <-chan struct{}
	// Exchange opens the store export/collect use (exchange.go); nil
	// leaves the run without one.
	Exchange OpenExchange
	// ExchangeLocks: the exchange is shared with other controllers (an
	// external etcd); in apply mode every host is locked there for the run
	// before its first change, waiting up to the lock wait.
	ExchangeLocks bool

	// agentStart shortens agentStartTimeout for tests (export_test.go).
	agentStart time.Duration
	// uploads narrows agentUploads for tests (export_test.go).
	uploads int
}

// agentStartTimeout bounds an agent's start on one host: the bootstrap
// (including sending the binary when the host has no cached copy) and the
// hello.
const agentStartTimeout = 60 * time.Second

// agentUploads is how many agent uploads the run lets run at once.
func (o *Options) agentUploads() int {
	if o.uploads > 0 {
		return o.uploads
	}
	return agentUploads
}

func (o *Options) agentStartTimeout() time.Duration {
	if o.agentStart > 0 {
		return o.agentStart
	}
	return agentStartTimeout
}

// Limit narrows every role's hosts (--limit-groups, --limit-hosts).
type Limit struct {
	Groups, Hosts []string
	// Pattern is --limit, an Ansible host pattern; IsGroup tells its
	// plain names that are groups from host names (nil: none are).
	Pattern *inventory.Pattern
	IsGroup func(string) bool
}

// Result summarises a run.
type Result struct {
	Hosts map[string]*HostResult
	// StoppedAfter names the role after which the run stopped because of
	// failures ("" when every role ran).
	StoppedAfter string
}

// HostResult is one host's outcome over all roles.
type HostResult struct {
	Counts      event.Counts
	Failed      bool
	Unreachable bool
	Skipped     bool // should_contact said no for every role it was in
	Err         string
	// FailedRole is the role the host failed or was unreachable in; it
	// runs no later role.
	FailedRole string
	// NotRun lists the roles the host never ran (an earlier failure, a
	// stop after a failed role or batch, an interrupt).
	NotRun []string
	// BytesSent counts what went to the host over SSH while its plans ran
	// (plans, file contents, framing); FileBytes the file contents alone,
	// fetched by hash; Refused the file requests refused (logged).
	BytesSent int64
	FileBytes int64
	Refused   int
	// Interrupted: the run stopped before this host finished its roles.
	Interrupted bool
}

// Failed reports whether any host failed or was unreachable.
func (r *Result) Failed() (failed, unreachable bool) {
	for _, h := range r.Hosts {
		failed = failed || h.Failed
		unreachable = unreachable || h.Unreachable
	}
	return
}

type runner struct {
	pol  *policy.Policy
	o    Options
	pool *transport.Pool
	// builds are the agent binaries a target may get, by its uname -m.
	builds  []bootstrap.AgentBuild
	uploads uploadGate

	mu      sync.Mutex
	agents  map[string]*agentConn // by host name, and by becomeKey for privileged agents
	become  becomeState
	starts  hostLocks
	results map[string]*HostResult
	clients sync.Map // host name → *transport.Client, for byte counts
	xv      *exchangeView
	started time.Time
}

// prepare is the set-up Run and Watch share: the default sink and agent
// binary, every role's hosts resolved before anything is contacted (so an
// error in the inventory or a filter comes before any change), the runner
// with its connection pool (retried set-ups reported as events), and the
// herd_via parents checked. The caller closes the runner.
func prepare(pol *policy.Policy, o Options) (*runner, [][]*inventory.Host, error) {
	if o.Sink == nil {
		o.Sink = func(event.Event) {}
	}
	o.Sink = event.Serial(o.Sink)
	if o.Agent == nil {
		b, err := SelfBinary()
		if err != nil {
			return nil, nil, err
		}
		o.Agent = b
	}
	agentBuilds, err := builds(AgentSet(o.Agent, o.MoreAgents))
	if err != nil {
		return nil, nil, err
	}
	roleHosts, err := resolveHosts(pol, o.Inventory, o.Limit)
	if err != nil {
		return nil, nil, err
	}
	r := &runner{pol: pol, o: o, builds: agentBuilds, uploads: newUploadGate(o.agentUploads()), agents: map[string]*agentConn{}, results: map[string]*HostResult{}, started: time.Now()}
	tc := o.Transport
	if tc.OnDialRetry == nil {
		// A retried connection set-up is news, not a failure: say so in
		// the stream, so a slow fleet is seen slowing.
		tc.OnDialRetry = func(target string, attempt, attempts int, wait time.Duration, err error) {
			r.emit(event.Event{Type: event.Retry, Host: target,
				Msg: fmt.Sprintf("connection set-up failed (%v); attempt %d of %d in %s", err, attempt, attempts, wait.Round(time.Millisecond))})
		}
	}
	r.pool = transport.NewPool(tc)
	if err := r.checkVia(roleHosts); err != nil {
		r.close()
		return nil, nil, err
	}
	return r, roleHosts, nil
}

// resolveHosts selects every role's hosts.
func resolveHosts(pol *policy.Policy, inv *inventory.Inventory, lim Limit) ([][]*inventory.Host, error) {
	out := make([][]*inventory.Host, len(pol.Roles))
	for i, role := range pol.Roles {
		hs, err := hostsOf(role, inv, lim)
		if err != nil {
			return nil, err
		}
		out[i] = hs
	}
	return out, nil
}

// Run executes every role of pol in order.
func Run(ctx context.Context, pol *policy.Policy, o Options) (*Result, error) {
	r, roleHosts, err := prepare(pol, o)
	if err != nil {
		return nil, err
	}
	defer r.close()
	r.useExchange(ctx, pol, false)
	plans, err := r.planAll(ctx, roleHosts)
	if err != nil {
		return nil, err
	}

	res := &Result{Hosts: r.results}
	for _, hs := range roleHosts {
		for _, h := range hs {
			r.result(h.Name) // every host of the run is in the recap
		}
	}
	for i, role := range pol.Roles {
		switch {
		case ctx.Err() != nil || r.stopping():
			r.notRun(role, roleHosts[i], "interrupted")
		case res.StoppedAfter != "":
			r.notRun(role, roleHosts[i], fmt.Sprintf("the run stopped after role %s because hosts failed", res.StoppedAfter))
		case r.runRole(ctx, role, roleHosts[i], plans[i]):
			if ctx.Err() == nil && !r.stopping() {
				res.StoppedAfter = role.Name
			}
		}
	}
	if ctx.Err() != nil {
		res.StoppedAfter = ""
	}
	return res, ctx.Err()
}

// runRole runs one role over its hosts in batches of role.Serial and says
// whether the run must stop. A host that failed an earlier role (allowed
// by that role's max_fail) does not run this one.
func (r *runner) runRole(ctx context.Context, role *policy.Role, hosts []*inventory.Host, plans map[string]*hostPlan) (stop bool) {
	r.emit(event.Event{Type: event.RoleStart, Role: role.Name, Msg: fmt.Sprintf("%d hosts", len(hosts))})
	serial := role.Serial
	if serial <= 0 {
		serial = len(hosts)
	}
	failedHosts := 0
	for start := 0; start < len(hosts); start += serial {
		end := min(start+serial, len(hosts))
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, h := range hosts[start:end] {
			if failedIn := r.failedRole(h.Name); failedIn != "" {
				r.notRun(role, []*inventory.Host{h}, "it failed in role "+failedIn)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !r.runHost(ctx, role, h, plans[h.Name]) {
					mu.Lock()
					failedHosts++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil || r.stopping() {
			r.notRun(role, hosts[end:], "interrupted")
			return true
		}
		if failedHosts > role.MaxFail {
			// A failed batch stops later batches, and the run stops after
			// this role.
			r.notRun(role, hosts[end:], fmt.Sprintf("%d hosts failed in an earlier batch of role %s (max_fail=%d)", failedHosts, role.Name, role.MaxFail))
			return true
		}
	}
	return false
}

// failedRole names the role a host failed in (or was unreachable in), or "".
func (r *runner) failedRole(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if hr, ok := r.results[name]; ok && (hr.Failed || hr.Unreachable) {
		return hr.FailedRole
	}
	return ""
}

// notRun reports hosts that never ran role, with why, so the recap lists
// every host of the run.
func (r *runner) notRun(role *policy.Role, hosts []*inventory.Host, why string) {
	for _, h := range hosts {
		hr := r.result(h.Name)
		r.mu.Lock()
		hr.Counts.Add(event.NotRun)
		hr.NotRun = append(hr.NotRun, role.Name)
		r.mu.Unlock()
		r.emit(event.Event{Type: event.NotRun, Host: h.Name, Role: role.Name, Msg: "role " + role.Name + " not run: " + why})
	}
}

func (r *runner) result(name string) *HostResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	hr, ok := r.results[name]
	if !ok {
		hr = &HostResult{}
		r.results[name] = hr
	}
	return hr
}

func (r *runner) emit(e event.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.o.Sink(e)
}

// runHost runs role on h with its plan made up front and reports whether
// the host succeeded (a skipped host counts as success). The hooks run
// here, right before the host's changes in this role; in check mode they
// do not run at all, since they act on the world (drain a load balancer).
func (r *runner) runHost(ctx context.Context, role *policy.Role, h *inventory.Host, hp *hostPlan) bool {
	if r.xv != nil {
		// Whatever happens to h, hosts waiting for its exports in this
		// role stop waiting when it is over (collect.go).
		defer r.xv.hub.ended(h.Name, role.Name)
	}
	hr := r.result(h.Name)
	fail := func(t event.Type, err error) bool {
		if ctx.Err() != nil || r.stopping() {
			// Whatever broke, it broke because the run was stopped.
			return r.interrupted(hr, h.Name, role.Name, "interrupted before role "+role.Name+" finished: "+err.Error())
		}
		r.mu.Lock()
		if t == event.Unreachable {
			hr.Unreachable = true
			hr.Counts.Unreachable++
		} else {
			hr.Failed = true
		}
		hr.FailedRole = role.Name
		hr.Err = err.Error()
		r.mu.Unlock()
		r.emit(event.Event{Type: t, Host: h.Name, Role: role.Name, Msg: err.Error()})
		return false
	}
	if r.stopping() {
		return r.interrupted(hr, h.Name, role.Name, "interrupted before role "+role.Name+" started")
	}
	if hp.skip {
		r.emit(event.Event{Type: event.Skipped, Host: h.Name, Role: role.Name, Msg: "should_contact returned false"})
		return true
	}
	if hp.unreac != nil {
		return fail(event.Unreachable, hp.unreac)
	}
	phost := policy.Host{Name: h.Name, Vars: h.Vars, Facts: hp.ac.hello.Facts}
	for _, hook := range []struct {
		name string
		fn   *policy.Hook
	}{{"before_connect", role.BeforeConnect}, {"after_connect", role.AfterConnect}} {
		if hook.fn == nil || r.o.Check {
			continue
		}
		if _, err := hook.fn.Call(phost); err != nil {
			return fail(event.Failed, fmt.Errorf("%s: %w", hook.name, err))
		}
	}
	ac := hp.ac
	if method, user, ok := r.becomeIdentity(role, h); ok {
		var err error
		if ac, err = r.becomeAgent(ctx, role, h, method, user); err != nil {
			return fail(event.Failed, err)
		}
	}
	if err := r.clusterLock(ctx, h.Name); err != nil {
		return fail(event.Failed, err)
	}
	p, err := r.replan(role, h.Name, hp, h.Vars)
	if err != nil {
		return fail(event.Failed, fmt.Errorf("planning again with the exchange: %w", err))
	}
	if r.stopping() {
		return r.interrupted(hr, h.Name, role.Name, "interrupted before role "+role.Name+" started")
	}
	r.emit(event.Event{Type: event.HostStart, Host: h.Name, Role: role.Name, Msg: fmt.Sprintf("%d resources", len(p.Resources))})
	start := time.Now()
	files := r.serveFiles(role.Name, h.Name, hp.files, ac)
	sent0 := r.bytesSent(h.Name)
	exported, unwait := r.collecting(ac, h.Name, role.Name, p)
	defer unwait()
	done, err := ac.run(ctx, r.o.Stop, &wire.RunPlan{Plan: p, Check: r.o.Check, Parallel: r.o.Parallel, Lock: r.lockRequest()}, files, func(e event.Event) {
		// The agent is not trusted to speak for other hosts or roles.
		e.Host, e.Role = h.Name, role.Name
		r.mu.Lock()
		hr.Counts.Add(e.Type)
		r.mu.Unlock()
		r.o.Sink(e)
	}, exported)
	r.account(hr, h.Name, files, sent0)
	if err != nil {
		r.drop(h.Name)
		return fail(event.Unreachable, fmt.Errorf("lost connection during role %s: %w", role.Name, err))
	}
	if done.Error != "" {
		return fail(event.Failed, errors.New(done.Error))
	}
	r.emit(event.Event{Type: event.HostDone, Host: h.Name, Role: role.Name, Duration: time.Since(start), Counts: &done.Counts})
	if done.Failed && r.stopping() {
		return r.interrupted(hr, h.Name, role.Name, fmt.Sprintf("interrupted: role %s stopped after the resources in flight (%d skipped)", role.Name, done.Counts.Skipped))
	}
	if !done.Failed && !r.o.Check && r.xv != nil {
		if err := r.xv.publish(h.Name, role.Name, p, done.Exports, ac.hello.Facts); err != nil {
			return fail(event.Failed, err)
		}
	}
	if done.Failed {
		r.mu.Lock()
		hr.Failed = true
		hr.FailedRole = role.Name
		r.mu.Unlock()
		return false
	}
	return true
}

// useExchange lends planning the run's view of the exchange when the run
// has one (Options.Exchange): Run and Watch set it up here, and close
// ends it. The store itself is opened when first needed. live is a
// watch's view (exchangeView.live).
func (r *runner) useExchange(ctx context.Context, pol *policy.Policy, live bool) {
	if r.o.Exchange == nil {
		return
	}
	r.xv = newExchangeView(ctx, r.o.Exchange, fmt.Sprintf("%s-%d", processNonce, time.Now().Unix()), r.emit)
	r.xv.live = live
	pol.SetExchange(r.xv)
}

// close shuts the agents down, then releases the run's exchange locks and
// closes the store: another controller waiting for a host gets it once
// this one's agents are gone.
func (r *runner) close() {
	defer func() {
		if r.xv != nil {
			r.xv.close()
		}
	}()
	r.mu.Lock()
	agents := r.agents
	r.agents = map[string]*agentConn{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, ac := range agents {
		wg.Add(1)
		go func() { defer wg.Done(); ac.shutdown() }()
	}
	wg.Wait()
	r.pool.Close()
}

func (r *runner) drop(name string) {
	r.mu.Lock()
	ac := r.agents[name]
	delete(r.agents, name)
	r.mu.Unlock()
	if ac != nil {
		ac.kill()
	}
	r.dropBecome(name)
}
