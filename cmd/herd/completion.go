package main

import (
	"sort"

	"github.com/spf13/cobra"
)

// Shell completion: cobra's `herd completion bash|zsh|fish` scripts ask
// the binary (`herd __complete ...`) for candidates; these functions give
// herd's own: policy files, and host and group names from the -i sources
// already on the command line.

// completePolicyFile offers .star files for the one POLICY argument.
func completePolicyFile(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []string{"star"}, cobra.ShellCompDirectiveFilterFileExt
}

// completeHostsAndGroups offers the names of the hosts (and with groups,
// of the groups) of the inventories given with -i so far. Vault values
// are not needed for names, so no password is asked; an inventory that
// does not load offers nothing rather than an error in the shell.
func completeHostsAndGroups(sources *sourcesFlag, groups bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(*sources) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		inv, err := loadSources(*sources, "", nil)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		seen := map[string]bool{}
		for _, h := range inv.Hosts() {
			seen[h.Name] = true
		}
		if groups {
			for _, g := range inv.Groups() {
				seen[g.Name] = true
			}
		}
		names := make([]string, 0, len(seen))
		for n := range seen {
			names = append(names, n)
		}
		sort.Strings(names)
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
