// Package lab makes real Linux test hosts on one machine, so herd's
// end-to-end tests run against real OpenSSH servers and real sudo, su and
// doas, in real network topologies, without containers or VMs.
//
// Each host is pid 1 of its own network, mount, UTS, IPC and PID namespaces,
// with an overlay of / as its root (a private upper layer per host), its own
// host key and its own sshd. Flat hosts have a veth link to the controller;
// rack hosts are linked only to their bastion (or rack top), which does not
// forward. Everything a lab makes is named after it and recorded in
// /tmp/herd-lab/<name>/state.json, so Down, or the next Up after a crash,
// removes all of it.
//
// Labs need root, sshd, sudo, ip, nsenter and overlayfs; Available says why
// not. Tests call Shared (one lab per test binary) or Up, and skip when the
// machine cannot host a lab.
package lab

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// BaseDir holds one directory per lab.
const BaseDir = "/tmp/herd-lab"

// shmBase holds the hosts' overlay layers when BaseDir is itself on
// overlayfs (a container), which cannot hold an upper layer.
const shmBase = "/dev/shm/herd-lab"

// layerDir is where the hosts of lab name keep their upper and work dirs.
func layerDir(name string) string {
	var fs unix.Statfs_t
	if unix.Statfs(BaseDir, &fs) == nil && fs.Type == unix.OVERLAYFS_SUPER_MAGIC {
		return filepath.Join(shmBase, name)
	}
	return filepath.Join(BaseDir, name)
}

// Spec describes the hosts of a lab.
type Spec struct {
	// Name identifies the lab: lower-case letters and digits, at most 12. It
	// names the lab directory and every namespace the lab makes.
	Name string
	// Flat is the number of hosts directly reachable from the controller
	// (named host1..hostN).
	Flat int
	// Bastion, when set, adds a host "bastion" reachable from the controller
	// and rack hosts reachable only through it.
	Bastion *BastionSpec
	// Persistent labs outlive the process that made them (herd-lab up).
	// Other labs die with their process and are cleaned by the next Up.
	Persistent bool
	// Log, when set, hears how long each phase of Up took (large labs).
	Log func(format string, args ...any)
}

// BastionSpec describes the hosts behind the bastion.
type BastionSpec struct {
	// RackTop adds a host "racktop" behind the bastion and puts the rack
	// hosts behind it (controller → bastion → racktop → rackN).
	RackTop bool
	// RackHosts is the number of hosts rack1..rackN.
	RackHosts int
}

// Passwords are generated per lab; tests get them from here, never from
// the source tree.
type Passwords struct {
	DeployPW string `json:"deploy_pw"` // password of user deploy-pw (sudo and doas ask for it)
	Root     string `json:"root"`      // root's password (su asks for it)
}

// Users made on every host besides root. All accept the lab key.
const (
	UserDeploy   = "deploy"    // passwordless sudo and doas
	UserDeployPW = "deploy-pw" // sudo and doas require its password
)

// Lab is a running set of hosts.
type Lab struct {
	Name       string
	Dir        string // /tmp/herd-lab/<name>
	KeyFile    string // private key (ed25519) accepted by every user on every host
	KnownHosts string // known_hosts listing every host by name and address
	SSHConfig  string // ssh_config with one entry per host name, ProxyJump for rack hosts
	Passwords  Passwords
	Hosts      []*Host

	index   int
	logf    func(format string, args ...any)
	upStart time.Time

	mu      sync.Mutex
	down    bool
	toxi    *toxiproxy.ApiServer
	proxies []*toxiproxy.Proxy
}

var nameRE = regexp.MustCompile(`^[a-z0-9]{1,12}$`)

// Host returns the host with that name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Up makes the hosts of s and returns when every sshd accepts connections.
// On error, everything already made is removed again.
func Up(ctx context.Context, s Spec) (*Lab, error) {
	if ok, why := Available(); !ok {
		return nil, errors.New("lab: cannot make hosts here: " + why)
	}
	if !nameRE.MatchString(s.Name) {
		return nil, fmt.Errorf("lab: name %q: want 1-12 lower-case letters or digits", s.Name)
	}
	hosts, err := layout(s)
	if err != nil {
		return nil, err
	}
	l := &Lab{Name: s.Name, Dir: filepath.Join(BaseDir, s.Name), Hosts: hosts}
	l.KeyFile = filepath.Join(l.Dir, "id_ed25519")
	l.KnownHosts = filepath.Join(l.Dir, "known_hosts")
	l.SSHConfig = filepath.Join(l.Dir, "ssh_config")
	for _, h := range hosts {
		h.lab = l
	}
	st, err := reserve(l, s.Persistent)
	if err != nil {
		return nil, err
	}
	l.logf, l.upStart = s.Log, time.Now()
	if err := l.build(ctx, st, s.Persistent); err != nil {
		if derr := l.Down(); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, fmt.Errorf("lab %s: up: %w", s.Name, err)
	}
	return l, nil
}

// layout names the hosts of s and links each to its parent. Uplink numbers
// index the /30 of each host's link, so they are unique within a lab.
func layout(s Spec) ([]*Host, error) {
	n := s.Flat
	if s.Bastion != nil {
		n += 1 + s.Bastion.RackHosts
		if s.Bastion.RackTop {
			n++
		}
	}
	if s.Flat < 0 || n < 1 || n > MaxHosts {
		return nil, fmt.Errorf("lab %s: want 1 to %d hosts, spec asks for %d", s.Name, MaxHosts, n)
	}
	var hosts []*Host
	add := func(name string, via *Host) *Host {
		h := &Host{Name: name, Port: 22, Via: via, uplink: len(hosts) + 1}
		hosts = append(hosts, h)
		return h
	}
	for i := 1; i <= s.Flat; i++ {
		add(fmt.Sprintf("host%d", i), nil)
	}
	if b := s.Bastion; b != nil {
		parent := add("bastion", nil)
		if b.RackTop {
			parent = add("racktop", parent)
		}
		for i := 1; i <= b.RackHosts; i++ {
			add(fmt.Sprintf("rack%d", i), parent)
		}
	}
	return hosts, nil
}

// build does the work of Up once the lab's name and index are reserved.
func (l *Lab) build(ctx context.Context, st *state, persistent bool) error {
	l.index = st.Index
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	if err := writePrivateKey(l.KeyFile, priv, "herd-lab-"+l.Name); err != nil {
		return err
	}
	l.Passwords = Passwords{DeployPW: newPassword(), Root: newPassword()}
	st.Passwords = l.Passwords
	accounts, err := makeAccounts(l.Passwords)
	if err != nil {
		return err
	}
	userKey, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	for _, h := range l.Hosts {
		h.Addr = l.hostAddr(h.uplink)
		h.Netns = fmt.Sprintf("herd-%s-%s", l.Name, h.Name)
		h.Upper = filepath.Join(layerDir(l.Name), h.Name, "upper")
	}
	if err := raiseLimits(len(l.Hosts)); err != nil {
		return err
	}
	if err := addUnreachableRoute(l.index); err != nil {
		return err
	}
	// Hosts start in parallel: an init, a few ip commands and file writes.
	if err := l.eachHost(ctx, func(h *Host) error {
		if err := h.start(ctx, persistent); err != nil {
			return err
		}
		return h.populate(accounts, userKey)
	}); err != nil {
		return err
	}
	l.phase("hosts started and populated")
	// Record pids now, so a failure below still lets Down find them.
	st.fill(l)
	if err := st.save(); err != nil {
		return err
	}
	if err := l.link(ctx); err != nil {
		return err
	}
	l.phase("linked")
	if err := l.eachHost(ctx, func(h *Host) error { return h.StartSSHD() }); err != nil {
		return err
	}
	l.phase("sshd listening")
	if err := l.writeClientFiles(); err != nil {
		return err
	}
	return nil
}

// phase logs how long Up has taken so far, when asked to.
func (l *Lab) phase(what string) {
	if l.logf != nil {
		l.logf("lab %s: %d host(s) %s after %v", l.Name, len(l.Hosts), what, time.Since(l.upStart).Round(time.Millisecond))
	}
}

// setupWorkers bounds the hosts set up at once. Starting all of them at
// once is fastest for a handful, but 300 inits, nsenters and sshds
// started together on 2 CPUs took minutes and ran past their own 10 s
// bounds; a bounded pool keeps each step's wait about its own work.
var setupWorkers = max(8, 4*runtime.NumCPU())

// eachHost runs f for every host, setupWorkers at a time, and joins the
// errors.
func (l *Lab) eachHost(ctx context.Context, f func(*Host) error) error {
	errs := make([]error, len(l.Hosts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, setupWorkers)
	for i, h := range l.Hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := ctx.Err(); err != nil {
				errs[i] = err
				return
			}
			if err := f(h); err != nil {
				errs[i] = fmt.Errorf("host %s: %w", h.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// MaxHosts is the most hosts one lab holds: one /30 per uplink in the lab's
// /16, less the first (network .0.0). The machine's memory and process
// table run out before that (see raiseLimits).
const MaxHosts = 4000

// hostAddr is the host side of uplink u, the second usable address of a
// /30 of 10.<200+index>.0.0/16, its parent side being the first: uplink 1
// is 10.<200+index>.1.2 (parent .1.1), uplink 2 .1.6 (.1.5), uplink 64
// .2.2. Every lab has its own /16, so labs never collide.
func (l *Lab) hostAddr(u int) string { return uplinkAddr(l.index, u, 2) }

func (l *Lab) parentAddr(u int) string { return uplinkAddr(l.index, u, 1) }

func uplinkAddr(index, u, last int) string {
	base := 4 * (u + 63) // 10.x.0.0/24 left unused; host1 keeps 10.x.1.2
	return fmt.Sprintf("10.%d.%d.%d", 200+index, base/256, base%256+last)
}

// Down removes everything the lab made: processes, namespaces, links,
// routes, mounts and its directory. Calling it again does nothing.
func (l *Lab) Down() error {
	l.mu.Lock()
	if l.down {
		l.mu.Unlock()
		return nil
	}
	l.down = true
	for _, p := range l.proxies {
		p.Stop()
	}
	l.proxies = nil
	l.mu.Unlock()
	unlock, err := lockBase()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := loadState(l.Name)
	if errors.Is(err, os.ErrNotExist) {
		return nil // state goes last: the lab is down already
	}
	if err != nil {
		// Corrupt: names still say what to clean, but the address index
		// may be another lab's by now, so links and routes are left.
		st = &state{Name: l.Name, Index: -1}
	}
	// Processes this handle started but state does not list yet.
	for _, h := range l.Hosts {
		if h.pid > 0 && !st.hasPid(h.pid) {
			st.Hosts = append(st.Hosts, hostState{Name: h.Name, InitPid: h.pid, InitStart: h.start0})
		}
	}
	return teardown(st)
}

// waitFor polls cond every few milliseconds until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
