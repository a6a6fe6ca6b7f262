package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/herd-project/herd/internal/event"
)

// runGuarded runs one resource and turns a panic in a resource kind into a
// failure of that resource. Resources run on their own goroutines, where a
// panic would otherwise kill the agent and with it every other resource of
// the run.
func (r *runner) runGuarded(ctx context.Context, i int) (ok bool) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			r.report(i, event.Event{
				Type:     event.Failed,
				Msg:      fmt.Sprintf("internal error in the %s resource: %v (please report this)", r.p.Resources[i].Kind, p),
				Duration: time.Since(start),
			}, true)
			ok = false
		}
	}()
	return r.runOne(ctx, i)
}
