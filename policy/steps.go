package policy

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"
)

// DefaultMaxSteps bounds the Starlark steps one evaluation may take (the
// top level with its loads, one role's main for one host, one hook call).
// Real policies take thousands; a runaway loop hits this in about a second
// and fails at its line instead of spinning for minutes.
const DefaultMaxSteps = 10_000_000

// stepsMsg and stopMsg are the reasons threads are cancelled with; asError
// turns starlark's "Starlark computation cancelled: ..." into our words.
const (
	stepsMsg = "too many steps"
	stopMsg  = "herd was interrupted"
)

// limit applies the step limit and the stop signal to thread. release must
// be called when the evaluation ends, so a finished thread is not kept.
func (p *Policy) limit(thread *starlark.Thread) (release func()) {
	thread.SetMaxExecutionSteps(p.maxSteps)
	if p.stop == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-p.stop:
			thread.Cancel(stopMsg)
		case <-done:
		}
	}()
	return func() { close(done) }
}

// cancelMsg rewrites a cancellation's message, or returns msg unchanged.
func (p *Policy) cancelMsg(msg string) string {
	reason, ok := strings.CutPrefix(msg, "Starlark computation cancelled: ")
	switch {
	case !ok:
		return msg
	case reason == stepsMsg:
		return fmt.Sprintf("evaluation exceeded %d steps (an endless loop?); raise the limit with --max-steps if the policy really needs more", p.maxSteps)
	case reason == stopMsg:
		return "interrupted"
	}
	return msg
}

// asError is the package's asError with cancellations said plainly.
func (p *Policy) asError(err error, fallbackPos string) *Error {
	e := asError(err, fallbackPos)
	if e != nil {
		e.Msg = p.cancelMsg(e.Msg)
	}
	return e
}
