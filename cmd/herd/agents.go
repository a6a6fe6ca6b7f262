package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/push"
)

// runAgents lists what a run ships to targets, one line per architecture:
// the uname -m answers that select it, the build's kind (the lean
// herd-agent, or a whole herd), its sha256, size and gzip size as sent,
// and the file. The builds are found and checked exactly as apply does
// (agentBuilds), so a herd-agent of another build fails here too.
func runAgents(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd agents", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("agent-dir-local", "", "directory of herd-linux-<arch> builds and their SHA256SUMS (default: agent_dir_local in defaults.toml)")
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
	defaults, _, err := loadDefaults()
	if err != nil {
		fmt.Fprintf(stderr, "herd agents: defaults: %v\n", err)
		return exitUsage
	}
	self, more, err := agentBuilds(*dir, defaults)
	if err != nil {
		fmt.Fprintf(stderr, "herd agents: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%-8s %-26s %-5s %-64s %10s %10s  %s\n", "ARCH", "UNAME -M", "KIND", "SHA256", "BYTES", "GZIP", "FILE")
	for _, b := range push.AgentSet(self, more) {
		hash, err := b.Hash()
		if err != nil {
			fmt.Fprintf(stderr, "herd agents: %v\n", err)
			return exitFailed
		}
		gz, raw, err := b.Payload()
		if err != nil {
			fmt.Fprintf(stderr, "herd agents: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "%-8s %-26s %-5s %-64s %10d %10d  %s\n", b.Arch, bootstrap.UnameNames(b.Arch), push.AgentKind(b), hash, len(raw), len(gz), b.Path)
	}
	return exitOK
}
