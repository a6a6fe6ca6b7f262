package main

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/herd-project/herd/internal/agent"
	"github.com/herd-project/herd/internal/engine"
	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/ui"
	"github.com/herd-project/herd/internal/wire"
)

type policyFlags struct {
	local    bool
	diff     bool
	json     bool
	verbose  bool
	parallel int
	stateDir string
	vars     varsFlag
	maxSteps uint64
	lockWait time.Duration // --lock-wait, for the run lock of --local
	// vault decrypts Ansible Vault values in inventories (nil: no password given).
	vault *inventory.Vault
}

func (f *policyFlags) register(fs *pflag.FlagSet) {
	f.vars = varsFlag{}
	fs.BoolVar(&f.local, "local", false, "apply to this machine instead of the inventory's hosts")
	fs.BoolVar(&f.diff, "diff", false, "show unified diffs of file changes")
	fs.BoolVar(&f.json, "json", false, "print one JSON event per line")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "print every event")
	fs.IntVar(&f.parallel, "parallel", 4, "resources run at once on a host")
	fs.StringVar(&f.stateDir, "state-dir", "", "herd state in --local mode (default ~/.herd/state; agents always use ~/.herd/state)")
	fs.VarP(f.vars, "extra-vars", "e", "extra var key=value (repeatable), overrides inventory vars")
	fs.Uint64Var(&f.maxSteps, "max-steps", policy.DefaultMaxSteps, "Starlark steps one evaluation may take (top level, a role for a host, a hook) before it fails as a runaway")
}

// newPolicyCmd is `herd check` and `herd apply`: one command, two modes.
func newPolicyCmd(a *app, mode, short string) *cobra.Command {
	var f policyFlags
	var pf pushFlags
	cmd := &cobra.Command{
		Use:               mode + " POLICY",
		Short:             short,
		Args:              exactlyOnePolicy,
		ValidArgsFunction: completePolicyFile,
		Run: func(cmd *cobra.Command, args []string) {
			in, end := watchInterrupts(a.stderr)
			defer end()
			a.code = runPolicy(in, cmd, args[0], f, pf, a.stdout, a.stderr)
		},
	}
	f.register(cmd.Flags())
	pf.register(cmd)
	return cmd
}

// loadOptions are the policy options every mode shares.
func (f *policyFlags) loadOptions(in *interrupts, stderr io.Writer) policy.LoadOptions {
	return policy.LoadOptions{Vars: f.vars, Stdout: stderr, MaxSteps: f.maxSteps, Stop: in.stop, Vault: f.vault}
}

// policyError reports a policy error: exit 2, or 4 when the evaluation was
// cut short by an interrupt.
func policyError(in *interrupts, err error, stderr io.Writer) int {
	fmt.Fprintf(stderr, "herd: %v\n", err)
	if in.stopped() {
		return exitInterrupted
	}
	return exitUsage
}

// runPolicy checks the flags cobra could not and runs check or apply.
func runPolicy(in *interrupts, cmd *cobra.Command, file string, f policyFlags, pf pushFlags, stdout, stderr io.Writer) int {
	name := cmd.CommandPath()
	if err := pf.finish(cmd.Flags(), &f); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitUsage
	}
	check := cmd.Name() == "check"
	if !f.local {
		return runPush(in, file, check, f, pf, stdout, stderr)
	}
	return runLocal(in, file, check, f, stdout, stderr)
}

// runLocal evaluates every role for this machine and runs the plans in
// process: local mode is push mode without the wire.
func runLocal(in *interrupts, file string, check bool, f policyFlags, stdout, stderr io.Writer) int {
	start := time.Now()
	ctx := in.ctx
	pol, err := policy.Load(file, f.loadOptions(in, stderr))
	if err != nil {
		return policyError(in, err, stderr)
	}
	stateDir := f.stateDir
	if stateDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			fmt.Fprintf(stderr, "herd: no home directory for state: %v (use --state-dir)\n", err)
			return exitUsage
		}
		stateDir = filepath.Join(home, ".herd", "state")
	}
	if !check {
		// The same run lock as agents take: a local run and a push run
		// to this machine as the same user must not interleave.
		lock, err := agent.TakeRunLock(ctx, stateDir, localLock(f.lockWait), nil)
		if err != nil {
			fmt.Fprintf(stderr, "herd: %v\n", err)
			return exitFailed
		}
		defer lock.Release()
	}
	host := policy.Host{Name: "localhost", Vars: map[string]any(f.vars), Facts: facts.Gather()}
	out := ui.New(stdout, ui.Options{JSON: f.json, Diff: f.diff, Verbose: f.verbose, Check: check})
	// Every role is planned before the first one changes anything, so a
	// policy error in a later role leaves the machine untouched.
	plans := make([]*plan.Plan, len(pol.Roles))
	sources := make([]fileserver.Sources, len(pol.Roles))
	for i, role := range pol.Roles {
		if plans[i], sources[i], err = pol.PlanWithSources(role, host); err != nil {
			return policyError(in, err, stderr)
		}
	}
	failed := false
	for i, role := range pol.Roles {
		p := plans[i]
		out.Handle(event.Event{Type: event.RoleStart, Role: role.Name, Msg: host.Name})
		res, err := engine.Run(ctx, p, engine.Options{
			Check: check, Parallel: f.parallel, StateDir: stateDir,
			Sink: out.Handle, Host: host.Name, Role: role.Name, Stop: in.stop,
			// The plan never crosses a wire here: large files and trees
			// are read straight from their controller paths, hash-checked.
			Fetch: fileserver.NewIndex(sources[i], nil).Fetch,
		})
		if err != nil {
			fmt.Fprintf(stderr, "herd: %v\n", err)
			return exitUsage
		}
		if res.Failed {
			// OpsMop semantics: a failed role stops the run.
			failed = true
			break
		}
		if in.stopped() {
			break
		}
	}
	out.Recap(time.Since(start))
	switch {
	case in.stopped():
		return exitInterrupted
	case failed:
		return exitFailed
	}
	return exitOK
}

// localLock describes a --local run to the run lock.
func localLock(wait time.Duration) *wire.RunLock {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return &wire.RunLock{Wait: wait, User: name, Host: host, Pid: os.Getpid()}
}

// register adds the flags of push mode (check, apply, watch) to cmd.
func (pf *pushFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.VarP(&pf.inventory, "inventory", "i", "inventory file or directory for roles that name no hosts (TOML, Ansible INI/YAML, or an executable); repeatable")
	pf.vault.register(fs)
	pf.limit.register(cmd, &pf.inventory)
	fs.StringVar(&pf.limitGroups, "limit-groups", "", "only hosts in groups matching these patterns (comma-separated fnmatch)")
	fs.StringVar(&pf.limitHosts, "limit-hosts", "", "only hosts matching these patterns (comma-separated fnmatch)")
	fs.IntVar(&pf.maxConns, "max-conns", 0, "connection set-ups at once (default 16)")
	fs.StringVar(&pf.sshConfig, "ssh-config", "", `ssh config file (default ~/.ssh/config, "none" to ignore)`)
	fs.StringVar(&pf.knownHosts, "known-hosts", "", "known_hosts files, comma-separated (default ~/.ssh/known_hosts)")
	fs.StringVar(&pf.strictKeys, "strict-host-keys", "", `unknown host keys: "yes" refuses them, "accept-new" records them in the first known_hosts file; a changed key is always refused (default: defaults.toml, ssh_config StrictHostKeyChecking, else yes)`)
	fs.BoolVarP(&pf.askPass, "ask-pass", "k", false, "ask once for an SSH password, used where key auth fails")
	fs.BoolVarP(&pf.askBecomePass, "ask-become-pass", "K", false, "ask once for the sudo/su/doas password, used where one is needed and none is set")
	fs.StringVar(&pf.agentDir, "agent-dir-local", "", "directory of agent builds for other architectures: herd-linux-<arch> files and their SHA256SUMS (see herd agents)")
	fs.DurationVar(&pf.timeout, "connect-timeout", 10*time.Second, "SSH connect timeout per host")
	fs.DurationVar(&pf.persist, "persist", 0, "keep each host's SSH connection open this long after the run, idle, for the next run to reuse (like ControlPersist; 0 = off, or persist in defaults.toml; see herd mux)")
	pf.exchange.register(fs)
	fs.DurationVar(&pf.lockWaitFlag, "lock-wait", wire.DefaultLockWait, "how long to wait for another run's lock on a host before failing it (or lock_wait in defaults.toml)")
	cmd.RegisterFlagCompletionFunc("strict-host-keys", cobra.FixedCompletions([]string{"yes", "accept-new"}, cobra.ShellCompDirectiveNoFileComp))
}

// finish checks the values pflag accepts but herd cannot honour and reads
// the vault passwords; the error is one line naming the flag.
func (pf *pushFlags) finish(fs *pflag.FlagSet, f *policyFlags) error {
	if fs.Changed("lock-wait") {
		pf.lockWait = &pf.lockWaitFlag
	}
	if pf.persist < 0 {
		return fmt.Errorf("--persist must not be negative, got %s", pf.persist)
	}
	if !fs.Changed("persist") {
		pf.persist = -1 // defaults.toml decides
	}
	if pf.lockWaitFlag < 0 {
		return fmt.Errorf("--lock-wait must not be negative, got %s", pf.lockWaitFlag)
	}
	f.lockWait = pf.lockWaitFlag
	if err := validateFlags(fs, *f, *pf); err != nil {
		return err
	}
	var err error
	f.vault, err = pf.vault.vault()
	return err
}
