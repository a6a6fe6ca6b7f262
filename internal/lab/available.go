package lab

import (
	"os"
	"os/exec"
	"strings"
)

// Available reports whether this machine can host a lab, and if not, why
// (one line, fit for t.Skip).
func Available() (ok bool, why string) {
	if os.Geteuid() != 0 {
		return false, "lab hosts need root (namespaces, mounts, veth links)"
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return false, "no network namespaces (/proc/self/ns/net missing)"
	}
	if b, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(b), "\toverlay\n") {
		return false, "no overlayfs in /proc/filesystems (modprobe overlay?)"
	}
	if _, err := os.Stat(sshdPath()); err != nil {
		return false, "no sshd (apt-get install openssh-server)"
	}
	for _, tool := range []struct{ name, pkg string }{{"ip", "iproute2"}, {"nsenter", "util-linux"}, {"sudo", "sudo"}} {
		if _, err := exec.LookPath(tool.name); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool.name); err != nil {
				return false, "no " + tool.name + " (apt-get install " + tool.pkg + ")"
			}
		}
	}
	return true, ""
}
