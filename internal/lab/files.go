package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// writeFileAtomic replaces path with data: temp file in the same directory,
// fsync, rename, fsync the directory.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// writeClientFiles writes known_hosts and ssh_config for the OpenSSH client
// (and any client that reads them, herd's included).
func (l *Lab) writeClientFiles() error {
	var kh, cfg strings.Builder
	for _, h := range l.Hosts {
		kh.WriteString(h.Name + "," + h.Addr + " " + string(ssh.MarshalAuthorizedKey(h.HostKey)))
		fmt.Fprintf(&cfg, "Host %s\n  HostName %s\n", h.Name, h.Addr)
		if h.Via != nil {
			fmt.Fprintf(&cfg, "  ProxyJump %s\n", h.Via.Name)
		}
	}
	fmt.Fprintf(&cfg, "\nHost *\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n"+
		"  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 30\n  LogLevel ERROR\n",
		l.KeyFile, l.KnownHosts)
	if err := writeFileAtomic(l.KnownHosts, []byte(kh.String()), 0o644); err != nil {
		return err
	}
	return writeFileAtomic(l.SSHConfig, []byte(cfg.String()), 0o644)
}

// ClientConfig is an x/crypto/ssh client configuration for user on any lab
// host: the lab key, and host keys checked against the lab's known_hosts.
// Behind a latency proxy, set HostKeyCallback to ssh.FixedHostKey(h.HostKey).
func (l *Lab) ClientConfig(user string) (*ssh.ClientConfig, error) {
	b, err := os.ReadFile(l.KeyFile)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("lab %s: %s: %w", l.Name, l.KeyFile, err)
	}
	cb, err := knownhosts.New(l.KnownHosts)
	if err != nil {
		return nil, err
	}
	return &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           10 * time.Second,
	}, nil
}
