package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/exchange"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/push"
	"github.com/herd-project/herd/internal/transport"
	"github.com/herd-project/herd/internal/ui"
)

type pushFlags struct {
	inventory   sourcesFlag
	vault       vaultFlags
	limit       limitFlags
	limitGroups string
	limitHosts  string
	maxConns    int
	sshConfig   string
	knownHosts  string
	strictKeys  string
	timeout     time.Duration
	persist     time.Duration // --persist; -1 when not given (defaults.toml decides)
	askPass     bool
	// askBecomePass: -K, --ask-become-pass
	askBecomePass bool
	// lockWait is --lock-wait; nil when not given.
	lockWait     *time.Duration
	lockWaitFlag time.Duration
	exchange     exchangeFlags
	// agentDir is --agent-dir-local: builds for other architectures.
	agentDir string
}

// loadDefaults reads ~/.herd/defaults.toml, else /etc/herd/defaults.toml.
// A missing file is fine; a broken one is an error naming the file.
func loadDefaults() (push.Defaults, string, error) {
	var d push.Defaults
	var candidates []string
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".herd", "defaults.toml"))
	}
	candidates = append(candidates, "/etc/herd/defaults.toml")
	for _, path := range candidates {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		md, err := toml.DecodeFile(path, &d)
		if err != nil {
			return d, path, fmt.Errorf("%s: %v", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return d, path, fmt.Errorf("%s: unknown setting %q (known: ssh_user, ssh_key, sudo_user, sudo_password, max_conns, log_path, known_hosts, strict_host_key_checking, lock_wait, persist, agent_dir_local, etcd.endpoints, etcd.cert, etcd.key, etcd.ca, etcd.dir, etcd.cluster)", path, und[0].String())
		}
		if d.AgentDirLocal != "" && !filepath.IsAbs(d.AgentDirLocal) {
			d.AgentDirLocal = filepath.Join(filepath.Dir(path), d.AgentDirLocal)
		}
		if d.Persist != nil && *d.Persist < 0 {
			return d, path, fmt.Errorf("%s: persist must not be negative", settingLine(path, "persist"))
		}
		if d.LockWait != nil && *d.LockWait < 0 {
			return d, path, fmt.Errorf("%s: lock_wait must not be negative", path)
		}
		if v := d.StrictHostKeyChecking; v != "" {
			if d.StrictHostKeyChecking, err = transport.ParseStrictHostKeys(v); err != nil {
				return d, path, fmt.Errorf("%s: strict_host_key_checking: %v", settingLine(path, "strict_host_key_checking"), err)
			}
		}
		return d, path, nil
	}
	return d, "", nil
}

// settingLine is "file:line" of a top-level setting, for messages about
// its value (the TOML decoder reports positions only for syntax errors).
func settingLine(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return path
	}
	for i, ln := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(ln, "="); ok && strings.TrimSpace(k) == key {
			return fmt.Sprintf("%s:%d", path, i+1)
		}
	}
	return path
}

// agentBuilds finds the agent builds a run ships (see herd agents): the
// lean herd-agent beside herd or herd itself, and the builds of dir
// (--agent-dir-local, else agent_dir_local in defaults.toml).
func agentBuilds(dir string, d push.Defaults) (*push.Binary, []*push.Binary, error) {
	self, err := push.DefaultAgent()
	if err != nil {
		return nil, nil, err
	}
	flag := "--agent-dir-local"
	if dir == "" {
		dir, flag = d.AgentDirLocal, "agent_dir_local"
	}
	if dir == "" {
		return self, nil, nil
	}
	more, err := push.LoadAgentDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", flag, err)
	}
	return self, more, nil
}

func transportConfig(pf pushFlags, maxConns int, d push.Defaults) transport.Config {
	c := transport.Config{MaxConns: maxConns, SSHConfigFile: pf.sshConfig, ConnectTimeout: pf.timeout, Persist: max(pf.persist, 0)}
	if pf.persist < 0 && d.Persist != nil {
		c.Persist = *d.Persist
	}
	if pf.askPass {
		c.PasswordPrompt = passwordPrompt("SSH password")
	}
	return c
}

// askBecomePass is push's become password prompt with -K, else nil (a host
// that needs a password then fails saying how to give one).
func askBecomePass(pf pushFlags) func() (string, error) {
	if !pf.askBecomePass {
		return nil
	}
	return func() (string, error) { return readPassword("become password: ") }
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// pushSetup is what check, apply and watch read before contacting hosts.
type pushSetup struct {
	pol      *policy.Policy
	inv      *inventory.Inventory
	limit    push.Limit
	defaults push.Defaults
	maxConns int
	// agent is what targets of the controller's architecture get
	// (push.DefaultAgent); moreAgents are the --agent-dir-local builds.
	agent      *push.Binary
	moreAgents []*push.Binary
}

// setupPush loads the defaults, the policy and the -i inventory and checks
// the limits; on error it has printed why and returns the exit status.
func setupPush(in *interrupts, file string, f policyFlags, pf pushFlags, stdout, stderr io.Writer) (*pushSetup, int) {
	defaults, defaultsFile, err := loadDefaults()
	if err != nil {
		fmt.Fprintf(stderr, "herd: defaults: %v\n", err)
		return nil, exitUsage
	}
	if defaults.MaxConns < 0 {
		fmt.Fprintf(stderr, "herd: defaults: %s: max_conns %d: want at least 1\n", defaultsFile, defaults.MaxConns)
		return nil, exitUsage
	}
	vault := f.vault
	pol, err := policy.Load(file, f.loadOptions(in, stderr))
	if err != nil {
		return nil, policyError(in, err, stderr)
	}
	var inv *inventory.Inventory
	if len(pf.inventory) > 0 {
		if inv, err = loadSources(pf.inventory, file, vault); err != nil {
			fmt.Fprintf(stderr, "herd: %v\n", err)
			return nil, exitUsage
		}
	}
	limit := push.Limit{Groups: splitList(pf.limitGroups), Hosts: splitList(pf.limitHosts)}
	if err := pf.limit.apply(&limit, file, pol, inv); err != nil {
		fmt.Fprintf(stderr, "herd: %v\n", err)
		return nil, exitUsage
	}
	warnings, err := push.CheckHosts(pol, inv, limit)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "herd: warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "herd: %v\n", err)
		return nil, exitUsage
	}
	if pf.limit.listHosts {
		if err := printHostsByRole(pol, inv, limit, stdout); err != nil {
			fmt.Fprintf(stderr, "herd: %v\n", err)
			return nil, exitUsage
		}
		return nil, exitOK
	}
	if pf.knownHosts != "" {
		defaults.KnownHosts = splitList(pf.knownHosts)
	}
	if pf.lockWait != nil {
		defaults.LockWait = pf.lockWait
	}
	if pf.strictKeys != "" {
		if defaults.StrictHostKeyChecking, err = transport.ParseStrictHostKeys(pf.strictKeys); err != nil {
			fmt.Fprintf(stderr, "herd: --strict-host-keys: %v\n", err)
			return nil, exitUsage
		}
	}
	agent, moreAgents, err := agentBuilds(pf.agentDir, defaults)
	if err != nil {
		fmt.Fprintf(stderr, "herd: %v\n", err)
		return nil, exitUsage
	}
	maxConns := pf.maxConns
	if maxConns == 0 {
		maxConns = defaults.MaxConns
	}
	return &pushSetup{pol: pol, inv: inv, limit: limit, defaults: defaults, maxConns: maxConns, agent: agent, moreAgents: moreAgents}, exitOK
}

func runPush(in *interrupts, file string, check bool, f policyFlags, pf pushFlags, stdout, stderr io.Writer) int {
	start := time.Now()
	ps, code := setupPush(in, file, f, pf, stdout, stderr)
	if ps == nil {
		return code
	}
	pol, inv, limit, defaults, maxConns := ps.pol, ps.inv, ps.limit, ps.defaults, ps.maxConns
	out := ui.New(stdout, ui.Options{JSON: f.json, Diff: f.diff, Verbose: f.verbose, Check: check})
	out.MultiHost(true)
	sink := out.Handle
	if defaults.LogPath != "" {
		// The controller's own record of every run: the same events as
		// --json (already free of no_log values), appended.
		logf, err := os.OpenFile(defaults.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "herd: log_path: %v\n", err)
			return exitUsage
		}
		defer logf.Close()
		logOut := ui.New(logf, ui.Options{JSON: true})
		sink = func(e event.Event) { out.Handle(e); logOut.Handle(e) }
		defer func() { logOut.Recap(time.Since(start)) }()
	}
	res, err := push.Run(in.ctx, pol, push.Options{
		Check:         check,
		Parallel:      f.parallel,
		Limit:         limit,
		Inventory:     inv,
		Sink:          sink,
		Defaults:      defaults,
		Transport:     transportConfig(pf, maxConns, defaults),
		AskBecomePass: askBecomePass(pf),
		Stop:          in.stop,
		Exchange:      openExchange(pf, defaults, pol, inv, stderr),
		ExchangeLocks: pf.exchange.etcd != "" || len(defaults.Etcd.Endpoints) > 0,
		Agent:         ps.agent,
		MoreAgents:    ps.moreAgents,
	})
	if code, failed := runFailed(err, stderr); failed {
		return code
	}
	out.Recap(time.Since(start))
	recordRun(file, check, res, stderr)
	if res != nil && res.StoppedAfter != "" {
		fmt.Fprintf(stdout, "stopped after role %q because hosts failed\n", res.StoppedAfter)
	}
	if in.stopped() {
		fmt.Fprintln(stderr, "herd: interrupted")
		return exitInterrupted
	}
	failed, unreachable := res.Failed()
	switch {
	case failed:
		return exitFailed
	case unreachable:
		return exitUnreachable
	}
	return exitOK
}

// openExchange opens the exchange the first time a run needs it. The
// namespace comes from --cluster, defaults.toml, or the inventory's path
// (-i, else the first inventory the policy loads).
func openExchange(pf pushFlags, d push.Defaults, pol *policy.Policy, inv *inventory.Inventory, stderr io.Writer) push.OpenExchange {
	return func(ctx context.Context) (*exchange.Store, error) {
		invPath := ""
		if inv != nil {
			invPath = inv.Source
		} else if invs := policy.Inventories(pol); len(invs) > 0 {
			invPath = invs[0].Source
		}
		if invPath != "" {
			invPath, _ = filepath.Abs(invPath)
		}
		c := pf.exchange.config(d.Etcd, invPath)
		st, err := exchange.Open(ctx, c)
		if err == nil {
			fmt.Fprintf(stderr, "herd: exchange: cluster %s\n", st.Cluster())
		}
		return st, err
	}
}

// runFailed reports an error push.Run or push.Watch returned instead of
// running (policy errors found while planning, before any host changed,
// one line each; a bad set-up), and says whether the command ends there.
// An interrupted run is not one: its hosts report it themselves.
func runFailed(err error, stderr io.Writer) (int, bool) {
	if pe, ok := push.IsPolicyErrors(err); ok {
		for _, e := range pe {
			fmt.Fprintf(stderr, "herd: %s\n", e)
		}
		fmt.Fprintln(stderr, "herd: nothing was changed")
		return exitUsage, true
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "herd: %v\n", err)
		return exitUsage, true
	}
	return 0, false
}
