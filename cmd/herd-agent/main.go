// Command herd-agent is the target half of herd alone: what the bootstrap
// installs on managed machines when the controller finds it (beside the
// herd executable, or in an agent directory), instead of the whole herd
// binary. It runs every target-side entry point there is, all of them
// `agent ...` (package agent: the agent, the become broker with --become,
// the privileged agent with --become-socket, and the relay to children
// that runs inside the agent), and it links no controller code: no policy
// evaluation, inventory, push or file serving (internal/layers tests it).
//
// Build it with herd, from the same tree, stripped:
//
//	go build -trimpath -ldflags "-s -w" -o bin/ ./cmd/herd ./cmd/herd-agent
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/herd-project/herd/internal/agent"
	"github.com/herd-project/herd/internal/build"
	"github.com/herd-project/herd/internal/wire"
)

// IdentityCommand is the argument the controller runs a same-architecture
// herd-agent with, once per run, to compare protocols before shipping it.
const identityCommand = "identity"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "herd-agent: the target half of herd, started by herd's bootstrap over SSH; run herd on the controller")
		return 2
	}
	switch args[0] {
	case "agent":
		// As in herd: the agent stops when its controller's stream ends;
		// a signal cancels what runs.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return agent.Main(ctx, args[1:], stderr)
	case identityCommand:
		fmt.Fprintln(stdout, "herd-agent protocol", wire.Fingerprint())
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "herd-agent", version())
		return 0
	}
	fmt.Fprintf(stderr, "herd-agent: unknown command %q (herd-agent only serves herd's controller: agent, identity, version)\n", args[0])
	return 2
}

func version() string { return build.Version() }
