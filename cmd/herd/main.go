// Command herd configures machines from a Starlark policy, locally or over
// SSH. The same binary is the agent that runs on targets (`herd agent`).
// This file holds only flag parsing and wiring; the work happens in the
// policy, engine and push packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes, documented in the README.
const (
	exitOK          = 0
	exitFailed      = 1 // at least one resource failed
	exitUsage       = 2 // bad flags, policy or inventory: nothing ran
	exitUnreachable = 3 // at least one host could not be reached (and nothing failed)
	exitInterrupted = 4 // stopped by a signal (a second one: exitKilled)
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `herd configures Linux machines from a Starlark policy.

Usage:
  herd check  POLICY [flags]   show what would change, change nothing
  herd apply  POLICY [flags]   make it so
  herd watch  POLICY [flags]   make it so and keep it so: re-apply edits, repair drift
  herd demo   [DIR]            apply the embedded demo policy twice under DIR (default: a new temp dir)
  herd inventory [--list | --host H | --graph] [-i] FILE|DIR...
  herd agents [--agent-dir-local DIR]   list the agent builds herd sends, by architecture
  herd version

Run 'herd apply -h' for flags.
`

func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		// A panic is a herd bug; it must still not dump a Go trace on a user.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "herd: internal error: %v (please report this)\n", r)
			code = exitFailed
		}
	}()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "check", "apply":
		in, end := watchInterrupts(stderr)
		defer end()
		return runPolicy(in, args[0], args[1:], stdout, stderr)
	case "watch":
		in, end := watchInterrupts(stderr)
		defer end()
		return runWatch(in, args[1:], stdout, stderr)
	case "demo":
		in, end := watchInterrupts(stderr)
		defer end()
		return runDemo(in, args[1:], stdout, stderr)
	case "agent":
		// An agent stops when its controller's stream ends (package
		// agent); a signal sent to it cancels what runs.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runAgent(ctx, args[1:], stderr)
	case "inventory":
		return runInventory(args[1:], stdout, stderr)
	case "agents":
		return runAgents(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "herd", version())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "herd: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// parseInterleaved lets flags come before or after positional arguments
// ("herd apply site.star --local"), which the flag package alone does not.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// varsFlag collects -e key=value pairs.
type varsFlag map[string]any

func (v varsFlag) String() string { return "" }
func (v varsFlag) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	v[k] = val
	return nil
}
