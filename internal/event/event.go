// Package event defines what the engine reports while it runs. Events flow
// one way: engine → (wire) → controller → ui. They must never carry secrets:
// the engine masks no_log resources before an event is built.
package event

import (
	"sync"
	"time"
)

// Type says what happened.
type Type string

const (
	Start   Type = "start"   // a resource began
	OK      Type = "ok"      // already in the wanted state
	Changed Type = "changed" // was changed (or would be, in check mode)
	Failed  Type = "failed"  // check or apply failed
	Skipped Type = "skipped" // not run: when=False or a dependency failed
	Refresh Type = "refresh" // a refresh (notify) was delivered
	Output  Type = "output"  // a message or captured output
	Retry   Type = "retry"   // an attempt failed and will be retried
	Log     Type = "log"     // free-form engine/agent message
	// Drift: herd watch found a managed resource changed outside herd and
	// repaired it (Msg says what).
	Drift Type = "drift"
	// RoleStart opens a role; Msg says how many hosts it has.
	RoleStart Type = "role_start"
	// Host-level events, produced by push mode.
	HostStart   Type = "host_start"
	HostDone    Type = "host_done"
	Unreachable Type = "unreachable"
	// NotRun says a host never ran a role of the run: it failed an
	// earlier one, the run stopped, or it was interrupted. Msg says why.
	NotRun Type = "not_run"
	// Interrupted: the run was stopped (SIGINT/SIGTERM) while this host ran
	// or before it started; Msg says how far it got.
	Interrupted Type = "interrupted"
	Recap       Type = "recap"
)

// Event is one line of the event stream. Fields are optional by type.
type Event struct {
	Time     time.Time     `json:"time"`
	Type     Type          `json:"type"`
	Host     string        `json:"host,omitempty"`
	Role     string        `json:"role,omitempty"`
	Resource string        `json:"resource,omitempty"` // resource ID
	Pos      string        `json:"pos,omitempty"`      // policy file:line:col
	Msg      string        `json:"msg,omitempty"`
	Diff     string        `json:"diff,omitempty"`
	Stdout   string        `json:"stdout,omitempty"`
	Stderr   string        `json:"stderr,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Check    bool          `json:"check,omitempty"` // produced in check mode
	Counts   *Counts       `json:"counts,omitempty"`
}

// Counts is a recap.
type Counts struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Skipped     int `json:"skipped"`
	Unreachable int `json:"unreachable,omitempty"`
	NotRun      int `json:"not_run,omitempty"` // roles a host never ran
}

// Add counts one terminal resource event.
func (c *Counts) Add(t Type) {
	switch t {
	case OK:
		c.OK++
	case Changed:
		c.Changed++
	case Failed:
		c.Failed++
	case Skipped:
		c.Skipped++
	case Unreachable:
		c.Unreachable++
	case NotRun:
		c.NotRun++
	}
}

// Merge adds other into c.
func (c *Counts) Merge(o Counts) {
	c.OK += o.OK
	c.Changed += o.Changed
	c.Failed += o.Failed
	c.Skipped += o.Skipped
	c.Unreachable += o.Unreachable
	c.NotRun += o.NotRun
}

// Sink receives events. One contract for every Sink: it is never called
// concurrently, so it need not lock. A caller that emits from several
// goroutines serialises its calls (engine.Run with a mutex, push.Run and
// Watch through Serial). A Sink should not block long: the run waits for it,
// and it must not emit into the run that calls it.
type Sink func(Event)

// Serial returns a Sink that calls s from one goroutine at a time, for
// callers that emit from several.
func Serial(s Sink) Sink {
	var mu sync.Mutex
	return func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		s(e)
	}
}
