package push

import (
	"context"
	"errors"
	"fmt"
	"github.com/herd-project/herd/internal/fileserver"
	"sort"
	"sync"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/wire"
)

// PingInterval is how often a watch pings its agents; an agent that hears
// nothing for pingMisses intervals takes the controller for gone.
var PingInterval = 10 * time.Second

const pingMisses = 4

// ping sends every connected agent a ping, each on its own goroutine: a
// write to a host behind a cut link may block.
func (w *watchLoop) ping() {
	for _, wh := range w.hosts {
		for ac := range wh.readers {
			go ac.wc.Send(&wire.Ping{})
		}
	}
}

// RetryMin and RetryMax bound the back-off between reconnection attempts
// to a host whose connection was lost during a watch.
var (
	RetryMin = time.Second
	RetryMax = 30 * time.Second
)

type watchLoop struct {
	ctx     context.Context
	r       *runner
	o       WatchOptions
	hosts   map[string]*watchHost
	msgs    chan agentMsg
	retries chan func()
	// activity is the last time anything happened anywhere: an event from
	// any agent, a plan sent, a file changed on the controller.
	activity time.Time
	xch      *xchState // the exchange (watchexchange.go)
}

// watchHost is one host's side of the watch. Everything but files is
// owned by the loop's goroutine.
type watchHost struct {
	h       *inventory.Host
	facts   facts.Facts
	known   bool                  // facts came with a hello
	joining bool                  // a connection attempt is under way
	plans   map[string]*plan.Plan // last plan sent, by role
	roles   map[string]*policy.Role
	waiting int // Watch messages not yet answered by a Done
	repairs int // drift repairs whose Done has not come (counted by events)
	// failures holds, per role, why its last run failed; a role's Done
	// speaks for the whole role (the agent re-runs what failed before).
	failures map[string]string
	state    HostState
	since    time.Time
	msg      string
	backoff  time.Duration
	readers  map[*agentConn]bool

	mu    sync.Mutex
	files map[string]*fileServer // by role, used by the readers
}

func newWatchLoop(ctx context.Context, r *runner, o WatchOptions) *watchLoop {
	return &watchLoop{ctx: ctx, r: r, o: o, hosts: map[string]*watchHost{},
		msgs: make(chan agentMsg, 256), retries: make(chan func(), 16), activity: time.Now(), xch: newXchState()}
}

func (w *watchLoop) host(h *inventory.Host) *watchHost {
	wh := w.hosts[h.Name]
	if wh == nil {
		wh = &watchHost{h: h, plans: map[string]*plan.Plan{}, roles: map[string]*policy.Role{},
			readers: map[*agentConn]bool{}, files: map[string]*fileServer{}, failures: map[string]string{}, state: Converging, since: time.Now()}
		w.hosts[h.Name] = wh
	}
	return wh
}

// setState records a host's state and tells Status when it changed.
func (w *watchLoop) setState(wh *watchHost, s HostState, msg string) {
	if wh.state == s && wh.msg == msg {
		return
	}
	wh.state, wh.since, wh.msg = s, time.Now(), msg
	if w.o.Status == nil {
		return
	}
	t := Tally{}
	for _, o := range w.hosts {
		t[o.state]++
	}
	w.o.Status(HostStatus{Host: wh.h.Name, State: s, Since: wh.since, Msg: msg}, t)
}

// agentFor is the agent that runs role on the host: its plain agent, or a
// become agent for sudo roles.
func (w *watchLoop) agentFor(wh *watchHost, role *policy.Role) (*agentConn, error) {
	ac, err := w.r.agent(w.ctx, role, wh.h)
	if err != nil {
		return nil, err
	}
	if method, user, ok := w.r.becomeIdentity(role, wh.h); ok {
		if ac, err = w.r.becomeAgent(w.ctx, role, wh.h, method, user); err != nil {
			return nil, err
		}
	}
	if !wh.readers[ac] {
		wh.readers[ac] = true
		go w.read(wh, ac)
	}
	return ac, nil
}

// send gives the host role's plan p and runs the resources run (nil: all).
func (w *watchLoop) send(wh *watchHost, role *policy.Role, p *plan.Plan, files *fileserver.Index, run []string, why string) {
	ac, err := w.agentFor(wh, role)
	if err != nil {
		w.lost(wh, err)
		return
	}
	server := w.r.serveFiles(role.Name, wh.h.Name, files, ac)
	wh.mu.Lock()
	old := wh.files[role.Name]
	wh.files[role.Name] = server
	wh.mu.Unlock()
	if old != nil {
		go old.stop()
	}
	m := &wire.Watch{Plan: p, All: run == nil, Run: run, Parallel: w.r.o.Parallel, Poll: w.o.Poll, Lock: w.r.lockRequest(),
		Silence: PingInterval * pingMisses}
	if prev := wh.plans[role.Name]; prev != nil && run != nil {
		m.Plan, m.Reuse = withoutKnownBlobs(p, prev)
	}
	sent0 := w.r.bytesSent(wh.h.Name)
	if err := ac.wc.Send(m); err != nil {
		w.lost(wh, fmt.Errorf("send plan: %w", err))
		return
	}
	why = fmt.Sprintf("%s (%d bytes sent)", why, w.r.bytesSent(wh.h.Name)-sent0)
	wh.plans[role.Name], wh.roles[role.Name] = p, role
	wh.waiting++
	w.activity = time.Now()
	w.setState(wh, Converging, why)
}

// read hands the loop every message of one agent until its stream ends;
// file requests it serves itself.
func (w *watchLoop) read(wh *watchHost, ac *agentConn) {
	for {
		msg, err := ac.recv()
		if err != nil {
			w.msgs <- agentMsg{host: wh.h.Name, ac: ac, err: err}
			return
		}
		if req, ok := msg.(*wire.FileRequest); ok {
			wh.mu.Lock()
			fs := wh.files[req.Role]
			wh.mu.Unlock()
			if fs != nil {
				fs.request(req)
			} else {
				ac.wc.Send(&wire.FileChunk{ID: req.ID, Hash: req.Hash, Offset: req.Offset, Error: "refused: no plan of role " + req.Role})
			}
			continue
		}
		select {
		case w.msgs <- agentMsg{host: wh.h.Name, ac: ac, msg: msg}:
		case <-w.ctx.Done():
			return
		}
	}
}

func (w *watchLoop) emit(e event.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	w.o.Sink(e)
}

// handle takes one message from an agent.
func (w *watchLoop) handle(m agentMsg) {
	wh := w.hosts[m.host]
	if wh == nil || !wh.readers[m.ac] {
		return // an agent replaced since
	}
	w.activity = time.Now()
	if m.err != nil {
		delete(wh.readers, m.ac)
		w.lost(wh, fmt.Errorf("connection lost: %w%s", m.err, m.ac.stderrSuffix()))
		return
	}
	switch v := m.msg.(type) {
	case *wire.Event:
		v.Host = wh.h.Name // an agent speaks for its own host only
		if v.Event.Type == event.Drift || (v.Event.Type == event.Changed && wh.waiting == 0) {
			wh.repairs = 1
			w.setState(wh, Converging, "repairing drift")
		}
		w.o.Sink(v.Event)
	case *wire.Done:
		if v.Drift {
			wh.repairs = 0
		} else if wh.waiting > 0 {
			wh.waiting--
		}
		if v.Failed {
			msg := v.Error
			if msg == "" {
				msg = fmt.Sprintf("%d resources failed in role %s", v.Counts.Failed, v.Role)
			}
			wh.failures[v.Role] = msg
			w.emit(event.Event{Type: event.Log, Host: wh.h.Name, Role: v.Role, Msg: msg})
		} else {
			delete(wh.failures, v.Role)
			w.publish(wh, v.Role, wh.plans[v.Role], v.Exports)
		}
		w.settle(wh)
	case *wire.Error:
		w.lost(wh, errors.New("agent error: "+v.Msg))
	}
}

// settle sets a host converged or failed once nothing is in flight.
func (w *watchLoop) settle(wh *watchHost) {
	if wh.waiting > 0 || wh.repairs > 0 {
		return
	}
	for _, role := range w.r.pol.Roles {
		if msg, ok := wh.failures[role.Name]; ok {
			w.setState(wh, HostFailed, msg)
			return
		}
	}
	for _, msg := range wh.failures {
		w.setState(wh, HostFailed, msg)
		return
	}
	w.setState(wh, Converged, "")
}

// lost drops the host's agents and retries with back-off; the other hosts
// go on. On reconnection the host gets every role's current plan in full.
func (w *watchLoop) lost(wh *watchHost, err error) {
	w.r.drop(wh.h.Name)
	wh.readers = map[*agentConn]bool{}
	wh.plans = map[string]*plan.Plan{} // a new agent knows nothing
	wh.waiting, wh.repairs = 0, 0
	t := event.Unreachable
	if errors.As(err, new(lockRefused)) {
		t = event.Failed // reachable, but another controller holds it
	}
	w.emit(event.Event{Type: t, Host: wh.h.Name, Msg: err.Error()})
	if w.ctx.Err() != nil {
		return
	}
	wh.backoff = min(max(wh.backoff*2, RetryMin), RetryMax)
	w.setState(wh, HostLost, fmt.Sprintf("%v; retrying in %v", err, wh.backoff))
	w.schedule(wh, wh.backoff)
}

// schedule tries to (re)connect the host after d.
func (w *watchLoop) schedule(wh *watchHost, d time.Duration) {
	name := wh.h.Name
	w.later(d, func() { w.rejoin(name) })
}

// rejoin reconnects a lost host and sends it its plans in full.
func (w *watchLoop) rejoin(name string) {
	wh := w.hosts[name]
	if wh == nil || wh.state != HostLost || wh.joining {
		return
	}
	var roles []*policy.Role // the host's roles in the current policy
	for _, role := range w.r.pol.Roles {
		if wh.roles[role.Name] != nil {
			roles = append(roles, role)
		}
	}
	if len(roles) == 0 {
		return
	}
	// Connecting can take up to the connect timeout: do it off the loop,
	// so that the other hosts are heard meanwhile.
	wh.joining = true
	h := wh.h
	go func() {
		ac, err := w.r.agent(w.ctx, roles[0], h)
		if err == nil {
			// A host new in the inventory takes its cluster-wide lock
			// here; a rejoining one holds it already.
			if err = w.r.clusterLock(w.ctx, h.Name); err != nil {
				err = lockRefused{err}
			}
		}
		select {
		case w.retries <- func() { w.joined(wh, ac, err) }:
		case <-w.ctx.Done():
		}
	}()
}

// joined finishes rejoin on the loop: the host gets every role's current
// plan in full.
func (w *watchLoop) joined(wh *watchHost, ac *agentConn, err error) {
	wh.joining = false
	if err != nil {
		w.lost(wh, err)
		return
	}
	name := wh.h.Name
	wh.facts, wh.known = ac.hello.Facts, true
	wh.backoff = 0
	if w.r.xv != nil {
		w.r.xv.mu.Lock()
		w.r.xv.runFacts[name] = ac.hello.Facts
		w.r.xv.mu.Unlock()
	}
	w.emit(event.Event{Type: event.Log, Host: name, Msg: "connected; sending its plans in full"})
	var roles []*policy.Role
	for _, role := range w.r.pol.Roles {
		if wh.roles[role.Name] != nil {
			roles = append(roles, role)
		}
	}
	for _, role := range roles {
		p, files, err := planFor(w.r.pol, role, wh)
		if err != nil {
			w.emit(event.Event{Type: event.Failed, Host: name, Role: role.Name, Msg: err.Error()})
			wh.failures[role.Name] = err.Error()
			continue
		}
		w.send(wh, role, p, files, nil, "role "+role.Name+": whole plan")
	}
	w.settle(wh) // when no plan could be sent
}

// withoutKnownBlobs is p without the file contents the agent holds from
// prev (the last plan of the role it was sent): a one-line template edit
// sends that template, not every file of the role again. reuse lists the
// hashes the agent takes from prev.
func withoutKnownBlobs(p, prev *plan.Plan) (*plan.Plan, []string) {
	var reuse []string
	blobs := map[string][]byte{}
	for h, b := range p.Blobs {
		if _, ok := prev.Blobs[h]; ok {
			reuse = append(reuse, h)
			continue
		}
		blobs[h] = b
	}
	if len(reuse) == 0 {
		return p, nil
	}
	c := *p
	c.Blobs = blobs
	sort.Strings(reuse)
	return &c, reuse
}
