package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/push"
)

// limitFlags are Ansible's host selection flags: --limit/-l PATTERN and
// --list-hosts.
type limitFlags struct {
	pattern   string
	listHosts bool
}

func (l *limitFlags) register(cmd *cobra.Command, sources *sourcesFlag) {
	fs := cmd.Flags()
	fs.StringVarP(&l.pattern, "limit", "l", "", "only hosts matching this Ansible host pattern (web:db, web:&prod, !db1, web*, ~regex, @file, @failed, @unreachable, @changed)")
	fs.BoolVar(&l.listHosts, "list-hosts", false, "print the hosts each role would run on, and exit")
	cmd.RegisterFlagCompletionFunc("limit", completeHostsAndGroups(sources, true))
}

// apply parses --limit into lim. @failed, @unreachable and @changed are
// the hosts the last recorded run of policyFile left in that state; any
// other @name is a file of patterns, one a line.
func (l *limitFlags) apply(lim *push.Limit, policyFile string, pol *policy.Policy, inv *inventory.Inventory) error {
	if l.pattern == "" {
		return nil
	}
	expand := func(name string) ([]string, error) {
		switch name {
		case "failed", "unreachable", "changed":
			dir, err := push.DefaultRunsDir()
			if err != nil {
				return nil, err
			}
			return push.RecordedHosts(dir, policyFile, name)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("@%s: %v", name, pathErr(err))
		}
		return strings.Split(string(data), "\n"), nil
	}
	p, err := inventory.ParsePattern(l.pattern, expand)
	if err != nil {
		return fmt.Errorf("--limit: %v", err)
	}
	invs := append([]*inventory.Inventory{inv}, policy.Inventories(pol)...)
	p.Bind(invs...) // web[0] indexes these inventories' hosts
	lim.Pattern = p
	lim.IsGroup = push.IsGroupIn(invs...)
	return nil
}

// printHostsByRole is --list-hosts.
func printHostsByRole(pol *policy.Policy, inv *inventory.Inventory, lim push.Limit, stdout io.Writer) error {
	roles, err := push.ListHosts(pol, inv, lim)
	if err != nil {
		return err
	}
	for _, r := range roles {
		fmt.Fprintf(stdout, "role %s (%d hosts):\n", r.Role, len(r.Hosts))
		for _, h := range r.Hosts {
			fmt.Fprintf(stdout, "  %s\n", h)
		}
	}
	return nil
}

// recordRun leaves the run's per-host outcome for --limit @failed; a
// failure to record is a warning, never a changed exit code.
func recordRun(policyFile string, check bool, res *push.Result, stderr io.Writer) {
	if res == nil {
		return
	}
	dir, err := push.DefaultRunsDir()
	if err == nil {
		err = push.RecordOutcome(dir, policyFile, check, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "herd: warning: recording the run for --limit @failed: %v\n", err)
	}
}
