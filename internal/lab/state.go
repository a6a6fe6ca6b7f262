package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// state is what a lab records about itself in <dir>/state.json, so that
// Down, herd-lab status and the next Up after a crash can find everything.
type state struct {
	Name       string      `json:"name"`
	Index      int         `json:"index"` // the lab uses 10.<200+index>.0.0/16
	Owner      int         `json:"owner"` // pid of the process that made a non-persistent lab
	OwnerStart uint64      `json:"owner_start"`
	Persistent bool        `json:"persistent"`
	Created    time.Time   `json:"created"`
	Passwords  Passwords   `json:"passwords"`
	Hosts      []hostState `json:"hosts"`
}

type hostState struct {
	Name      string `json:"name"`
	Addr      string `json:"addr"`
	Via       string `json:"via,omitempty"`
	Uplink    int    `json:"uplink"`
	Netns     string `json:"netns"`
	InitPid   int    `json:"init_pid"`
	InitStart uint64 `json:"init_start"`
	HostKey   string `json:"host_key"`
}

const maxLabs = 55 // second octets 200..254

func statePath(name string) string { return filepath.Join(BaseDir, name, "state.json") }

func loadState(name string) (*state, error) {
	b, err := os.ReadFile(statePath(name))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lab %s: %s: %w", name, statePath(name), err)
	}
	return &st, nil
}

// save writes the state atomically; it holds the lab passwords, so 0600.
func (st *state) save() error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(statePath(st.Name), append(b, '\n'), 0o600)
}

func (st *state) fill(l *Lab) {
	st.Hosts = st.Hosts[:0]
	for _, h := range l.Hosts {
		hs := hostState{Name: h.Name, Addr: h.Addr, Uplink: h.uplink, Netns: h.Netns, InitPid: h.pid, InitStart: h.start0}
		if h.Via != nil {
			hs.Via = h.Via.Name
		}
		if h.HostKey != nil {
			hs.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(h.HostKey)))
		}
		st.Hosts = append(st.Hosts, hs)
	}
}

// inUse reports whether the lab may still be used: its maker runs, or, for
// a persistent lab, one of its hosts does (after a reboot none does).
func (st *state) inUse() bool {
	if !st.Persistent {
		return processAlive(st.Owner, st.OwnerStart)
	}
	for _, h := range st.Hosts {
		if processAlive(h.InitPid, h.InitStart) {
			return true
		}
	}
	// A persistent lab still coming up has recorded no host yet.
	return len(st.Hosts) == 0 && time.Since(st.Created) < 2*time.Minute
}

func (st *state) hasPid(pid int) bool {
	for _, h := range st.Hosts {
		if h.InitPid == pid {
			return true
		}
	}
	return false
}

// lockBase serialises lab creation and removal across processes: index
// allocation and stale-lab cleanup must not race.
func lockBase() (unlock func(), err error) {
	if err := os.MkdirAll(BaseDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(BaseDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// reserve cleans up labs whose process died, takes the lab's name and a
// free index, and records them before anything else is made.
func reserve(l *Lab, persistent bool) (*state, error) {
	unlock, err := lockBase()
	if err != nil {
		return nil, err
	}
	defer unlock()
	used := map[int]bool{}
	names, err := List()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		st, err := loadState(name)
		if err != nil {
			// No readable state: whatever it named is orphaned.
			st = &state{Name: name, Index: -1}
		} else if name != l.Name && st.inUse() {
			used[st.Index] = true
			continue
		} else if name == l.Name && !st.Persistent && st.inUse() {
			return nil, fmt.Errorf("lab %s: already up, made by running process %d; pick another name", name, st.Owner)
		}
		if err := teardown(st); err != nil {
			return nil, fmt.Errorf("cleaning lab %s left by an earlier run: %w", name, err)
		}
	}
	index := -1
	for i := 0; i < maxLabs; i++ {
		if !used[i] {
			index = i
			break
		}
	}
	if index < 0 {
		return nil, fmt.Errorf("lab %s: all %d lab address ranges are in use; run herd-lab down", l.Name, maxLabs)
	}
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, err
	}
	st := &state{Name: l.Name, Index: index, Persistent: persistent, Created: time.Now().UTC()}
	if !persistent {
		st.Owner = os.Getpid()
		st.OwnerStart = startTime(st.Owner)
	}
	return st, st.save()
}

// List returns the names of the labs that have a directory under BaseDir.
func List() ([]string, error) {
	entries, err := os.ReadDir(BaseDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && nameRE.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Open returns a handle on a lab made earlier, possibly by another process
// (herd-lab status and down use it). Latency proxies of other processes are
// not visible.
func Open(name string) (*Lab, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("lab: name %q: want 1-12 lower-case letters or digits", name)
	}
	st, err := loadState(name)
	if err != nil {
		return nil, fmt.Errorf("lab %s: not found: %w", name, err)
	}
	l := &Lab{Name: name, Dir: filepath.Join(BaseDir, name), index: st.Index, Passwords: st.Passwords}
	l.KeyFile = filepath.Join(l.Dir, "id_ed25519")
	l.KnownHosts = filepath.Join(l.Dir, "known_hosts")
	l.SSHConfig = filepath.Join(l.Dir, "ssh_config")
	byName := map[string]*Host{}
	for _, hs := range st.Hosts {
		h := &Host{Name: hs.Name, Addr: hs.Addr, Port: 22, Netns: hs.Netns, Upper: filepath.Join(layerDir(name), hs.Name, "upper"),
			lab: l, uplink: hs.Uplink, pid: hs.InitPid, start0: hs.InitStart}
		if hs.HostKey != "" {
			if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hs.HostKey)); err == nil {
				h.HostKey = k
			}
		}
		h.Via = byName[hs.Via]
		byName[h.Name] = h
		l.Hosts = append(l.Hosts, h)
	}
	return l, nil
}

// Alive reports whether every host's init still runs.
func (l *Lab) Alive() bool {
	for _, h := range l.Hosts {
		if !processAlive(h.pid, h.start0) {
			return false
		}
	}
	return len(l.Hosts) > 0
}

// teardown removes everything st names, and everything named after the lab
// that st may have missed (a crash between making and recording).
func teardown(st *state) error {
	var errs []error
	netnsPrefix := "herd-" + st.Name + "-"
	nsInodes := map[uint64]bool{}
	var netnsNames []string
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), netnsPrefix) {
				netnsNames = append(netnsNames, e.Name())
				var s unix.Stat_t
				if unix.Stat(filepath.Join("/run/netns", e.Name()), &s) == nil {
					nsInodes[s.Ino] = true
				}
			}
		}
	}
	// Killing a host's init kills every process of its pid namespace, which
	// also drops its mount namespace and so the overlay and other mounts.
	var victims []int
	for _, h := range st.Hosts {
		if h.InitPid > 0 && processAlive(h.InitPid, h.InitStart) {
			victims = append(victims, h.InitPid)
		}
	}
	// Anything else left in the lab's network namespaces (a stray
	// `ip netns exec`) goes too.
	victims = append(victims, pidsInNetns(nsInodes)...)
	for _, pid := range victims {
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
			errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
		}
	}
	for _, pid := range victims {
		if !waitFor(5*time.Second, func() bool { return !running(pid) }) {
			errs = append(errs, fmt.Errorf("process %d did not exit after SIGKILL", pid))
		}
	}
	if st.Index >= 0 {
		prefix := fmt.Sprintf("hl%du", st.Index)
		if links, err := os.ReadDir("/sys/class/net"); err == nil {
			for _, ln := range links {
				if strings.HasPrefix(ln.Name(), prefix) {
					if out, err := run("ip", "link", "del", ln.Name()); err != nil && linkExists(ln.Name()) {
						errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", ln.Name(), err, out))
					}
				}
			}
		}
		if err := delUnreachableRoute(st.Index); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range netnsNames {
		if out, err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, out))
		}
	}
	dir := filepath.Join(BaseDir, st.Name)
	// The lab mounts nothing in the controller's namespace; if something is
	// mounted below the lab directory anyway, detach it before removing.
	for _, mp := range mountsUnder(dir) {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	if len(errs) == 0 && nameRE.MatchString(st.Name) {
		// The layers first: the state in dir must outlive everything.
		if alt := filepath.Join(shmBase, st.Name); alt != dir {
			if err := os.RemoveAll(alt); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab %s: down: %w", st.Name, errors.Join(errs...))
	}
	return nil
}

func linkExists(name string) bool {
	_, err := os.Lstat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// mountsUnder lists mount points at or below dir in this mount namespace,
// deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return mps
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
