package main

import (
	"context"
	"io"

	"github.com/herd-project/herd/internal/agent"
)

// runAgent is the hidden target-side entry point, started by the bootstrap
// script over SSH.
func runAgent(ctx context.Context, args []string, stderr io.Writer) int {
	return agent.Main(ctx, args, stderr)
}
