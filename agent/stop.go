package agent

import (
	"os"
	"os/signal"
	"syscall"
)

// Stopping: an agent (direct, relayed or privileged) stops when its
// controller's stream ends, whatever the reason: the controller closed its
// side to stop (first Ctrl-C), it was killed (its SSH connection closed, so
// sshd closes our stdin), the relay parent above us ended, or the become
// broker died (its socket closed). The inbox then closes gone: the engine
// starts nothing more, the resources in flight get StopGrace to finish, and
// Serve returns. No signal is needed, and none would reach a root agent
// from an unprivileged controller anyway.
//
// What must not happen is dying half-way through a resource because the
// way back broke: writing to a closed stdout kills a Go program with
// SIGPIPE, and a become broker's exit hangs up the terminal of the tool
// that runs the privileged agent (SIGHUP). Both are caught (not ignored:
// an ignored signal would stay ignored in the commands resources run), so
// they only turn into write errors and the plan stops softly.
func catchHangups() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE, syscall.SIGHUP)
}
