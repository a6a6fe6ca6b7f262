package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/herd-project/herd/internal/build"
)

// newVersionCmd is `herd version` (also `herd --version`).
func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the module version, VCS revision and Go toolchain of this build",
		Args:  noArgs,
		Run:   func(cmd *cobra.Command, args []string) { fmt.Fprintln(a.stdout, "herd", version()) },
	}
}

// version says which build this is (build.Version).
func version() string { return build.Version() }
