package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/push"
)

// runAgents lists what herd can send to targets: its own binary for its
// own architecture, and the verified builds of --agent-dir-local, one line
// each with the uname -m answers that select it, its sha256 and sizes.
func runAgents(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd agents", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("agent-dir-local", "", "directory of herd-linux-<arch> builds and their SHA256SUMS")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "herd agents: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	self, err := push.SelfBinary()
	if err != nil {
		fmt.Fprintf(stderr, "herd agents: %v\n", err)
		return exitFailed
	}
	var more []*push.Binary
	if *dir != "" {
		if more, err = push.LoadAgentDir(*dir); err != nil {
			fmt.Fprintf(stderr, "herd agents: %v\n", err)
			return exitUsage
		}
	}
	fmt.Fprintf(stdout, "%-8s %-26s %-64s %10s %10s  %s\n", "ARCH", "UNAME -M", "SHA256", "BYTES", "GZIP", "FILE")
	for _, b := range push.AgentSet(self, more) {
		hash, err := b.Hash()
		if err != nil {
			fmt.Fprintf(stderr, "herd agents: %v\n", err)
			return exitFailed
		}
		gz, raw, _ := b.Payload()
		fmt.Fprintf(stdout, "%-8s %-26s %-64s %10d %10d  %s\n", b.Arch, bootstrap.UnameNames(b.Arch), hash, len(raw), len(gz), b.Path)
	}
	return exitOK
}
