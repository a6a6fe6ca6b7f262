package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// Pool keeps one SSH connection per target login for the whole run, so every
// role reuses the connection (and the agent started over it) instead of
// paying a handshake per role. Jump hosts are pooled too: a hundred targets
// behind one bastion share one bastion connection.
type Pool struct {
	cfg  Config
	sem  chan struct{} // bounds concurrent connection set-ups
	pace *pacer        // narrows sem while set-ups time out (retry.go)
	load func() (*sshConfig, error)

	mu     sync.Mutex
	conns  map[string]*poolEntry
	closed bool

	onDial func(e *endpoint) // test hook: called inside the dial slot
}

type poolEntry struct {
	ready chan struct{} // closed when c/err are set
	c     *Client
	err   error
}

// NewPool reads no files yet: the ssh_config file is read on the first Get,
// so a broken file is reported with the first host that needs it.
func NewPool(cfg Config) *Pool {
	cfg = cfg.withDefaults()
	sem := make(chan struct{}, cfg.MaxConns)
	return &Pool{
		cfg:   cfg,
		sem:   sem,
		pace:  newPacer(sem),
		load:  sync.OnceValues(func() (*sshConfig, error) { return loadSSHConfig(cfg.SSHConfigFile) }),
		conns: map[string]*poolEntry{},
	}
}

// Get returns the connection for t, dialing it (and its jump hosts) on first
// use. Concurrent Gets for the same target share one dial. A connection that
// died (keepalive timeout, host reboot) is replaced on the next Get; a failed
// dial is not remembered, so a later Get tries again.
func (p *Pool) Get(ctx context.Context, t Target) (*Client, error) {
	sc, err := p.load()
	if err != nil {
		return nil, err
	}
	e, err := sc.resolve(t)
	if err != nil {
		return nil, err
	}
	return p.get(ctx, e)
}

func (p *Pool) get(ctx context.Context, e *endpoint) (*Client, error) {
	key := e.key()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("%s: transport pool is closed", e.where())
		}
		ent, ok := p.conns[key]
		if !ok {
			ent = &poolEntry{ready: make(chan struct{})}
			p.conns[key] = ent
			p.mu.Unlock()
			ent.c, ent.err = p.dialRetrying(ctx, e)
			close(ent.ready)
			if ent.err != nil {
				p.forget(key, ent)
			}
			return ent.c, ent.err
		}
		p.mu.Unlock()
		select {
		case <-ent.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", e.where(), ctx.Err())
		}
		if ent.err != nil {
			return nil, ent.err
		}
		if !ent.c.isClosed() {
			return ent.c, nil
		}
		p.forget(key, ent)
	}
}

func (p *Pool) forget(key string, ent *poolEntry) {
	p.mu.Lock()
	if p.conns[key] == ent {
		delete(p.conns, key)
	}
	p.mu.Unlock()
}

// Close ends every connection. Sessions still running fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[string]*poolEntry{}
	p.mu.Unlock()
	var errs []error
	for _, ent := range conns {
		<-ent.ready
		if ent.c != nil {
			if err := ent.c.close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// dialOnce makes one attempt at a connection inside a set-up slot.
func (p *Pool) dialOnce(ctx context.Context, e *endpoint) (*Client, error) {
	if p.cfg.Persist > 0 {
		if c, err, handled := p.viaMux(ctx, e); handled {
			return c, err
		}
	}
	var jump *Client
	if e.jump != nil {
		// Outside our dial slot: the hop takes its own, so MaxConns=1
		// cannot deadlock on a chain.
		var err error
		if jump, err = p.get(ctx, e.jump); err != nil {
			return nil, fmt.Errorf("%s: cannot reach jump host: %w", e.where(), err)
		}
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", e.where(), ctx.Err())
	}
	defer func() { <-p.sem }()
	if p.onDial != nil {
		p.onDial(e)
	}

	hk, err := newHostKeys(e)
	if err != nil {
		return nil, err
	}
	a, err := p.authFor(e)
	if err != nil {
		return nil, err
	}
	defer a.Close()

	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	var raw net.Conn
	if jump != nil {
		raw, err = jump.ssh.DialContext(dctx, "tcp", e.addr())
	} else {
		raw, err = (&net.Dialer{}).DialContext(dctx, "tcp", e.addr())
	}
	if err != nil {
		return nil, p.connectError(ctx, dctx, e, err)
	}
	cc := &countingConn{Conn: raw}
	// x/crypto has no handshake deadline for tunnelled conns, so closing
	// the conn is how a stuck handshake is abandoned.
	stop := context.AfterFunc(dctx, func() { raw.Close() })
	conn, chans, reqs, err := ssh.NewClientConn(cc, e.addr(), &ssh.ClientConfig{
		User:              e.user,
		Auth:              a.methods,
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: hk.algorithms(),
		ClientVersion:     "SSH-2.0-herd",
	})
	if !stop() && err == nil {
		conn.Close()
		err = dctx.Err()
	}
	if err != nil {
		raw.Close()
		return nil, p.handshakeError(ctx, dctx, e, hk, a, err)
	}
	if !e.check {
		p.cfg.Debugf("%s: host key %s accepted without checking (check_host_keys=False)", e.where(), hk.fingerprint)
	}
	if hk.recorded {
		p.cfg.Debugf("%s: new host key %s recorded in %s (accept-new)", e.where(), hk.fingerprint, e.knownHosts[0])
	}
	return newClient(ssh.NewClient(conn, chans, reqs), cc, e, hk.fingerprint, p.cfg), nil
}

func (p *Pool) connectError(ctx, dctx context.Context, e *endpoint, err error) error {
	var dnsErr *net.DNSError
	var chanErr *ssh.OpenChannelError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", e.where(), ctx.Err())
	case dctx.Err() != nil:
		return transient(fmt.Errorf("%s: %w: no answer within %s (connect_timeout); is the host up and port %d reachable?%w",
			e.where(), ErrUnreachable, p.cfg.ConnectTimeout, e.port, quiet{errTimedOut}))
	case errors.Is(err, syscall.ECONNREFUSED):
		return transient(fmt.Errorf("%s: %w: connection refused; is sshd running and listening on port %d?", e.where(), ErrUnreachable, e.port))
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%s: %w: cannot resolve %q; check the name or set herd_host", e.where(), ErrUnreachable, e.host)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("%s: %w: no route to host", e.where(), ErrUnreachable)
	case errors.As(err, &chanErr):
		return fmt.Errorf("%s: %w: jump host %s could not connect: %s", e.where(), ErrUnreachable, e.jump.name, chanErr.Message)
	}
	return fmt.Errorf("%s: %w: %v", e.where(), ErrUnreachable, err)
}

func (p *Pool) handshakeError(ctx, dctx context.Context, e *endpoint, hk *hostKeys, a *auth, err error) error {
	msg := err.Error()
	switch {
	case hk.err != nil:
		return hk.err
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", e.where(), ctx.Err())
	case dctx.Err() != nil:
		return transient(fmt.Errorf("%s: %w: SSH handshake did not finish within %s (connect_timeout)%w", e.where(), ErrUnreachable, p.cfg.ConnectTimeout, quiet{errTimedOut}))
	case strings.Contains(msg, "unable to authenticate"):
		return a.failure(e)
	case strings.Contains(msg, "no common algorithm for host key"):
		return fmt.Errorf("%s: %w: the server offers none of the host key types known_hosts (%s) has for it; it was probably reinstalled. Verify its new key and replace the old entry",
			e.where(), ErrHostKeyChanged, strings.Join(e.knownHosts, ", "))
	case errors.Is(err, syscall.ECONNRESET) || strings.HasSuffix(msg, "EOF"):
		return transient(fmt.Errorf("%s: the server closed the connection during the SSH handshake (sshd MaxStartups or access rules?): %v", e.where(), err))
	}
	return fmt.Errorf("%s: SSH handshake: %v", e.where(), err)
}
