// Package facts gathers what a policy may know about the machine it
// configures. The agent sends facts in its hello; in local mode the
// controller gathers them itself. Gathering is cheap (a few file reads, no
// commands) so it costs nothing on the critical path.
package facts

import (
	"bufio"
	"bytes"
	"os"
	"os/user"
	"runtime"
	"strings"
)

// Facts describe a target machine.
type Facts struct {
	Hostname string            `json:"hostname"`
	OSFamily string            `json:"os_family"` // e.g. "debian", "redhat", "alpine"
	Distro   string            `json:"distro"`    // /etc/os-release ID, e.g. "debian"
	Version  string            `json:"version"`   // /etc/os-release VERSION_ID
	Arch     string            `json:"arch"`      // GOARCH naming, e.g. "amd64"
	User     string            `json:"user"`
	UID      int               `json:"uid"`
	Home     string            `json:"home"`
	Env      map[string]string `json:"env"`
	Kernel   string            `json:"kernel"`
	CPUs     int               `json:"cpus"`

	Interfaces     map[string]Interface `json:"interfaces"`
	DefaultIPv4    Route                `json:"default_ipv4"`
	MemTotalMB     int                  `json:"memtotal_mb"`
	Mounts         []Mount              `json:"mounts"`
	InitSystem     string               `json:"init_system"`    // "systemd", "openrc", "sysvinit", "unknown"
	PkgMgr         string               `json:"pkg_mgr"`        // "apt", "dnf", "yum", "apk", "zypper", "pacman", "unknown"
	Virtualization string               `json:"virtualization"` // "kvm", "vmware", "docker", ..., "none", "unknown"
}

// Gather reads facts of the running machine.
func Gather() Facts {
	f := Facts{Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), UID: os.Getuid()}
	f.Hostname, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		f.User, f.Home = u.Username, u.HomeDir
	}
	if f.Home == "" {
		f.Home = os.Getenv("HOME")
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		osr := ParseOSRelease(b)
		f.Distro, f.Version = osr["ID"], osr["VERSION_ID"]
		f.OSFamily = family(osr["ID"], osr["ID_LIKE"])
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		f.Kernel = strings.TrimSpace(string(b))
	}
	f.gatherSystem()
	f.Env = map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if safeEnv(k) {
			f.Env[k] = v
		}
	}
	return f
}

// safeEnv keeps variables that are useful in policies and unlikely to be
// secrets: facts travel in events and may be printed.
func safeEnv(k string) bool {
	switch k {
	case "HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG", "LC_ALL", "TERM", "TZ", "PWD":
		return true
	}
	return false
}

// ParseOSRelease parses the KEY=value lines of os-release(5).
func ParseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		out[k] = strings.Trim(v, `"'`)
	}
	return out
}

func family(id, like string) string {
	for _, w := range append([]string{id}, strings.Fields(like)...) {
		switch w {
		case "debian", "ubuntu":
			return "debian"
		case "rhel", "fedora", "centos", "rocky", "almalinux":
			return "redhat"
		case "alpine":
			return "alpine"
		case "arch":
			return "arch"
		case "suse", "opensuse", "sles":
			return "suse"
		}
	}
	if id == "" {
		return "unknown"
	}
	return id
}
