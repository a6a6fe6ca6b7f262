package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/resource"
)

// Test-only kinds. test_step does what its params say and records every call
// in a recorder chosen by the "rec" param, so tests can run in parallel;
// test_handler is the same plus a Refresh action.
//
//	changed     Check reports a change
//	fail        "check", "apply" or "refresh": that call fails with fail_msg
//	fail_times  the first N Check calls fail
//	sleep       Check sleeps this long (honouring ctx), e.g. "50ms"
//	outputs     what Outputs returns
//	secret      SecretOutputs
//	log         Check calls env.Log with this
//	value       recorded on Apply/Check (a target for bindings)
//	diff, stdout, stderr: put on the Change
func init() {
	params := []resource.Param{
		{Name: "rec", Type: resource.String, Required: true},
		{Name: "changed", Type: resource.Bool},
		{Name: "fail", Type: resource.String},
		{Name: "fail_msg", Type: resource.String},
		{Name: "fail_times", Type: resource.Int},
		{Name: "sleep", Type: resource.String},
		{Name: "outputs", Type: resource.StringMap},
		{Name: "secret", Type: resource.Bool},
		{Name: "log", Type: resource.String},
		{Name: "value", Type: resource.String},
		{Name: "diff", Type: resource.String},
		{Name: "stdout", Type: resource.String},
		{Name: "stderr", Type: resource.String},
	}
	resource.Register(&resource.Schema{Kind: "test_step", Params: params, Outputs: []string{"value", "stdout"},
		Factory: func(name string, p plan.Params, _ map[string][]byte) (resource.Resource, error) {
			return newTestStep(name, p)
		}})
	resource.Register(&resource.Schema{Kind: "test_handler", Params: params, Outputs: []string{"value", "stdout"},
		Factory: func(name string, p plan.Params, _ map[string][]byte) (resource.Resource, error) {
			s, err := newTestStep(name, p)
			if err != nil {
				return nil, err
			}
			return &testHandler{s}, nil
		}})
}

type recorder struct {
	mu       sync.Mutex
	calls    []string // "check a", "apply a", "refresh a", "value a=…"
	checks   map[string][]time.Time
	running  int
	maxConc  int
	failures map[string]int
}

var (
	recorders sync.Map // key → *recorder
	recSeq    atomic.Int64
)

func newRecorder() (string, *recorder) {
	key := "rec" + strconv.FormatInt(recSeq.Add(1), 10)
	r := &recorder{checks: map[string][]time.Time{}, failures: map[string]int{}}
	recorders.Store(key, r)
	return key, r
}

func (r *recorder) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recorder) count(call string) int {
	n := 0
	for _, c := range r.Calls() {
		if c == call {
			n++
		}
	}
	return n
}

type testStep struct {
	name                      string
	rec                       *recorder
	changed, secret           bool
	fail, failMsg, log, value string
	diff, stdout, stderr      string
	failTimes                 int64
	sleep                     time.Duration
	outputs                   map[string]string
}

func newTestStep(name string, p plan.Params) (*testStep, error) {
	s := &testStep{name: name}
	key, err := p.Str("rec", "")
	if err != nil {
		return nil, err
	}
	r, ok := recorders.Load(key)
	if !ok {
		return nil, fmt.Errorf("no recorder %q", key)
	}
	s.rec = r.(*recorder)
	for _, f := range []struct {
		key string
		dst *string
	}{{"fail", &s.fail}, {"fail_msg", &s.failMsg}, {"log", &s.log}, {"value", &s.value},
		{"diff", &s.diff}, {"stdout", &s.stdout}, {"stderr", &s.stderr}} {
		if *f.dst, err = p.Str(f.key, ""); err != nil {
			return nil, err
		}
	}
	if s.changed, err = p.Bool("changed", false); err != nil {
		return nil, err
	}
	if s.secret, err = p.Bool("secret", false); err != nil {
		return nil, err
	}
	if s.failTimes, err = p.Int("fail_times", 0); err != nil {
		return nil, err
	}
	if s.outputs, err = p.Map("outputs"); err != nil {
		return nil, err
	}
	sleep, err := p.Str("sleep", "0s")
	if err != nil {
		return nil, err
	}
	if s.sleep, err = time.ParseDuration(sleep); err != nil {
		return nil, err
	}
	if s.failMsg == "" {
		s.failMsg = "told to fail"
	}
	return s, nil
}

func (s *testStep) enter() {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.rec.running++
	s.rec.maxConc = max(s.rec.maxConc, s.rec.running)
}

func (s *testStep) leave() {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.rec.running--
}

func (s *testStep) Check(ctx context.Context, env *resource.Env) (resource.Change, error) {
	s.enter()
	defer s.leave()
	s.rec.record("check " + s.name)
	s.rec.mu.Lock()
	s.rec.checks[s.name] = append(s.rec.checks[s.name], time.Now())
	s.rec.failures[s.name]++
	attemptNo := s.rec.failures[s.name]
	s.rec.mu.Unlock()
	if s.value != "" {
		s.rec.record("value " + s.name + "=" + s.value)
	}
	if env.Refreshed {
		s.rec.record("refreshed-env " + s.name)
	}
	if s.log != "" {
		env.Log(s.log)
	}
	if s.sleep > 0 {
		select {
		case <-time.After(s.sleep):
		case <-ctx.Done():
			return resource.Change{}, ctx.Err()
		}
	}
	if int64(attemptNo) <= s.failTimes {
		return resource.Change{}, fmt.Errorf("attempt %d: %s", attemptNo, s.failMsg)
	}
	if s.fail == "check" {
		return resource.Change{Stderr: s.stderr}, errors.New(s.failMsg)
	}
	if !s.changed {
		return resource.Change{}, nil
	}
	return resource.Change{Changed: true, Summary: "would set " + s.name, Diff: s.diff}, nil
}

func (s *testStep) Apply(ctx context.Context, env *resource.Env) (resource.Change, error) {
	s.rec.record("apply " + s.name)
	if s.fail == "apply" {
		return resource.Change{Stdout: s.stdout, Stderr: s.stderr}, errors.New(s.failMsg)
	}
	return resource.Change{Changed: true, Summary: "set " + s.name, Stdout: s.stdout, Stderr: s.stderr}, nil
}

func (s *testStep) Outputs() map[string]string { return s.outputs }
func (s *testStep) SecretOutputs() bool        { return s.secret }

type testHandler struct{ *testStep }

func (h *testHandler) Refresh(ctx context.Context, env *resource.Env) (resource.Change, error) {
	h.rec.record("refresh " + h.name)
	if h.fail == "refresh" {
		return resource.Change{}, errors.New(h.failMsg)
	}
	return resource.Change{Changed: true, Summary: "reloaded " + h.name, Stdout: h.stdout}, nil
}

// harness builds plans of test kinds bound to one recorder and runs them.
type harness struct {
	t        *testing.T
	key      string
	rec      *recorder
	stateDir string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	key, rec := newRecorder()
	t.Cleanup(func() { recorders.Delete(key) })
	return &harness{t: t, key: key, rec: rec, stateDir: t.TempDir()}
}

// r declares a resource: kind "step" or "handler", then name and params as
// alternating key/value pairs.
func r(kind, name string, kv ...any) plan.Resource {
	p := plan.Params{}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i].(string)] = kv[i+1]
	}
	k := "test_" + kind
	return plan.Resource{ID: plan.ResourceID(k, name), Kind: k, Name: name, Params: p}
}

// with applies edits to a resource, for edges, bindings and meta.
func with(res plan.Resource, edits ...func(*plan.Resource)) plan.Resource {
	for _, edit := range edits {
		edit(&res)
	}
	return res
}

// plan numbers positions like a policy file and points every resource at
// the harness's recorder.
func (h *harness) plan(rs ...plan.Resource) *plan.Plan {
	p := &plan.Plan{Version: plan.Version, Role: "web", Host: "h1"}
	for i, res := range rs {
		if res.Params == nil {
			res.Params = plan.Params{}
		}
		res.Params = res.Params.Clone()
		res.Params["rec"] = h.key
		if res.Pos == "" {
			res.Pos = fmt.Sprintf("site.star:%d:5", i+1)
		}
		p.Resources = append(p.Resources, res)
	}
	return p
}

// run runs p with o (StateDir and Sink filled in) and returns the result
// and every event, failing the test on a Run error.
func (h *harness) run(ctx context.Context, p *plan.Plan, o Options) (Result, []event.Event) {
	h.t.Helper()
	res, events, err := h.tryRun(ctx, p, o)
	if err != nil {
		h.t.Fatalf("Run: %v", err)
	}
	return res, events
}

func (h *harness) tryRun(ctx context.Context, p *plan.Plan, o Options) (Result, []event.Event, error) {
	var events []event.Event
	if o.StateDir == "" {
		o.StateDir = h.stateDir
	}
	o.Sink = func(e event.Event) { events = append(events, e) }
	res, err := Run(ctx, p, o)
	return res, events, err
}

// outcome maps each resource to "type: msg" of its terminal event.
func outcome(events []event.Event) map[string]string {
	out := map[string]string{}
	for _, e := range events {
		switch e.Type {
		case event.OK, event.Changed, event.Failed, event.Skipped:
			if _, dup := out[e.Resource]; dup {
				out[e.Resource] = "DUPLICATE TERMINAL EVENT"
				continue
			}
			out[e.Resource] = string(e.Type) + ": " + e.Msg
		}
	}
	return out
}

// ofType returns the events of one type for one resource.
func ofType(events []event.Event, t event.Type, id string) []event.Event {
	var out []event.Event
	for _, e := range events {
		if e.Type == t && e.Resource == id {
			out = append(out, e)
		}
	}
	return out
}
