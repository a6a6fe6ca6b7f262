package push

import (
	"fmt"
	"time"

	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/transport"
)

// Defaults come from ~/.herd/defaults.toml or /etc/herd/defaults.toml; the
// role and then the inventory override them.
type Defaults struct {
	SSHUser    string   `toml:"ssh_user"`
	KeyFile    string   `toml:"ssh_key"`
	SudoUser   string   `toml:"sudo_user"`
	MaxConns   int      `toml:"max_conns"`
	LogPath    string   `toml:"log_path"`
	KnownHosts []string `toml:"known_hosts"`
	// StrictHostKeyChecking is what to do with a host key known_hosts does
	// not hold (transport.Target.StrictHostKeys): "yes" refuses it,
	// "accept-new" records it; "" leaves it to ssh_config, else "yes".
	StrictHostKeyChecking string `toml:"strict_host_key_checking"`
	// SudoPassword is the become password for every host without its own
	// (herd_sudo_password); keep the file private.
	SudoPassword string `toml:"sudo_password"`
	// LockWait is how long a run waits for another run's lock on a host
	// before failing that host (nil: wire.DefaultLockWait).
	LockWait *time.Duration `toml:"lock_wait"`
	// Persist is --persist's default: how long a host's SSH connection
	// stays open, idle, after a run (transport.Config.Persist).
	Persist *time.Duration `toml:"persist"`
	// Etcd chooses the exchange's store ([etcd] table).
	Etcd EtcdDefaults `toml:"etcd"`
	// AgentDirLocal is --agent-dir-local's default: a directory of agent
	// builds for other architectures (LoadAgentDir); relative to the
	// defaults file.
	AgentDirLocal string `toml:"agent_dir_local"`
}

// EtcdDefaults is the [etcd] table of defaults.toml: an external cluster's
// endpoints and TLS client files, or the embedded member's directory, and
// the namespace.
type EtcdDefaults struct {
	Endpoints []string `toml:"endpoints"`
	CertFile  string   `toml:"cert"`
	KeyFile   string   `toml:"key"`
	CAFile    string   `toml:"ca"`
	DataDir   string   `toml:"dir"`
	Cluster   string   `toml:"cluster"`
}

// target turns an inventory host into a transport target. Precedence for
// each setting: inventory magic var, then the role, then user defaults.
func (r *runner) target(role *policy.Role, h *inventory.Host, depth int) (transport.Target, error) {
	if depth > 8 {
		return transport.Target{}, fmt.Errorf("%s: herd_via chain is longer than 8 hops (a loop?)", h.Name)
	}
	c := h.Conn
	t := transport.Target{
		Name:           h.Name,
		Address:        c.Address,
		Port:           c.Port,
		User:           first(c.User, role.SSHUser, r.o.Defaults.SSHUser),
		Password:       c.Password,
		CheckHostKeys:  role.CheckHostKeys,
		StrictHostKeys: r.o.Defaults.StrictHostKeyChecking,
		KnownHosts:     r.o.Defaults.KnownHosts,
	}
	if k := first(c.KeyFile, r.o.Defaults.KeyFile); k != "" {
		t.KeyFiles = []string{k}
	}
	if c.Via != "" {
		parent, ok := r.lookupHost(c.Via)
		if !ok {
			return transport.Target{}, fmt.Errorf("%s: herd_via names %q, which is not in the inventory", h.Name, c.Via)
		}
		pt, err := r.target(role, parent, depth+1)
		if err != nil {
			return transport.Target{}, err
		}
		t.ProxyJump = &pt
	}
	return t, nil
}

// lookupHost finds a host by name in any inventory the run knows, for via
// chains whose parents are not themselves targets of the role.
func (r *runner) lookupHost(name string) (*inventory.Host, bool) {
	for _, inv := range r.inventories() {
		if h, ok := inv.Host(name); ok {
			return h, true
		}
	}
	return nil, false
}

func (r *runner) inventories() []*inventory.Inventory {
	var out []*inventory.Inventory
	if r.o.Inventory != nil {
		out = append(out, r.o.Inventory)
	}
	return append(out, policy.Inventories(r.pol)...)
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// checkVia refuses, before anything is contacted, a herd_via chain of any
// role host that loops or names a host no inventory of the run has: either
// would otherwise fail only when reached, or wait for itself.
func (r *runner) checkVia(roleHosts [][]*inventory.Host) error {
	var all []*inventory.Host
	for _, hs := range roleHosts {
		all = append(all, hs...)
	}
	return inventory.CheckVia(all, r.lookupHost, false)
}
