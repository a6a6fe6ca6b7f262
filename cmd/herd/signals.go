package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/herd-project/herd/push"
)

// exitKilled is the exit status after a second Ctrl-C: the shell's own for a
// process ended by SIGINT, since herd quit without waiting for anything.
const exitKilled = 130

// interrupts is how check and apply stop. The first SIGINT or SIGTERM
// closes stop: policy evaluation is cancelled, nothing new starts, and each
// host's agent finishes the resources in flight and reports (push.StopWait
// at most). ctx is cancelled hardAfter later whatever still runs. A second
// signal ends the process at once.
type interrupts struct {
	stop <-chan struct{}
	ctx  context.Context
}

// hardAfter bounds a stopped run: the agents' reports, and connection
// set-ups or hooks that were under way.
var hardAfter = push.StopWait + 5*time.Second

// watchInterrupts starts watching for signals; end stops watching.
func watchInterrupts(stderr io.Writer) (in *interrupts, end func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stop := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		close(stop)
		fmt.Fprintf(stderr, "herd: interrupted: finishing the resources in flight (at most %v); interrupt again to quit now\n", hardAfter)
		t := time.AfterFunc(hardAfter, cancel)
		defer t.Stop()
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "herd: interrupted again: quitting now")
			os.Exit(exitKilled)
		case <-done:
		}
	}()
	return &interrupts{stop: stop, ctx: ctx}, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// stopped says whether the run was interrupted.
func (in *interrupts) stopped() bool {
	select {
	case <-in.stop:
		return true
	default:
		return false
	}
}
