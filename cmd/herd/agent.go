package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/herd-project/herd/internal/agent"
)

// newAgentCmd is the hidden target-side entry point, started by the
// bootstrap script over SSH. Package agent parses its own flags.
func newAgentCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:                "agent",
		Short:              "the target side of a push run (started by herd over SSH)",
		Hidden:             true,
		DisableFlagParsing: true,
		Run: func(cmd *cobra.Command, args []string) {
			// An agent stops when its controller's stream ends (package
			// agent); a signal sent to it cancels what runs.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			a.code = agent.Main(ctx, args, a.stderr)
		},
	}
}
