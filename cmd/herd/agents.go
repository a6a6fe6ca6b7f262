package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/push"
)

// newAgentsCmd is `herd agents`: what a run ships to targets, one line
// per architecture: the uname -m answers that select it, the build's kind
// (the lean herd-agent, or a whole herd), its sha256, size and gzip size
// as sent, and the file. The builds are found and checked exactly as apply
// does (agentBuilds), so a herd-agent of another build fails here too.
func newAgentsCmd(a *app) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "agents [--agent-dir-local DIR]",
		Short: "list the agent builds a run ships, by target architecture",
		Args:  noArgs,
		Run:   func(cmd *cobra.Command, args []string) { a.code = runAgents(dir, a.stdout, a.stderr) },
	}
	cmd.Flags().StringVar(&dir, "agent-dir-local", "", "directory of herd-linux-<arch> builds and their SHA256SUMS (default: agent_dir_local in defaults.toml)")
	return cmd
}

func runAgents(dir string, stdout, stderr io.Writer) int {
	defaults, _, err := loadDefaults()
	if err != nil {
		fmt.Fprintf(stderr, "herd agents: defaults: %v\n", err)
		return exitUsage
	}
	self, more, err := agentBuilds(dir, defaults)
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
