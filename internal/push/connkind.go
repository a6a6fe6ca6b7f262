package push

import (
	"context"
	"fmt"
	"strings"

	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/transport"
)

// Hosts with a herd_connection other than ssh (a chroot, a namespace, a
// container, a pod) are entered by a tool that runs on the controller or,
// with herd_via, on the parent host over the parent's own SSH connection:
// the bootstrap command goes through the tool, so the agent's bytes flow
// controller → parent's sshd → tool → agent, and nothing else changes.
// A parent may itself be such a host (a chroot inside a container on a
// host): each hop wraps the command line once more.

// kindStarter returns how to run the bootstrap command inside h.
func (r *runner) kindStarter(ctx context.Context, role *policy.Role, h *inventory.Host, broker bool) (func(string) (*transport.Session, error), error) {
	run, where, sshParent, err := r.runOn(ctx, role, h.Conn.Via, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	spec := connSpec(h, where)
	if sshParent != nil {
		spec.Seed = r.seedFrom(ctx, role, h, sshParent)
	}
	if _, err := transport.ConnLine(h.Conn.Connection, spec, "true"); err != nil {
		return nil, err
	}
	return func(cmd string) (*transport.Session, error) {
		if broker {
			var err error
			if cmd, err = bootstrap.BrokerCommand(cmd); err != nil {
				return nil, err
			}
		}
		line, err := transport.ConnLine(h.Conn.Connection, spec, cmd)
		if err != nil {
			return nil, err
		}
		return run(line)
	}, nil
}

// runOn returns how to run a shell line on the machine named via ("" =
// the controller) and that machine's name for messages.
// sshParent is that machine when it is a host reached over SSH.
func (r *runner) runOn(ctx context.Context, role *policy.Role, via string, depth int) (run func(string) (*transport.Session, error), where string, sshParent *inventory.Host, err error) {
	if via == "" {
		return func(line string) (*transport.Session, error) {
			return transport.StartLocal(ctx, []string{"/bin/sh", "-c", line})
		}, "the controller", nil, nil
	}
	if depth > 8 {
		return nil, "", nil, fmt.Errorf("herd_via chain is longer than 8 hops (a loop?)")
	}
	parent, ok := r.lookupHost(via)
	if !ok {
		return nil, "", nil, fmt.Errorf("herd_via names %q, which is not in the inventory", via)
	}
	if !transport.IsSSH(parent.Conn.Connection) {
		run, where, _, err := r.runOn(ctx, role, parent.Conn.Via, depth+1)
		if err != nil {
			return nil, "", nil, err
		}
		spec := connSpec(parent, where)
		return func(line string) (*transport.Session, error) {
			wrapped, err := transport.ConnLine(parent.Conn.Connection, spec, line)
			if err != nil {
				return nil, err
			}
			return run(wrapped)
		}, parent.Name, nil, nil
	}
	if _, trusted, err := r.relayParentOf(parent); err != nil {
		return nil, "", nil, err
	} else if trusted {
		return nil, "", nil, fmt.Errorf("herd_via %s: a herd_via_mode=trusted host cannot run a connection tool for another host; make it a jump host", parent.Name)
	}
	t, err := r.target(role, parent, 0)
	if err != nil {
		return nil, "", nil, err
	}
	client, err := r.pool.Get(ctx, t)
	if err != nil {
		return nil, "", nil, err
	}
	return func(line string) (*transport.Session, error) {
		return client.Start(ctx, line)
	}, parent.Name, parent, nil
}

// seedFrom has h's agent copied from parent's cache: the parent's own agent
// is started first (once per run, shared with its roles), which caches the
// binary there, so on a cold run the binary crosses the controller's link
// once per parent rather than once per container or chroot on it. If the
// parent's agent cannot start, h is bootstrapped from the controller.
func (r *runner) seedFrom(ctx context.Context, role *policy.Role, h, parent *inventory.Host) *transport.Seed {
	pac, err := r.agent(ctx, role, parent)
	if err != nil {
		r.relayLog(h.Name, fmt.Sprintf("the agent comes from the controller: its herd_via parent %s has no agent: %v", parent.Name, err))
		return nil
	}
	// The parent's own build: a container or chroot shares its kernel and
	// so its architecture; the child's hello is checked against the builds
	// all the same.
	return &transport.Seed{Hash: pac.hello.AgentHash, ParentDir: parent.Conn.AgentDir, TargetDir: h.Conn.AgentDir}
}

// connSpec is what a connection kind needs from h's inventory entry.
func connSpec(h *inventory.Host, where string) transport.ConnSpec {
	vars := map[string]string{}
	for k, v := range h.Vars {
		if !strings.HasPrefix(k, "herd_") && !strings.HasPrefix(k, "ansible_") {
			continue
		}
		switch x := v.(type) {
		case string:
			vars[k] = x
		case int, int64, float64:
			vars[k] = fmt.Sprint(x)
		}
	}
	return transport.ConnSpec{Host: h.Name, Target: h.Conn.Address, User: h.Conn.User, Vars: vars, Where: where}
}

// checkConns refuses, before anything runs, a host whose herd_connection
// is unknown or lacks what its kind needs.
func checkConns(hosts []*inventory.Host) error {
	for _, h := range hosts {
		if err := transport.CheckConn(h.Conn.Connection, connSpec(h, "the controller")); err != nil {
			return err
		}
	}
	return nil
}
