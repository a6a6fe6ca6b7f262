package facts

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Interface is one network interface and its addresses (CIDR form,
// "10.0.0.2/24").
type Interface struct {
	MAC  string   `json:"mac"`
	Up   bool     `json:"up"`
	IPv4 []string `json:"ipv4"`
	IPv6 []string `json:"ipv6"`
}

// Route is the default IPv4 route: its interface, that interface's first
// IPv4 address (no prefix) and the gateway. Empty without a default route.
type Route struct {
	Interface string `json:"interface"`
	Address   string `json:"address"`
	Gateway   string `json:"gateway"`
}

// Mount is one mounted filesystem (pseudo filesystems left out).
type Mount struct {
	Mount  string `json:"mount"`
	Device string `json:"device"`
	FSType string `json:"fstype"`
}

// gatherSystem fills the network, memory, mount, init and package facts.
// Everything comes from /proc, /sys and one netlink dump: no commands.
func (f *Facts) gatherSystem() {
	f.Interfaces = interfaces()
	if b, err := os.ReadFile("/proc/net/route"); err == nil {
		f.DefaultIPv4 = defaultRoute(b, f.Interfaces)
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f.MemTotalMB = memTotalMB(b)
	}
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		f.Mounts = mounts(b)
	}
	f.InitSystem = initSystem(exists)
	f.PkgMgr = pkgMgr(exists)
	f.Virtualization = virtualization(exists, readTrim)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func readTrim(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func interfaces() map[string]Interface {
	out := map[string]Interface{}
	ifs, err := net.Interfaces()
	if err != nil {
		return out
	}
	for _, ifc := range ifs {
		i := Interface{MAC: ifc.HardwareAddr.String(), Up: ifc.Flags&net.FlagUp != 0, IPv4: []string{}, IPv6: []string{}}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ipn.IP.To4() != nil {
				i.IPv4 = append(i.IPv4, ipn.String())
			} else {
				i.IPv6 = append(i.IPv6, ipn.String())
			}
		}
		out[ifc.Name] = i
	}
	return out
}

// defaultRoute reads /proc/net/route: the lowest-metric route with
// destination and mask 0.
func defaultRoute(b []byte, ifs map[string]Interface) Route {
	var r Route
	best := -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		metric, err := strconv.Atoi(f[6])
		if err != nil || (best >= 0 && metric >= best) {
			continue
		}
		best = metric
		r = Route{Interface: f[0], Gateway: hexIPv4(f[2])}
	}
	if i, ok := ifs[r.Interface]; ok && len(i.IPv4) > 0 {
		r.Address, _, _ = strings.Cut(i.IPv4[0], "/")
	}
	return r
}

// hexIPv4 decodes /proc/net/route's little-endian hex address.
func hexIPv4(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return ""
	}
	var ip [4]byte
	binary.BigEndian.PutUint32(ip[:], binary.LittleEndian.Uint32(b))
	if ip == [4]byte{} {
		return ""
	}
	return net.IP(ip[:]).String()
}

func memTotalMB(b []byte) int {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return 0
}

// pseudoFS are filesystems that are not storage; a policy asking "is /data
// mounted" or "which disks are there" does not want them.
var pseudoFS = map[string]bool{"proc": true, "sysfs": true, "devpts": true, "cgroup": true, "cgroup2": true,
	"securityfs": true, "debugfs": true, "tracefs": true, "pstore": true, "bpf": true, "mqueue": true,
	"hugetlbfs": true, "configfs": true, "fusectl": true, "binfmt_misc": true, "autofs": true,
	"efivarfs": true, "nsfs": true, "rpc_pipefs": true, "devtmpfs": true}

func mounts(b []byte) []Mount {
	out := []Mount{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || pseudoFS[f[2]] {
			continue
		}
		un := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\134`, `\`)
		out = append(out, Mount{Mount: un.Replace(f[1]), Device: un.Replace(f[0]), FSType: f[2]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Mount < out[j].Mount })
	return out
}

// initSystem says which service manager runs: systemd leaves
// /run/systemd/system (sd_booted), OpenRC /run/openrc; otherwise init
// scripts.
func initSystem(exists func(string) bool) string {
	switch {
	case exists("/run/systemd/system"):
		return "systemd"
	case exists("/run/openrc"):
		return "openrc"
	case exists("/etc/init.d"):
		return "sysvinit"
	}
	return "unknown"
}

func pkgMgr(exists func(string) bool) string {
	for _, c := range []struct{ bin, name string }{
		{"apt-get", "apt"}, {"dnf", "dnf"}, {"yum", "yum"}, {"apk", "apk"}, {"zypper", "zypper"}, {"pacman", "pacman"},
	} {
		for _, dir := range []string{"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"} {
			if exists(dir + c.bin) {
				return c.name
			}
		}
	}
	return "unknown"
}

// virtualization is a best guess from files anyone may read: container
// markers, then the DMI vendor strings.
func virtualization(exists func(string) bool, read func(string) string) string {
	switch {
	case exists("/.dockerenv"):
		return "docker"
	case exists("/run/.containerenv"):
		return "podman"
	}
	dmi := strings.ToLower(read("/sys/class/dmi/id/sys_vendor") + " " + read("/sys/class/dmi/id/product_name"))
	for _, v := range []struct{ mark, name string }{
		{"qemu", "kvm"}, {"kvm", "kvm"}, {"vmware", "vmware"}, {"virtualbox", "virtualbox"},
		{"xen", "xen"}, {"microsoft", "hyperv"}, {"amazon ec2", "kvm"}, {"google", "kvm"},
	} {
		if strings.Contains(dmi, v.mark) {
			return v.name
		}
	}
	if strings.TrimSpace(dmi) == "" {
		return "unknown"
	}
	return "none"
}
