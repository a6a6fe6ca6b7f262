package facts

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDefaultRoute(t *testing.T) {
	table := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
		"eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t0000C80A\t00000000\t0201\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
	ifs := map[string]Interface{"eth0": {IPv4: []string{"192.0.2.7/24", "192.0.2.8/24"}}}
	r := defaultRoute([]byte(table), ifs)
	if r != (Route{Interface: "eth0", Address: "192.0.2.7", Gateway: "192.0.2.1"}) {
		t.Fatalf("route = %+v", r)
	}
	if r := defaultRoute([]byte("Iface\tDestination\n"), ifs); r != (Route{}) {
		t.Fatalf("no default route gave %+v", r)
	}
}

func TestMemAndMounts(t *testing.T) {
	if mb := memTotalMB([]byte("MemTotal:        8048572 kB\nMemFree: 1 kB\n")); mb != 7859 {
		t.Errorf("memtotal_mb = %d", mb)
	}
	ms := mounts([]byte("proc /proc proc rw 0 0\n/dev/sda1 / ext4 rw 0 0\ntmpfs /srv/my\\040data tmpfs rw 0 0\n"))
	if len(ms) != 2 || ms[0] != (Mount{"/", "/dev/sda1", "ext4"}) || ms[1].Mount != "/srv/my data" {
		t.Errorf("mounts = %+v", ms)
	}
}

func TestInitPkgVirt(t *testing.T) {
	has := func(paths ...string) func(string) bool {
		return func(p string) bool {
			for _, q := range paths {
				if p == q {
					return true
				}
			}
			return false
		}
	}
	for _, tt := range []struct {
		files           []string
		dmi             string
		init, pkg, virt string
	}{
		{[]string{"/run/systemd/system", "/etc/init.d", "/usr/bin/apt-get"}, "QEMU Standard PC", "systemd", "apt", "kvm"},
		{[]string{"/run/openrc", "/sbin/apk", "/.dockerenv"}, "", "openrc", "apk", "docker"},
		{[]string{"/etc/init.d", "/usr/bin/dnf", "/usr/bin/yum"}, "Dell Inc. PowerEdge", "sysvinit", "dnf", "none"},
		{nil, "", "unknown", "unknown", "unknown"},
	} {
		read := func(p string) string {
			if strings.HasSuffix(p, "sys_vendor") {
				return tt.dmi
			}
			return ""
		}
		if g := initSystem(has(tt.files...)); g != tt.init {
			t.Errorf("%v: init %q, want %q", tt.files, g, tt.init)
		}
		if g := pkgMgr(has(tt.files...)); g != tt.pkg {
			t.Errorf("%v: pkg %q, want %q", tt.files, g, tt.pkg)
		}
		if g := virtualization(has(tt.files...), read); g != tt.virt {
			t.Errorf("%v: virt %q, want %q", tt.files, g, tt.virt)
		}
	}
}

// The facts of this machine: a loopback with 127.0.0.1, some memory, a
// root mount, and a JSON form that stays small enough for the hello.
func TestGatherSystem(t *testing.T) {
	f := Gather()
	if lo, ok := f.Interfaces["lo"]; !ok || len(lo.IPv4) == 0 || lo.IPv4[0] != "127.0.0.1/8" {
		t.Errorf("lo = %+v", f.Interfaces["lo"])
	}
	if f.MemTotalMB <= 0 {
		t.Errorf("memtotal_mb = %d", f.MemTotalMB)
	}
	root := false
	for _, m := range f.Mounts {
		root = root || m.Mount == "/"
	}
	if !root {
		t.Errorf("no / in mounts %+v", f.Mounts)
	}
	b, _ := json.Marshal(f)
	t.Logf("facts JSON: %d bytes", len(b))
}
