package push

import (
	"context"
	"fmt"
	"time"

	"github.com/herd-project/herd/event"
	"github.com/herd-project/herd/inventory"
	"github.com/herd-project/herd/policy"
	"github.com/herd-project/herd/relay"
	"github.com/herd-project/herd/transport"
	"github.com/herd-project/herd/wire"
)

// Connection trees: a host whose herd_via names a parent is reached by
// end-to-end SSH from the controller, carried through the parent's sshd as
// a TCP forward (ProxyJump, any depth: rack via racktop via bastion). The
// parent relays ciphertext only: the controller's transport checks the
// child's host key and logs in with its own keys, so a compromised parent
// has nothing to ask the controller for and nothing to sign with. This is
// the default (herd_via_mode = "jump", or unset).
//
// herd_via_mode = "trusted" instead has the parent's agent dial the child
// and install it from its own cache (package relay), so the agent binary
// crosses the controller's link once per parent rather than once per
// child on a cold run. The parent then sees the child's session in clear
// text and gets the child's login signed by the controller (restricted to
// the user and keys named for that child, and logged): it is trusted the
// way `ssh -A` trusts a host.

// viaModes are the values herd_via_mode may take.
const (
	viaJump    = "jump"
	viaTrusted = "trusted"
)

// relayParentOf returns the parent whose agent dials h, for hosts in the
// trusted mode; other hosts (herd_via in the default mode included) are
// dialled by the controller's transport.
func (r *runner) relayParentOf(h *inventory.Host) (*inventory.Host, bool, error) {
	if h.Conn.Via == "" {
		return nil, false, nil
	}
	mode, _ := h.Vars["herd_via_mode"].(string)
	switch mode {
	case "", viaJump:
		return nil, false, nil
	case viaTrusted:
	default:
		return nil, false, fmt.Errorf("%s: herd_via_mode = %q: want %q (the default: end-to-end SSH through the parent) or %q (the parent's agent logs in for you)", h.Name, mode, viaJump, viaTrusted)
	}
	parent, ok := r.lookupHost(h.Conn.Via)
	if !ok {
		return nil, false, fmt.Errorf("%s: herd_via names %q, which is not in the inventory", h.Name, h.Conn.Via)
	}
	return parent, true, nil
}

// relayStarter returns how to start h's agent (or become broker) through
// its trusted parent's agent, starting the parent (and its own parents)
// first. Each start gets transport's login for h: its keys, host key check
// and pinning, resolved with the controller's ssh_config as for a direct
// connection.
func (r *runner) relayStarter(ctx context.Context, role *policy.Role, h, parentHost *inventory.Host, broker bool) (func(string) (*transport.Session, error), error) {
	parent, err := r.agent(ctx, role, parentHost)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot reach its relay %s: %w", h.Name, parentHost.Name, err)
	}
	t, err := r.target(role, h, 0)
	if err != nil {
		return nil, err
	}
	return func(string) (*transport.Session, error) {
		login, err := r.pool.Login(t)
		if err != nil {
			return nil, err
		}
		if len(login.Signers) == 0 && login.Password == "" {
			login.Close()
			return nil, login.AuthFailure()
		}
		return parent.relay.Open(ctx, relay.Child{
			Login: login, AgentDir: h.Conn.AgentDir, Broker: broker,
			Timeout:   max(30*time.Second, 3*r.o.Transport.ConnectTimeout),
			KeepAlive: r.o.Transport.KeepAlive,
		})
	}, nil
}

// relayLog records what a trusted parent had signed or was refused, in the
// run's events (shown with --verbose, kept in log_path).
func (r *runner) relayLog(host, msg string) {
	r.emit(event.Event{Type: event.Log, Host: host, Msg: msg})
}

// startReader reads the agent's messages on their own goroutine: relay
// traffic for children must flow while the parent runs a plan of its own,
// or while it runs none. Everything else is handed to recv in order.
func (ac *agentConn) startReader(logf func(host, msg string)) {
	ac.relay = relay.NewController(ac.name, ac.wc, logf)
	ac.inbox = make(chan wire.Message, 64)
	go func() {
		for {
			msg, err := ac.wc.Recv()
			if err != nil {
				ac.relay.Fail(err)
				ac.readErr = err
				close(ac.inbox)
				return
			}
			if !ac.relay.Handle(msg) {
				ac.inbox <- msg
			}
		}
	}()
}

func (ac *agentConn) recv() (wire.Message, error) {
	msg, ok := <-ac.inbox
	if !ok {
		return nil, ac.readErr
	}
	return msg, nil
}
