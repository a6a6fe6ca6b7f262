package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Connection set-ups that fail for a reason a moment may cure — no answer
// within connect_timeout, a handshake that did not finish, a refused
// connection (sshd restarting), a connection closed mid-handshake (sshd
// MaxStartups) — are tried again after a growing pause. On a busy controller
// (hundreds of first contacts, agents being unpacked on the same machine) or
// a target with a slow moment, one late handshake must not fail the host.
// Authentication failures, host key refusals and bad names are final: trying
// again cannot fix them and would only lock accounts or hide an attack.

// errTransient marks a set-up error worth another attempt.
type errTransient struct{ err error }

func (e *errTransient) Error() string { return e.err.Error() }
func (e *errTransient) Unwrap() error { return e.err }

func transient(err error) error { return &errTransient{err} }

func isTransient(err error) bool {
	var t *errTransient
	return errors.As(err, &t)
}

// DefaultDialRetries is how many times a failed set-up is tried again when
// Config.DialRetries is 0.
const DefaultDialRetries = 2

// backoff is the pause before retry n (1-based): 0.5s, 1s, 2s, 4s... capped
// at 8s, with up to 25% jitter so that hosts failed together do not come
// back together.
func backoff(n int) time.Duration {
	d := 500 * time.Millisecond << min(n-1, 4)
	return d + time.Duration(rand.Int64N(int64(d/4)+1))
}

// dialRetrying runs dial until it succeeds, fails for good, the retries
// are spent or ctx ends; every retry is reported through OnDialRetry and
// Debugf. While set-ups time out the pool runs fewer of them at once
// (see pacer), so the retries do not meet the same crowd.
func (p *Pool) dialRetrying(ctx context.Context, e *endpoint) (*Client, error) {
	retries := p.cfg.DialRetries
	if retries < 0 {
		retries = 0
	}
	for n := 1; ; n++ {
		c, err := p.dialOnce(ctx, e)
		if err == nil {
			p.pace.success()
			return c, nil
		}
		if !isTransient(err) || ctx.Err() != nil {
			return nil, err
		}
		if errors.Is(err, errTimedOut) {
			p.pace.timeout()
		}
		if n > retries {
			if retries > 0 {
				return nil, fmt.Errorf("%w (after %d attempts)", err, n)
			}
			return nil, err
		}
		wait := backoff(n)
		p.cfg.Debugf("%s: connection set-up failed (%v); attempt %d of %d in %s", e.where(), err, n+1, retries+1, wait.Round(time.Millisecond))
		if p.cfg.OnDialRetry != nil {
			p.cfg.OnDialRetry(e.name, n+1, retries+1, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s: %w", e.where(), ctx.Err())
		}
	}
}

// errTimedOut marks the transient errors that were timeouts: the ones that
// say the controller or the target is overloaded, not that sshd is away.
var errTimedOut = errors.New("timed out")

// pacer is an adaptive bound on set-ups in flight below MaxConns: each
// timed-out set-up takes one slot out of service (never below 2 in
// service), each success puts one back. The slots out of service are held
// tokens of the pool's semaphore, so a waiting Get still honours ctx.
type pacer struct {
	sem  chan struct{}
	held chan struct{} // one token per slot out of service
}

func newPacer(sem chan struct{}) *pacer {
	return &pacer{sem: sem, held: make(chan struct{}, max(cap(sem)-2, 0))}
}

func (pc *pacer) timeout() {
	select {
	case pc.held <- struct{}{}:
	default:
		return // at the floor already
	}
	// Take a slot once one frees; the set-up that timed out just left its
	// own, so this does not wait long.
	go func() { pc.sem <- struct{}{} }()
}

func (pc *pacer) success() {
	select {
	case <-pc.held:
		go func() { <-pc.sem }()
	default:
	}
}

// InService is how many set-ups may run at once now.
func (p *Pool) InService() int { return cap(p.sem) - len(p.pace.held) }

// quiet wraps an error for errors.Is while adding nothing to the message.
type quiet struct{ error }

func (quiet) Error() string   { return "" }
func (q quiet) Unwrap() error { return q.error }
