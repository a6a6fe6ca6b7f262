package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/herd-project/herd/internal/engine"
	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/wire"
)

// Watch mode (herd watch): the agent keeps the last plan of every role the
// controller sent (wire.Watch) and runs, one job at a time on one worker:
//   - the resources a Watch names (the controller's diff, plan.Subset);
//   - drift repairs: resources whose path changed on disk (inotify, through
//     fsnotify, on each managed path's parent directory, so a replaced or
//     deleted file is seen too), debounced by DriftDebounce;
//   - a poll, every Watch.Poll, of the kinds inotify cannot see (packages,
//     services, users, groups). exec, password and noop are never re-run
//     on their own: they run when the controller's diff or a refresh says so.
//
// A drift job that finds everything in order says nothing (herd's own
// writes wake the watcher too; the check that follows is quiet). One that
// changed something sends its events, a "drift repaired" event per
// resource and a Done with Drift set. Idle, the agent blocks in select:
// no busy polling.

// DriftDebounce gathers the file events of one edit (an editor's write,
// rename and chmod) into one repair.
var DriftDebounce = 150 * time.Millisecond

// watchKinds are the resource kinds whose state is a path on disk.
var watchKinds = map[string]bool{"file": true, "directory": true, "link": true, "line": true, "copy": true}

// pollKinds are re-checked every poll interval.
var pollKinds = map[string]bool{"package": true, "service": true, "user": true, "group": true}

type watchJob struct {
	role  string
	all   bool
	ids   []string
	drift bool
}

type watcher struct {
	c        *wire.Conn
	in       *inbox
	stateDir string
	log      *eventLog
	ctx      context.Context

	mu       sync.Mutex
	plans    map[string]*plan.Plan
	parallel int
	poll     time.Duration
	paths    map[string][]ref // managed path → resources
	dirs     map[string]bool  // directories under inotify
	pending  map[string]map[string]bool
	debounce *time.Timer
	closed   bool // jobs is closed
	guarded  bool // the watchdog runs
	// unsettled holds, per role, the resources that failed or were
	// skipped in their last run: every later run of the role includes
	// them, so a role's Done says whether the whole role is in order.
	unsettled map[string]map[string]bool

	jobs   chan watchJob
	idle   chan struct{} // closed when the worker has ended
	fs     *fsnotify.Watcher
	pollCh chan time.Duration
}

type ref struct{ role, id string }

func newWatcher(ctx context.Context, c *wire.Conn, in *inbox, stateDir string, log *eventLog) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: inotify: %w", err)
	}
	w := &watcher{c: c, in: in, stateDir: stateDir, log: log, ctx: ctx,
		plans: map[string]*plan.Plan{}, paths: map[string][]ref{}, dirs: map[string]bool{}, unsettled: map[string]map[string]bool{},
		pending: map[string]map[string]bool{}, jobs: make(chan watchJob, 256), fs: fw,
		pollCh: make(chan time.Duration, 1), idle: make(chan struct{})}
	go w.work()
	go w.events()
	go w.poller()
	return w, nil
}

// close stops watching and waits for the job in flight (it stops softly
// once the controller's stream has ended; StopGrace bounds it).
func (w *watcher) close() {
	w.fs.Close()
	w.mu.Lock()
	if w.debounce != nil {
		w.debounce.Stop()
	}
	w.closed = true
	close(w.jobs)
	w.mu.Unlock()
	select {
	case <-w.idle:
	case <-time.After(StopGrace):
	}
}

// update installs m's plan and queues its run.
func (w *watcher) update(m *wire.Watch) error {
	if m.Plan == nil || m.Plan.Role == "" {
		return fmt.Errorf("watch without a role's plan")
	}
	w.mu.Lock()
	if len(m.Reuse) > 0 {
		prev := w.plans[m.Plan.Role]
		if m.Plan.Blobs == nil {
			m.Plan.Blobs = map[string][]byte{}
		}
		for _, h := range m.Reuse {
			b, ok := []byte(nil), false
			if prev != nil {
				b, ok = prev.Blobs[h]
			}
			if !ok {
				w.mu.Unlock()
				return fmt.Errorf("watch: plan reuses content %.12s this agent does not have", h)
			}
			m.Plan.Blobs[h] = b
		}
	}
	w.mu.Unlock()
	if err := m.Plan.Validate(); err != nil {
		return err
	}
	w.mu.Lock()
	if len(m.Plan.Resources) == 0 {
		delete(w.plans, m.Plan.Role)
	} else {
		w.plans[m.Plan.Role] = m.Plan
	}
	if m.Parallel > 0 {
		w.parallel = m.Parallel
	}
	if m.Silence > 0 && !w.guarded {
		w.guarded = true
		go w.watchdog(m.Silence)
	}
	if m.Poll != w.poll {
		w.poll = m.Poll
		select {
		case w.pollCh <- m.Poll:
		default:
		}
	}
	w.mu.Unlock()
	w.sync()
	w.jobs <- watchJob{role: m.Plan.Role, all: m.All, ids: m.Run}
	return nil
}

// sync points inotify at the parent directory of every managed path (and
// at managed directories themselves), and forgets the rest.
func (w *watcher) sync() {
	w.mu.Lock()
	defer w.mu.Unlock()
	paths := map[string][]ref{}
	want := map[string]bool{}
	for role, p := range w.plans {
		for _, r := range p.Resources {
			if !watchKinds[r.Kind] || !filepath.IsAbs(r.Name) {
				continue
			}
			path := filepath.Clean(r.Name)
			paths[path] = append(paths[path], ref{role, r.ID})
			want[filepath.Dir(path)] = true
			if r.Kind == "directory" || r.Kind == "copy" {
				want[path] = true
			}
		}
	}
	w.paths = paths
	for d := range w.dirs {
		if !want[d] {
			w.fs.Remove(d)
			delete(w.dirs, d)
		}
	}
	for d := range want {
		if !w.dirs[d] && w.fs.Add(d) == nil {
			// A directory that does not exist yet is added after the
			// run that creates it (sync runs after every job).
			w.dirs[d] = true
		}
	}
}

// events turns inotify events into debounced drift jobs.
func (w *watcher) events() {
	for {
		select {
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			w.touched(filepath.Clean(ev.Name))
		case _, ok := <-w.fs.Errors:
			if !ok {
				return
			}
		}
	}
}

func (w *watcher) touched(path string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	refs := w.paths[path]
	if w.dirs[path] && len(refs) == 0 {
		return
	}
	// An event inside a managed directory concerns the directory too
	// (its entries are its content for copy).
	refs = append(refs, w.paths[filepath.Dir(path)]...)
	if len(refs) == 0 {
		return
	}
	for _, r := range refs {
		if w.pending[r.role] == nil {
			w.pending[r.role] = map[string]bool{}
		}
		w.pending[r.role][r.id] = true
	}
	if w.debounce == nil {
		w.debounce = time.AfterFunc(DriftDebounce, w.flush)
	} else {
		w.debounce.Reset(DriftDebounce)
	}
}

func (w *watcher) flush() {
	w.mu.Lock()
	pending := w.pending
	w.pending = map[string]map[string]bool{}
	w.mu.Unlock()
	for role, set := range pending {
		ids := make([]string, 0, len(set))
		for id := range set {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		w.enqueue(watchJob{role: role, ids: ids, drift: true})
	}
}

// enqueue adds a drift job unless the queue is full (then a job is queued
// already and the next event or poll comes back to it).
func (w *watcher) enqueue(j watchJob) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	select {
	case w.jobs <- j:
	default:
	}
}

// poller re-checks the poll kinds every interval; 0 stops it.
func (w *watcher) poller() {
	var t *time.Ticker
	var tick <-chan time.Time
	for {
		select {
		case <-w.in.gone:
			if t != nil {
				t.Stop()
			}
			return
		case d := <-w.pollCh:
			if t != nil {
				t.Stop()
				t, tick = nil, nil
			}
			if d > 0 {
				t = time.NewTicker(d)
				tick = t.C
			}
		case <-tick:
			w.mu.Lock()
			var jobs []watchJob
			for role, p := range w.plans {
				var ids []string
				for _, r := range p.Resources {
					if pollKinds[r.Kind] {
						ids = append(ids, r.ID)
					}
				}
				if len(ids) > 0 {
					jobs = append(jobs, watchJob{role: role, ids: ids, drift: true})
				}
			}
			w.mu.Unlock()
			for _, j := range jobs {
				w.enqueue(j)
			}
		}
	}
}

func (w *watcher) work() {
	defer close(w.idle)
	for j := range w.jobs {
		select {
		case <-w.in.gone:
			continue // drain: the controller is gone
		default:
		}
		w.run(j)
		w.sync()
	}
}

// run executes one job and reports it.
func (w *watcher) run(j watchJob) {
	w.mu.Lock()
	p := w.plans[j.role]
	parallel := w.parallel
	ids := j.ids
	for id := range w.unsettled[j.role] {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	done := &wire.Done{Role: j.role, Drift: j.drift}
	if p == nil {
		if !j.drift {
			w.c.Send(done)
		}
		return
	}
	sub := p
	if !j.all {
		sub = plan.Subset(p, ids)
	}
	if len(sub.Resources) == 0 {
		if !j.drift {
			w.c.Send(done)
		}
		return
	}
	var held []event.Event       // a drift check's events wait until it is known to be drift
	outcome := map[string]bool{} // resource → settled (ok or changed)
	sink := func(e event.Event) {
		if w.log != nil {
			w.log.Write(e)
		}
		switch e.Type {
		case event.OK, event.Changed:
			outcome[e.Resource] = true
		case event.Failed, event.Skipped:
			outcome[e.Resource] = false
		}
		if j.drift {
			held = append(held, e)
			return
		}
		w.c.Send(&wire.Event{Event: e})
	}
	res, err := engine.Run(w.ctx, sub, engine.Options{
		Parallel: parallel, StateDir: w.stateDir, Sink: sink,
		Host: p.Host, Role: p.Role, Fetch: w.in.f.forRole(p.Role), Stop: w.in.gone,
	})
	if err != nil {
		done.Failed, done.Error = true, err.Error()
		w.c.Send(done)
		return
	}
	// The exports whose sources ran: the controller publishes those that
	// changed, and the hosts collecting them get new plans.
	done.Counts, done.Failed, done.Exports = res.Counts, res.Failed, res.Exports
	w.settle(j.role, j.all, outcome)
	if j.drift {
		if res.Counts.Changed == 0 && !res.Failed {
			return // in order: herd's own write, or a touch that changed nothing
		}
		for _, e := range held {
			if e.Type == event.Start || e.Type == event.OK {
				continue
			}
			w.c.Send(&wire.Event{Event: e})
			if e.Type == event.Changed {
				w.c.Send(&wire.Event{Event: driftEvent(e, p)})
			}
		}
	}
	w.c.Send(done)
}

// settle records which resources of role are not in order after a run.
func (w *watcher) settle(role string, all bool, outcome map[string]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	set := w.unsettled[role]
	if set == nil || all {
		set = map[string]bool{}
	}
	for id, ok := range outcome {
		if ok {
			delete(set, id)
		} else {
			set[id] = true
		}
	}
	w.unsettled[role] = set
}

// driftEvent says what was repaired: "drift repaired: /etc/app.conf edited
// outside herd".
func driftEvent(changed event.Event, p *plan.Plan) event.Event {
	what := changed.Resource
	for _, r := range p.Resources {
		if r.ID == changed.Resource {
			if watchKinds[r.Kind] {
				what = r.Name + " edited"
			} else {
				what = r.ID + " changed"
			}
		}
	}
	return event.Event{Time: time.Now(), Type: event.Drift, Host: changed.Host, Role: changed.Role,
		Resource: changed.Resource, Msg: "drift repaired: " + what + " outside herd"}
}

// watchdog takes the controller for gone when it has been silent for
// longer than silence (it pings more often while it lives), so that an
// agent orphaned by a cut link stops instead of repairing with an old
// plan next to the agent the controller starts when the host is back.
func (w *watcher) watchdog(silence time.Duration) {
	t := time.NewTicker(silence / 4)
	defer t.Stop()
	for {
		select {
		case <-w.in.gone:
			return
		case <-t.C:
			if time.Since(time.Unix(0, w.in.heard.Load())) > silence {
				w.in.giveUp()
				return
			}
		}
	}
}
