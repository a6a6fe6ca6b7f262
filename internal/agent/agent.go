// Package agent is the target side of herd: it says hello with the
// machine's facts, then runs whole plans sent by the controller with the
// engine and streams events back. It never evaluates policy code and trusts
// nothing it receives beyond what the plan's validation allows.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/herd-project/herd/internal/engine"
	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/relay"
	"github.com/herd-project/herd/internal/wire"
)

// Options configure Serve.
type Options struct {
	Hash     string // sha256 of this binary, reported in hello
	StateDir string // default ~/.herd/state
	LogPath  string // default ~/.herd/herd.log; "-" disables
	LogMax   int64  // rotate above this size (default 8 MiB)
	In       io.Reader
	Out      io.Writer
}

// Serve speaks the wire protocol until the controller says shutdown or
// closes the stream. A clean end returns nil.
func Serve(ctx context.Context, o Options) error {
	home, _ := os.UserHomeDir()
	if o.StateDir == "" {
		o.StateDir = filepath.Join(home, ".herd", "state")
	}
	if o.LogPath == "" {
		o.LogPath = filepath.Join(home, ".herd", "herd.log")
	}
	if o.LogMax <= 0 {
		o.LogMax = 8 << 20
	}
	var log *eventLog
	if o.LogPath != "-" {
		log = openEventLog(o.LogPath, o.LogMax, 3)
		defer log.Close()
	}

	c := wire.NewConn(o.In, o.Out, wire.Options{})
	if _, err := c.Handshake(wire.Hello{Version: wire.Version, AgentHash: o.Hash, Facts: facts.Gather(), Pid: os.Getpid()}); err != nil {
		return err
	}
	in := newInbox(c, relay.NewParent(c, o.Hash)) // file chunks flow to resources while a plan runs
	// The run lock (lock.go) is taken before the first plan that applies
	// and kept until exit.
	var lock *RunLock
	defer func() { lock.Release() }()
	var watch *watcher // watch mode (watch.go), from the first Watch on
	defer func() {
		if watch != nil {
			watch.close()
		}
	}()
	for {
		msg, err := in.recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch m := msg.(type) {
		case *wire.Shutdown:
			return nil
		case *wire.Ping:
			// heard (fetch.go) is all a ping is for
		case *wire.Watch:
			if lock == nil {
				l, err := TakeRunLock(ctx, o.StateDir, m.Lock, in.gone)
				if err != nil {
					if err := c.Send(&wire.Done{Role: roleOf(m), Failed: true, Error: err.Error()}); err != nil {
						return err
					}
					continue
				}
				lock = l
			}
			if watch == nil {
				if watch, err = newWatcher(ctx, c, in, o.StateDir, log); err != nil {
					c.Send(&wire.Done{Role: roleOf(m), Failed: true, Error: err.Error()})
					continue
				}
			}
			if err := watch.update(m); err != nil {
				c.Send(&wire.Done{Role: roleOf(m), Failed: true, Error: err.Error()})
			}
		case *wire.RunPlan:
			if lock == nil && !m.Check {
				l, err := TakeRunLock(ctx, o.StateDir, m.Lock, in.gone)
				if err != nil {
					if err := c.Send(&wire.Done{Failed: true, Error: err.Error()}); err != nil {
						return err
					}
					continue
				}
				lock = l
			}
			done := runPlan(ctx, c, m, o.StateDir, log, in.f.Fetch, in.gone)
			if err := c.Send(done); err != nil {
				return err
			}
		default:
			c.Send(&wire.Error{Msg: fmt.Sprintf("agent: unexpected %s message", msg.Type())})
			return fmt.Errorf("agent: unexpected %s message", msg.Type())
		}
	}
}

func roleOf(m *wire.Watch) string {
	if m.Plan == nil {
		return ""
	}
	return m.Plan.Role
}

// StopGrace bounds how long the resources in flight may still run after
// the controller went away or asked to stop (their own timeout= may end
// them sooner); then they are cancelled and the agent exits.
var StopGrace = 60 * time.Second

// runPlan runs one plan. When gone closes (the controller's stream ended),
// no further resource starts; those in flight get StopGrace to finish.
func runPlan(ctx context.Context, c *wire.Conn, m *wire.RunPlan, stateDir string, log *eventLog, fetch func(context.Context, string, int64, io.Writer) error, gone <-chan struct{}) *wire.Done {
	if m.Plan == nil {
		return &wire.Done{Failed: true, Error: "run_plan without a plan"}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-gone:
		case <-ctx.Done():
			return
		}
		t := time.NewTimer(StopGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	}()
	sink := func(e event.Event) {
		if log != nil {
			log.Write(e)
		}
		c.Send(&wire.Event{Event: e})
	}
	res, err := engine.Run(ctx, m.Plan, engine.Options{
		Check: m.Check, Parallel: m.Parallel, StateDir: stateDir, Sink: sink,
		Host: m.Plan.Host, Role: m.Plan.Role, Fetch: fetch, Stop: gone,
	})
	if err != nil {
		return &wire.Done{Failed: true, Error: err.Error()}
	}
	return &wire.Done{Counts: res.Counts, Failed: res.Failed}
}
