package push

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-project/herd/internal/become"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/transport"
)

// becomeState is the run's memory of the become password typed at the
// prompt, so it is asked once per run, not once per host.
type becomeState struct {
	mu     sync.Mutex
	asked  bool
	pass   string
	askErr error
}

// becomeIdentity says which method and user role runs as on h; ok is false
// when the role does not escalate, or logs in as that user already.
// Precedence as for the connection: inventory, role, defaults.
func (r *runner) becomeIdentity(role *policy.Role, h *inventory.Host) (method, user string, ok bool) {
	sudo := role.Sudo
	if h.Conn.Become != nil { // ansible_become on the host overrides the role
		sudo = *h.Conn.Become
	}
	if !sudo {
		return "", "", false
	}
	method = first(h.Conn.BecomeMethod, role.BecomeMethod, become.Sudo)
	user = first(h.Conn.SudoUser, role.SudoUser, r.o.Defaults.SudoUser, "root")
	if login := first(h.Conn.User, role.SSHUser, r.o.Defaults.SSHUser); login == user {
		return "", "", false
	}
	return method, user, true
}

// becomeKey names a host's privileged agent among r.agents; it cannot clash
// with a host name, which has no NUL.
func becomeKey(host, method, user string) string {
	return host + "\x00" + method + "\x00" + user
}

// becomeAgent returns the agent running as user on h, starting it through
// the become broker on first use; every role with the same identity on the
// host shares it. The host's plain agent must be running already: it put
// the binary in the cache the broker runs from.
func (r *runner) becomeAgent(ctx context.Context, role *policy.Role, h *inventory.Host, method, user string) (*agentConn, error) {
	key := becomeKey(h.Name, method, user)
	r.mu.Lock()
	ac := r.agents[key]
	r.mu.Unlock()
	if ac != nil {
		return ac, nil
	}
	if err := become.Validate(method, user); err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	brokerStart, err := r.starter(ctx, role, h, true)
	if err != nil {
		return nil, err
	}
	pass, fromPrompt := r.becomePassword(h)
	ac, err = r.startBecome(ctx, h, brokerStart, become.Request{Method: method, User: user, Password: pass})
	var be *become.Error
	if errors.As(err, &be) && be.Kind == become.NeedPassword && pass == "" && !fromPrompt && r.o.AskBecomePass != nil {
		if pass, err = r.askBecomePass(); err != nil {
			return nil, fmt.Errorf("%s: %s to %s: %w", h.Name, method, user, err)
		}
		ac, err = r.startBecome(ctx, h, brokerStart, become.Request{Method: method, User: user, Password: pass})
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.agents[key] = ac
	r.mu.Unlock()
	return ac, nil
}

// becomePassword is the password for h: inventory, then HERD_SUDO_PASSWORD,
// then defaults.toml, then one typed at the prompt earlier in this run.
func (r *runner) becomePassword(h *inventory.Host) (pass string, fromPrompt bool) {
	if p := first(h.Conn.SudoPassword, os.Getenv("HERD_SUDO_PASSWORD"), r.o.Defaults.SudoPassword); p != "" {
		return p, false
	}
	r.become.mu.Lock()
	defer r.become.mu.Unlock()
	return r.become.pass, r.become.asked
}

// askBecomePass asks once per run; hosts that need it meanwhile wait for
// the answer instead of prompting again.
func (r *runner) askBecomePass() (string, error) {
	r.become.mu.Lock()
	defer r.become.mu.Unlock()
	if !r.become.asked {
		r.become.pass, r.become.askErr = r.o.AskBecomePass()
		r.become.asked = true
	}
	return r.become.pass, r.become.askErr
}

// startBecome starts the broker and hands it the request; what follows on
// the channel is the privileged agent, which startAgent greets and checks
// like any agent.
func (r *runner) startBecome(ctx context.Context, h *inventory.Host, brokerStart func(string) (*transport.Session, error), req become.Request) (*agentConn, error) {
	start := func(cmd string) (*transport.Session, error) {
		s, err := brokerStart(cmd)
		if err != nil {
			return nil, err
		}
		// The broker bounds the become itself; this covers a broker that
		// never answers (a frozen host).
		var timedOut atomic.Bool
		timer := time.AfterFunc(become.DefaultTimeout+5*time.Second, func() { timedOut.Store(true); s.Close() })
		err = become.Negotiate(s.Stdout, s.Stdin, req)
		if !timer.Stop() && timedOut.Load() {
			err = &become.Error{Method: req.Method, User: req.User, Kind: become.TimedOut}
		}
		if err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	ac, err := startAgent(ctx, h.Name, start, r.builds, r.uploads, h.Conn.AgentDir, r.o.agentStartTimeout(), r.relayLog)
	var be *become.Error
	if errors.As(err, &be) {
		return nil, fmt.Errorf("%s: %w", h.Name, be)
	}
	return ac, err
}

// dropBecome forgets the host's privileged agents after its connection was
// lost.
func (r *runner) dropBecome(host string) {
	r.mu.Lock()
	var lost []*agentConn
	for k, ac := range r.agents {
		if strings.HasPrefix(k, host+"\x00") {
			lost = append(lost, ac)
			delete(r.agents, k)
		}
	}
	r.mu.Unlock()
	for _, ac := range lost {
		ac.kill()
	}
}
