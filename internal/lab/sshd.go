package lab

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// Host paths of the lab's sshd; the system's own sshd configuration is left
// alone so the lab does not depend on it.
const (
	sshdDir        = "/etc/ssh/herd-lab"
	sshdConfigPath = sshdDir + "/sshd_config"
	sshdHostKey    = sshdDir + "/ssh_host_ed25519_key"
	sshdPidFile    = "/run/sshd.pid"
	sshdLog        = "/var/log/herd-lab-sshd.log" // on the host
)

func (h *Host) sshdConfig() string {
	return strings.Join([]string{
		"# herd lab host " + h.Name,
		"ListenAddress " + h.Addr + ":22",
		"HostKey " + sshdHostKey,
		"PidFile " + sshdPidFile,
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AuthorizedKeysFile .ssh/authorized_keys",
		"AllowTcpForwarding yes",
		"AllowAgentForwarding yes",
		"UseDNS no",
		"PrintMotd no",
		"PrintLastLog no",
		"MaxStartups 200",
		"MaxSessions 100",
		"AcceptEnv LANG LC_*",
		"Subsystem sftp internal-sftp",
		"LogLevel VERBOSE",
		"",
	}, "\n")
}

// writeHostKey gives the host its own ed25519 host key.
func (h *Host) writeHostKey() (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(h.Path(sshdDir), 0o755); err != nil {
		return nil, err
	}
	if err := writePrivateKey(h.Path(sshdHostKey), priv, "root@"+h.Name); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

// writePrivateKey writes an OpenSSH private key file and its .pub.
func writePrivateKey(path string, priv ed25519.PrivateKey, comment string) error {
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + comment + "\n"
	return writeFileAtomic(path+".pub", []byte(line), 0o644)
}

// StartSSHD starts the host's sshd and returns once it listens. sshd
// daemonises, so its parent becomes the host's init, like on a real host.
// It does nothing if sshd already listens.
func (h *Host) StartSSHD() error {
	if h.sshdListening() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.execIn(ctx, nil, sshdPath(), "-f", sshdConfigPath, "-E", sshdLog); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	if !waitFor(10*time.Second, h.sshdListening) {
		log, _ := h.ReadFile(sshdLog)
		return fmt.Errorf("host %s: sshd does not listen on %s:22 after 10s; its log: %s", h.Name, h.Addr, tail(log, 400))
	}
	return nil
}

// StopSSHD stops the host's sshd listener, as `systemctl stop ssh` would:
// sessions already open stay. It returns once nothing listens on port 22.
func (h *Host) StopSSHD() error {
	b, err := h.ReadFile(sshdPidFile)
	if err != nil {
		return nil // not running
	}
	local, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("host %s: %s: %w", h.Name, sshdPidFile, err)
	}
	if pid := nsPid(nsInode(h.pid, "pid"), local); pid > 0 {
		if err := unix.Kill(pid, unix.SIGTERM); err != nil && err != unix.ESRCH {
			return fmt.Errorf("host %s: stop sshd (pid %d): %w", h.Name, pid, err)
		}
		if !waitFor(5*time.Second, func() bool { return !running(pid) }) {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	os.Remove(h.Path(sshdPidFile))
	if !waitFor(5*time.Second, func() bool { return !h.sshdListening() }) {
		return fmt.Errorf("host %s: sshd still listens after stop", h.Name)
	}
	return nil
}

// RestartSSHD stops and starts the host's sshd.
func (h *Host) RestartSSHD() error {
	if err := h.StopSSHD(); err != nil {
		return err
	}
	return h.StartSSHD()
}

// sshdListening looks for a listening socket on port 22 in the host's
// network namespace; the controller cannot connect to rack hosts to check.
func (h *Host) sshdListening() bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(h.pid), "net", "tcp"))
	if err != nil {
		return false
	}
	for _, ln := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(ln)
		if len(f) > 3 && strings.HasSuffix(f[1], ":0016") && f[3] == "0A" {
			return true
		}
	}
	return false
}

func sshdPath() string {
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "/usr/sbin/sshd"
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
