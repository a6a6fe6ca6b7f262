package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herd-project/herd/event"
	"github.com/herd-project/herd/resource"
)

// withRetry runs fn up to 1+Meta.Retry times, each attempt bounded by
// Meta.Timeout, waiting Meta.RetryDelay between attempts and reporting each
// failed attempt that will be retried. A cancelled run is not retried.
func (r *runner) withRetry(ctx context.Context, i int, fn func(context.Context) (resource.Change, error)) (resource.Change, error) {
	m := r.p.Resources[i].Meta
	attempts := 1 + max(m.Retry, 0)
	for n := 1; ; n++ {
		change, err := attempt(ctx, m.Timeout, fn)
		if err == nil || n >= attempts || r.stopped(ctx) {
			return change, err
		}
		r.report(i, event.Event{
			Type: event.Retry,
			Msg:  fmt.Sprintf("attempt %d of %d failed, retrying in %s: %v", n, attempts, m.RetryDelay, err),
		}, false)
		if m.RetryDelay > 0 {
			t := time.NewTimer(m.RetryDelay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return change, err
			case <-r.o.Stop:
				t.Stop()
				return change, err
			}
		}
	}
}

// attempt runs fn once under timeout (none if <= 0) and turns the deadline
// into an error that says what happened, rather than "context deadline
// exceeded" from somewhere deep in the resource.
func attempt(ctx context.Context, timeout time.Duration, fn func(context.Context) (resource.Change, error)) (resource.Change, error) {
	if timeout <= 0 {
		return fn(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	change, err := fn(actx)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	return change, err
}
