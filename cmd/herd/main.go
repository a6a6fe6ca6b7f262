// Command herd configures machines from a Starlark policy, locally or over
// SSH. The same binary is the agent that runs on targets (`herd agent`).
// This file holds the command tree (spf13/cobra: flags, help, shell
// completion); each subcommand is built in its own file and the work
// happens in the policy, engine and push packages.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, documented in the README.
const (
	exitOK          = 0
	exitFailed      = 1 // at least one resource failed
	exitUsage       = 2 // bad flags, policy or inventory: nothing ran
	exitUnreachable = 3 // at least one host could not be reached (and nothing failed)
	exitInterrupted = 4 // stopped by a signal (a second one: exitKilled)
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// app is what every subcommand shares: where it writes, and the exit
// status its run sets (cobra itself only knows error or not).
type app struct {
	stdout, stderr io.Writer
	code           int
}

// run executes one herd command line and returns its exit status. A bad
// flag or command is one line naming the command, exit 2.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		// A panic is a herd bug; it must still not dump a Go trace on a user.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "herd: internal error: %v (please report this)\n", r)
			code = exitFailed
		}
	}()
	a := &app{stdout: stdout, stderr: stderr}
	root := newRootCmd(a)
	if len(args) == 0 {
		root.SetOut(stderr)
		root.Help()
		return exitUsage
	}
	root.SetArgs(args)
	c, err := root.ExecuteC()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", c.CommandPath(), usageError(root, err))
		return exitUsage
	}
	return a.code
}

// newRootCmd is the whole command tree. A new subcommand is one
// root.AddCommand line here and a newXCmd in its own file.
func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "herd",
		Short: "herd configures Linux machines from a Starlark policy",
		Long: `herd configures Linux machines from a Starlark policy, on this machine (--local)
or over SSH on an inventory's hosts. Exit status: 0 ok, 1 a resource failed,
2 bad input (nothing ran), 3 a host was unreachable, 4 interrupted.`,
		SilenceErrors:      true,
		SilenceUsage:       true,
		DisableSuggestions: true, // usageError suggests, on one line
		Version:            version(),
	}
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate("herd {{.Version}}\n")
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.AddCommand(
		newPolicyCmd(a, "check", "show what would change, change nothing"),
		newPolicyCmd(a, "apply", "make it so"),
		newWatchCmd(a),
		newDemoCmd(a),
		newInventoryCmd(a),
		newExchangeCmd(a),
		newAgentsCmd(a),
		newMuxCmd(a),
		newDocCmd(a),
		newInitCmd(a),
		newVersionCmd(a),
		newAgentCmd(a),
	)
	// Made now rather than at Execute, so `herd` alone lists them too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strictCompletion(a, root)
	return root
}

// usageError makes cobra's and pflag's usage errors one line, with a
// suggestion for a mistyped command.
func usageError(root *cobra.Command, err error) string {
	msg := strings.TrimSpace(err.Error())
	msg, _, _ = strings.Cut(msg, "\n")
	if name, ok := strings.CutPrefix(msg, "unknown command "); ok {
		name, _, _ = strings.Cut(name, " for ")
		if s := root.SuggestionsFor(strings.Trim(name, `"`)); len(s) > 0 {
			return fmt.Sprintf("unknown command %s (did you mean %s?)", name, strings.Join(s, " or "))
		}
		return fmt.Sprintf("unknown command %s (run 'herd --help' for the list)", name)
	}
	return msg
}

// noArgs is cobra.NoArgs worded for a leaf command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("takes no arguments, got %q", args[0])
	}
	return nil
}

// exactlyOnePolicy is the positional check of check, apply and watch,
// worded as herd always has.
func exactlyOnePolicy(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want exactly one policy file, got %d", len(args))
	}
	return nil
}

// strictCompletion makes `herd completion` without a known shell a usage
// error (cobra's default prints its help and exits 0).
func strictCompletion(a *app, root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown shell %q (want bash, zsh, fish or powershell)", args[0])
			}
			return nil
		}
		c.Run = func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(a.stderr, "herd completion: want a shell: herd completion bash|zsh|fish|powershell")
			a.code = exitUsage
		}
	}
}
