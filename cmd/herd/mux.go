package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-project/herd/internal/transport"
)

// newMuxCmd is `herd mux`: the connections --persist keeps open (see
// transport.ServeMux), listed and stopped; `herd mux serve` is what a run
// starts, detached, for each host it persists.
func newMuxCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mux",
		Short: "list or stop the SSH connections kept open by --persist",
	}
	var dir string
	cmd.PersistentFlags().StringVar(&dir, "dir", "", "directory of the persisted connections' sockets (default ~/.herd/mux)")
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "list the persisted connections: host, host key, pid, idle time",
		Args:  noArgs,
		Run:   func(cmd *cobra.Command, args []string) { a.code = runMuxList(dir, a.stdout, a.stderr) },
	}, &cobra.Command{
		Use:   "stop [HOST]",
		Short: "close the persisted connections (of HOST, by inventory name or address)",
		Args:  cobra.MaximumNArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			var hosts []string
			if all, err := transport.ListMuxes(dir); err == nil && len(args) == 0 {
				for _, m := range all {
					if m.Err == nil {
						hosts = append(hosts, m.Host)
					}
				}
			}
			return hosts, cobra.ShellCompDirectiveNoFileComp
		},
		Run: func(cmd *cobra.Command, args []string) {
			host := ""
			if len(args) == 1 {
				host = args[0]
			}
			a.code = runMuxStop(dir, host, a.stdout, a.stderr)
		},
	}, &cobra.Command{
		Use:    "serve",
		Short:  "serve one persisted connection (started by herd runs; reads its spec on stdin)",
		Hidden: true,
		Args:   noArgs,
		Run: func(cmd *cobra.Command, args []string) {
			// The run waits for the first line only; once it is written
			// stdout is closed so that a run gone meanwhile cannot SIGPIPE
			// the mux, and stderr goes nowhere for the same reason.
			null, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			os.Stderr = null
			if err := transport.ServeMux(os.Stdin, os.Stdout, func() { os.Stdout.Close() }); err != nil {
				a.code = exitFailed
			}
		},
	})
	return cmd
}

func runMuxList(dir string, stdout, stderr io.Writer) int {
	all, err := transport.ListMuxes(dir)
	if err != nil {
		fmt.Fprintf(stderr, "herd mux list: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%-16s %-32s %-8s %-8s %-10s %s\n", "HOST", "ADDRESS", "PID", "RUNS", "IDLE", "HOST KEY")
	for _, m := range all {
		if m.Err != nil {
			fmt.Fprintf(stdout, "%-16s %s: dead (%v); herd mux stop removes it\n", "?", m.Socket, m.Err)
			continue
		}
		idle := "in use"
		if !m.IdleSince.IsZero() {
			idle = fmt.Sprintf("%s/%s", time.Since(m.IdleSince).Round(time.Second), m.Persist)
		}
		fmt.Fprintf(stdout, "%-16s %-32s %-8d %-8d %-10s %s\n", m.Host, m.Where, m.Pid, m.Conns, idle, m.HostKey)
	}
	return exitOK
}

func runMuxStop(dir, host string, stdout, stderr io.Writer) int {
	done, err := transport.StopMuxes(dir, host)
	if err != nil {
		fmt.Fprintf(stderr, "herd mux stop: %v\n", err)
		return exitUsage
	}
	code := exitOK
	for _, m := range done {
		switch {
		case m.Err != nil && m.Pid == 0:
			fmt.Fprintf(stdout, "removed stale %s\n", m.Socket)
		case m.Err != nil:
			fmt.Fprintf(stderr, "herd mux stop: %s (pid %d): %v\n", m.Host, m.Pid, m.Err)
			code = exitFailed
		default:
			fmt.Fprintf(stdout, "stopped %s (pid %d)\n", m.Host, m.Pid)
		}
	}
	if host != "" && len(done) == 0 {
		fmt.Fprintf(stderr, "herd mux stop: no persisted connection to %s\n", host)
		return exitFailed
	}
	return code
}
