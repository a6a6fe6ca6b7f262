package push

import (
	"time"

	"github.com/herd-project/herd/event"
)

// Stopping a run (Options.Stop, the first Ctrl-C): no host, batch or role
// starts after it. A host whose plan runs is told by closing its agent's
// input, the same end of stream a killed controller causes: the agent
// starts no further resource, lets those in flight finish and sends Done,
// so the recap shows exactly what ran. The controller waits for that at most
// StopWait per host; cancelling Run's context instead cuts every connection
// at once (the agents then stop the same way, unobserved).

// StopWait bounds how long a stopped run waits for a host's agent to finish
// the resources it has in flight and report.
var StopWait = 15 * time.Second

// stopping says whether the run was asked to stop.
func (r *runner) stopping() bool {
	select {
	case <-r.o.Stop:
		return true
	default:
		return false
	}
}

// interrupted records that h did not finish role because the run stopped.
func (r *runner) interrupted(hr *HostResult, host, role, msg string) bool {
	r.mu.Lock()
	hr.Interrupted = true
	r.mu.Unlock()
	r.emit(event.Event{Type: event.Interrupted, Host: host, Role: role, Msg: msg})
	return false
}

// stopPlan closes the agent's input when stop closes while a plan runs,
// then cuts the session if the agent has not finished StopWait later. The
// returned func ends the watch; call it when the plan is done.
func (ac *agentConn) stopPlan(stop <-chan struct{}) (done func()) {
	finished := make(chan struct{})
	go func() {
		select {
		case <-stop:
		case <-finished:
			return
		}
		ac.sess.Stdin.Close()
		t := time.NewTimer(StopWait)
		defer t.Stop()
		select {
		case <-t.C:
			ac.sess.Close()
		case <-finished:
		}
	}()
	return func() { close(finished) }
}
