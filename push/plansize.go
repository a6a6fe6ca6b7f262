package push

import (
	"errors"
	"fmt"

	"github.com/herd-project/herd/wire"
)

// PlanTooLargeError is a plan that cannot travel in one wire frame. It is a
// policy problem (too much inline content), not a network one, so it must
// not be reported as an unreachable host.
type PlanTooLargeError struct {
	Host, Role  string
	Size, Limit int
}

func (e *PlanTooLargeError) Error() string {
	return fmt.Sprintf("host %s, role %s: the plan is %.1f MiB, over the wire limit of %d MiB (ship large files with source=, fetched by hash, instead of inline content or templates)",
		e.Host, e.Role, float64(e.Size)/(1<<20), e.Limit>>20)
}

// checkPlanSize encodes msg as it will be sent and refuses it if the agent
// could not receive it. Call it once the plan is built, before the plan is
// sent and ideally before anything changes on any host.
func checkPlanSize(host, role string, msg *wire.RunPlan) error {
	_, err := wire.CheckSize(msg, wire.DefaultMaxFrame)
	var tl *wire.TooLargeError
	if errors.As(err, &tl) {
		return &PlanTooLargeError{Host: host, Role: role, Size: tl.Size, Limit: tl.Limit}
	}
	return err
}
