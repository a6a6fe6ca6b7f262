package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/relay"
	"github.com/herd-project/herd/internal/transport"
	"github.com/herd-project/herd/internal/wire"
)

// agentConn is a running agent on one host: one exec channel over the host's
// single SSH connection, kept for every role of the run.
type agentConn struct {
	name   string
	sess   *transport.Session
	wc     *wire.Conn
	hello  *wire.Hello
	stderr *transport.Tail

	// inbox has the agent's messages except relay traffic, which relay
	// takes on the reader's goroutine (relay.go); readErr ends it.
	inbox   chan wire.Message
	readErr error
	relay   *relay.Controller

	mu sync.Mutex // one plan at a time
}

// agent returns the host's agent, starting it on first use. Callers for
// one host (its role, children relayed through it) share one start.
func (r *runner) agent(ctx context.Context, role *policy.Role, h *inventory.Host) (*agentConn, error) {
	defer r.lockHost(h.Name)()
	r.mu.Lock()
	ac := r.agents[h.Name]
	r.mu.Unlock()
	if ac != nil {
		return ac, nil
	}
	start, err := r.starter(ctx, role, h, false)
	if err != nil {
		return nil, err
	}
	if ac, err = startAgent(ctx, h.Name, start, r.builds, r.uploads, h.Conn.AgentDir, r.o.agentStartTimeout(), r.relayLog); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.agents[h.Name] = ac
	r.mu.Unlock()
	return ac, nil
}

// hostLocks serialises agent start-ups per host, so that ten rack hosts
// asking for their rack top at once start one agent there.
type hostLocks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (r *runner) lockHost(name string) (unlock func()) {
	r.starts.mu.Lock()
	if r.starts.locks == nil {
		r.starts.locks = map[string]*sync.Mutex{}
	}
	l := r.starts.locks[name]
	if l == nil {
		l = &sync.Mutex{}
		r.starts.locks[name] = l
	}
	r.starts.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// starter returns how to run the bootstrap command on h: on an exec channel
// of the host's SSH connection, or through its relay parent's agent
// (starting the parent first). broker starts the become broker instead of
// the agent.
func (r *runner) starter(ctx context.Context, role *policy.Role, h *inventory.Host, broker bool) (func(cmd string) (*transport.Session, error), error) {
	if !transport.IsSSH(h.Conn.Connection) {
		return r.kindStarter(ctx, role, h, broker)
	}
	if parent, ok, err := r.relayParentOf(h); err != nil {
		return nil, err
	} else if ok {
		return r.relayStarter(ctx, role, h, parent, broker)
	}
	t, err := r.target(role, h, 0)
	if err != nil {
		return nil, err
	}
	client, err := r.pool.Get(ctx, t)
	if err != nil {
		return nil, err
	}
	r.clients.Store(h.Name, client)
	return func(cmd string) (*transport.Session, error) {
		if broker {
			var err error
			if cmd, err = bootstrap.BrokerCommand(cmd); err != nil {
				return nil, err
			}
		}
		return client.Start(ctx, cmd)
	}, nil
}

// startAgent bootstraps the agent over start and completes the handshake,
// checking that the agent runs one of the builds offered (the one for the
// target's architecture). timeout bounds the bootstrap and the hello
// (agentStartTimeout); for a host that needs the agent sent, it
// counts from the moment its upload may start (uploads).
func startAgent(ctx context.Context, name string, start func(string) (*transport.Session, error), builds []bootstrap.AgentBuild, uploads uploadGate, agentDir string, timeout time.Duration, logf func(host, msg string)) (*agentConn, error) {
	// A login shell that hangs (a stuck .bashrc, a full disk, a blocked
	// NFS home) must fail the host, not the run: bound the start. start
	// itself keeps ctx, which owns the session for the whole run.
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	deadline := time.Now().Add(timeout)
	clock := time.AfterFunc(timeout, func() { cancel(errAgentStartTimeout) })
	defer clock.Stop()
	held := false
	defer func() {
		if held {
			uploads.release()
		}
	}()
	gated := make([]bootstrap.AgentBuild, len(builds))
	for i, b := range builds {
		payload := b.Payload
		b.Payload = func() (gz, raw []byte, err error) {
			if held {
				return payload()
			}
			// Waiting for a turn, and compressing the agent (once per
			// run, for every host), is not this host being slow: the
			// clock stops, and restarts with the upload.
			if !clock.Stop() {
				return nil, nil, context.Cause(bctx)
			}
			if err := uploads.acquire(ctx); err != nil {
				return nil, nil, err
			}
			held = true
			gz, raw, err = payload()
			deadline = time.Now().Add(timeout)
			clock.Reset(timeout)
			return gz, raw, err
		}
		gated[i] = b
	}
	sess, _, err := bootstrap.StartBuilds(bctx, start, gated, agentDir)
	if held {
		uploads.release()
		held = false
	}
	if err != nil {
		if bctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("the agent did not start within %v (is the login shell stuck?): %w", timeout, err)
		}
		return nil, fmt.Errorf("%s: start agent: %w", name, err)
	}
	ac := &agentConn{name: name, sess: sess, stderr: transport.NewTail(4096)}
	go ac.stderr.Drain(sess.Stderr)
	ac.wc = wire.NewConn(sess.Stdout, sess.Stdin, wire.Options{})
	timer := time.AfterFunc(time.Until(deadline), func() { sess.Close() })
	hello, err := ac.wc.Handshake(wire.Hello{Version: wire.Version})
	timer.Stop()
	if err != nil {
		ac.kill()
		return nil, fmt.Errorf("%s: agent handshake: %w%s", name, err, ac.stderrSuffix())
	}
	if !slices.ContainsFunc(builds, func(b bootstrap.AgentBuild) bool { return b.Hash == hello.AgentHash }) {
		ac.kill()
		return nil, fmt.Errorf("%s: agent reports binary %.16s, which is none of the %d this controller sent", name, hello.AgentHash, len(builds))
	}
	ac.hello = hello
	ac.startReader(logf)
	return ac, nil
}

// run sends one plan and relays events until the agent says it is done;
// files serves the agent's file requests meanwhile.
func (ac *agentConn) run(ctx context.Context, stopRun <-chan struct{}, m *wire.RunPlan, files *fileServer, sink func(event.Event), exported func(*wire.Exported)) (*wire.Done, error) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { ac.sess.Close() })
	defer stop()
	defer ac.stopPlan(stopRun)()
	if err := ac.wc.Send(m); err != nil {
		return nil, fmt.Errorf("send plan: %w%s", err, ac.stderrSuffix())
	}
	for {
		msg, err := ac.recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w%s", err, ac.stderrSuffix())
		}
		switch v := msg.(type) {
		case *wire.Event:
			sink(v.Event)
		case *wire.Done:
			return v, nil
		case *wire.Exported:
			if exported != nil {
				exported(v)
			}
		case *wire.FileRequest:
			if err := files.request(v); err != nil {
				return nil, err
			}
		case *wire.Error:
			return nil, fmt.Errorf("agent error: %s", v.Msg)
		default:
			return nil, fmt.Errorf("unexpected %s message from agent", msg.Type())
		}
	}
}

func (ac *agentConn) shutdown() {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	// Every plan's Done has arrived, so nothing is left to hear from the
	// agent: close without waiting for its exit status, which would cost
	// one more round trip per run behind a slow link. The agent exits on
	// Shutdown, or on end of input if the message is lost.
	ac.wc.Send(&wire.Shutdown{})
	ac.sess.Stdin.Close()
	ac.sess.Close()
}

func (ac *agentConn) kill() { ac.sess.Close() }

// stderrSuffix is the agent's last words on stderr, for error messages.
func (ac *agentConn) stderrSuffix() string {
	if s := ac.stderr.String(); s != "" {
		return " (agent stderr: " + s + ")"
	}
	return ""
}

var errAgentStartTimeout = errors.New("agent start timed out")

// uploadGate bounds the agent uploads in flight at once. On a cold run
// every host needs the agent at the same moment; sent all at once, the
// uploads share the controller's CPU and link so evenly that every one of
// them finishes late, and a fleet of 100 hosts failed 76 of them on the
// start timeout (measured on the lab, 2 loaded CPUs). Taking turns, each
// upload runs at full speed and the timeout measures the host, not the
// crowd.
type uploadGate chan struct{}

// agentUploads is how many hosts are sent the agent at once: enough to
// fill a LAN link, few enough that each upload runs near full speed.
const agentUploads = 8

func newUploadGate(n int) uploadGate { return make(uploadGate, n) }

// acquire waits for a turn; the wait is bounded by the other uploads'
// own timeouts, and by ctx (Ctrl-C).
func (g uploadGate) acquire(ctx context.Context) error {
	select {
	case g <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g uploadGate) release() { <-g }
