package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/herd-project/herd/agent"
)

// runAgent is the hidden target-side entry point, started by the bootstrap
// script over SSH (or as a subprocess in tests). Its stdout is the protocol,
// so nothing else may be printed there.
func runAgent(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hash := fs.String("hash", "", "expected sha256 of this binary; on mismatch the binary removes itself")
	stateDir := fs.String("state-dir", "", "state directory (default ~/.herd/state)")
	logPath := fs.String("log", "", `event log (default ~/.herd/herd.log, "-" for none)`)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *hash != "" {
		if err := agent.VerifySelf(*hash); err != nil {
			fmt.Fprintf(stderr, "herd agent: %v; removing the cached copy\n", err)
			if exe, err := os.Executable(); err == nil {
				os.Remove(exe)
			}
			return agent.ExitTampered
		}
	}
	err := agent.Serve(ctx, agent.Options{Hash: *hash, StateDir: *stateDir, LogPath: *logPath, In: os.Stdin, Out: os.Stdout})
	if err != nil {
		fmt.Fprintf(stderr, "herd agent: %v\n", err)
		return exitFailed
	}
	return exitOK
}
