package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herd-project/herd/internal/lab"
)

// hkLab is a private lab whose hosts present ED25519, ECDSA and RSA host
// keys, as a stock distribution sshd does, so a client that asks for the
// wrong key type gets one known_hosts does not hold: host1 and rack1 (behind
// bastion), plus host2, whose key the MITM test replaces.
type hkLab struct {
	*lab.Lab
	t *testing.T
}

func upHKLab(t *testing.T) *hkLab {
	t.Helper()
	if ok, why := lab.Available(); !ok {
		t.Skip("lab: " + why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l, err := lab.Up(ctx, lab.Spec{Name: fmt.Sprintf("hk%d", os.Getpid()), Flat: 2, Bastion: &lab.BastionSpec{RackHosts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
	})
	hl := &hkLab{Lab: l, t: t}
	for _, name := range []string{"host1", "bastion", "rack1"} {
		hl.addStockHostKeys(l.Host(name))
	}
	return hl
}

const labSSHDConfig = "/etc/ssh/herd-lab/sshd_config"

// addStockHostKeys gives h ECDSA and RSA host keys besides its ED25519 one
// and checks that its sshd now offers ECDSA.
func (l *hkLab) addStockHostKeys(h *lab.Host) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := os.ReadFile(h.Path(labSSHDConfig))
	if err != nil {
		l.t.Fatal(err)
	}
	for _, typ := range []string{"ecdsa", "rsa"} {
		key := "/etc/ssh/herd-lab/ssh_host_" + typ + "_key"
		if _, err := h.Exec(ctx, "ssh-keygen", "-q", "-t", typ, "-N", "", "-f", key); err != nil {
			l.t.Fatal(err)
		}
		cfg = append(cfg, "HostKey "+key+"\n"...)
	}
	l.setSSHD(h, string(cfg))
	if got := l.keyscan(h, "ecdsa", false); !strings.Contains(got, "ecdsa-sha2-") {
		l.t.Fatalf("%s does not offer an ECDSA host key after set-up: %q", h.Name, got)
	}
}

func (l *hkLab) setSSHD(h *lab.Host, config string) {
	l.t.Helper()
	if err := os.WriteFile(h.Path(labSSHDConfig), []byte(config), 0o644); err != nil {
		l.t.Fatal(err)
	}
	if err := h.RestartSSHD(); err != nil {
		l.t.Fatal(err)
	}
}

// keyscan runs the real ssh-keyscan for one key type of h: from the
// controller for hosts it reaches, else from inside the host's parent.
func (l *hkLab) keyscan(h *lab.Host, typ string, hashed bool) string {
	l.t.Helper()
	args := []string{"-T", "5", "-t", typ}
	if hashed {
		args = append(args, "-H")
	}
	args = append(args, h.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []byte
	var err error
	if h.Via != nil {
		out, err = h.Via.Exec(ctx, append([]string{"ssh-keyscan"}, args...)...)
	} else {
		out, err = exec.CommandContext(ctx, "ssh-keyscan", args...).Output()
	}
	if err != nil || len(out) == 0 {
		l.t.Fatalf("ssh-keyscan %v: %q, %v", args, out, err)
	}
	return string(out)
}

// target is a checked root login to h with the lab key, through its
// parent when it has one.
func (l *hkLab) target(h *lab.Host, knownHosts ...string) Target {
	t := Target{Name: h.Name, Address: h.Addr, User: "root", KeyFiles: []string{l.KeyFile},
		CheckHostKeys: true, KnownHosts: knownHosts}
	if h.Via != nil {
		jt := l.target(h.Via, knownHosts...)
		t.ProxyJump = &jt
	}
	return t
}

// connect dials t with a fresh pool and returns the presented host key.
func connect(t Target, cfg Config) (string, error) {
	p := NewPool(cfg)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := p.Get(ctx, t)
	if err != nil {
		return "", err
	}
	s, err := c.Start(ctx, "true")
	if err != nil {
		return "", err
	}
	defer s.Close()
	if err := s.Wait(); err != nil {
		return "", err
	}
	return c.HostKey(), nil
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// openSSHWritten lets the real ssh client record the host keys of the
// hosts it meets reaching h (accept-new) and returns that known_hosts.
func (l *hkLab) openSSHWritten(h *lab.Host, hashed bool) string {
	l.t.Helper()
	dir := l.t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	hash := map[bool]string{false: "no", true: "yes"}[hashed]
	cfg := writeFile(l.t, dir, "ssh_config", fmt.Sprintf("Host *\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n"+
		"  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking accept-new\n"+
		"  HashKnownHosts %s\n  UpdateHostKeys no\n  BatchMode yes\n  ConnectTimeout 5\n  LogLevel ERROR\n", l.KeyFile, kh, hash))
	args := []string{"-F", cfg}
	if h.Via != nil {
		args = append(args, "-J", "root@"+h.Via.Addr)
	}
	args = append(args, "root@"+h.Addr, "true")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ssh %v: %v: %s", args, err, out)
	}
	b, err := os.ReadFile(kh)
	if err != nil {
		l.t.Fatal(err)
	}
	if strings.Contains(string(b), "ecdsa") || strings.Contains(string(b), "ssh-rsa") {
		l.t.Fatalf("ssh recorded more than ED25519 keys: %s", b)
	}
	return kh
}

// TestHostKeysOnLab runs the host key scenarios on one private lab, whose
// set-up (extra host keys, sshd restarts) is the expensive part.
func TestHostKeysOnLab(t *testing.T) {
	l := upHKLab(t)
	t.Run("ed25519-only known_hosts on port 22", l.testED25519OnlyPort22)
	t.Run("ed25519-only known_hosts through a bastion", l.testED25519OnlyJump)
	t.Run("accept-new records new keys once, in OpenSSH format", l.testAcceptNew)
	t.Run("ssh_config StrictHostKeyChecking and UserKnownHostsFile", l.testSSHConfigStrict)
	t.Run("accept-new refuses an impostor", l.testAcceptNewRefusesImpostor)
}

func (l *hkLab) testED25519OnlyPort22(t *testing.T) {
	h := l.Host("host1")
	dir := t.TempDir()
	proxy, stop, err := l.Latency(h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	proxyHost, proxyPort, _ := strings.Cut(proxy, ":")
	scanned, err := exec.Command("ssh-keyscan", "-T", "5", "-t", "ed25519", "-p", proxyPort, proxyHost).Output()
	if err != nil || !strings.HasPrefix(string(scanned), "["+proxyHost+"]:"+proxyPort+" ssh-ed25519 ") {
		t.Fatalf("ssh-keyscan -p %s: %q, %v", proxyPort, scanned, err)
	}
	for _, tt := range []struct {
		name, knownHosts string
		port             int
	}{
		{name: "ssh-keyscan -t ed25519", knownHosts: writeFile(t, dir, "plain", l.keyscan(h, "ed25519", false))},
		{name: "ssh-keyscan -H -t ed25519", knownHosts: writeFile(t, dir, "hashed", l.keyscan(h, "ed25519", true))},
		{name: "written by ssh accept-new", knownHosts: l.openSSHWritten(h, false)},
		{name: "written by ssh accept-new, hashed", knownHosts: l.openSSHWritten(h, true)},
		{name: "[host]:port from ssh-keyscan -p", knownHosts: writeFile(t, dir, "port", string(scanned))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := l.target(h, tt.knownHosts)
			if strings.HasPrefix(tt.name, "[host]") {
				target.Address = proxyHost
				fmt.Sscan(proxyPort, &target.Port)
			}
			got, err := connect(target, testConfig())
			if err != nil {
				t.Fatal(err)
			}
			if want := keyName(h.HostKey); got != want {
				t.Errorf("server presented %s, want %s", got, want)
			}
		})
	}
}

func (l *hkLab) testED25519OnlyJump(t *testing.T) {
	rack, bastion := l.Host("rack1"), l.Host("bastion")
	dir := t.TempDir()
	for _, tt := range []struct{ name, knownHosts string }{
		{name: "ssh-keyscan -t ed25519", knownHosts: writeFile(t, dir, "plain",
			l.keyscan(bastion, "ed25519", false)+l.keyscan(rack, "ed25519", false))},
		{name: "ssh-keyscan -H -t ed25519", knownHosts: writeFile(t, dir, "hashed",
			l.keyscan(bastion, "ed25519", true)+l.keyscan(rack, "ed25519", true))},
		{name: "written by ssh -J accept-new", knownHosts: l.openSSHWritten(rack, false)},
		{name: "written by ssh -J accept-new, hashed", knownHosts: l.openSSHWritten(rack, true)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := connect(l.target(rack, tt.knownHosts), testConfig())
			if err != nil {
				t.Fatal(err)
			}
			if want := keyName(rack.HostKey); got != want {
				t.Errorf("rack1 presented %s, want %s", got, want)
			}
		})
	}
}

// testAcceptNew: with no ~/.ssh at all, parallel first connections (three
// logins to host1, host2, and rack1 through bastion) record each host
// once in ~/.ssh/known_hosts; ssh then trusts that file, and a second herd
// connection with strict checking uses it.
func (l *hkLab) testAcceptNew(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	kh := filepath.Join(home, ".ssh", "known_hosts")
	hosts := []*lab.Host{l.Host("host1"), l.Host("host2"), l.Host("rack1")}
	var targets []Target
	for _, h := range hosts {
		tg := l.target(h)
		tg.StrictHostKeys = AcceptNew
		if tg.ProxyJump != nil {
			tg.ProxyJump.StrictHostKeys = AcceptNew
		}
		targets = append(targets, tg)
	}
	for _, u := range []string{lab.UserDeploy, lab.UserDeployPW} {
		tg := targets[0]
		tg.User = u
		targets = append(targets, tg)
	}
	p := NewPool(testConfig())
	errs := make(chan error, len(targets))
	for _, tg := range targets {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := p.Get(ctx, tg)
			errs <- err
		}()
	}
	for range targets {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	p.Close()
	if t.Failed() {
		return
	}

	if st, err := os.Stat(filepath.Dir(kh)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("~/.ssh: %v, %v; want a 0700 directory", st, err)
	}
	if st, err := os.Stat(kh); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("~/.ssh/known_hosts: %v, %v; want a 0600 file", st, err)
	}
	b, _ := os.ReadFile(kh)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 { // host1, host2, bastion, rack1
		t.Errorf("known_hosts has %d lines, want one per host (4):\n%s", len(lines), b)
	}
	for _, h := range append(hosts, l.Host("bastion")) {
		want := h.Addr + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(h.HostKey)))
		found, err := exec.Command("ssh-keygen", "-F", h.Addr, "-f", kh).Output()
		if err != nil || !strings.Contains(string(found), want) {
			t.Errorf("ssh-keygen -F %s finds %q (%v), want %q", h.Addr, found, err, want)
		}
	}
	// OpenSSH trusts what herd recorded...
	out, err := exec.Command("ssh", "-i", l.KeyFile, "-o", "UserKnownHostsFile="+kh, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "root@"+l.Host("host1").Addr, "true").CombinedOutput()
	if err != nil {
		t.Errorf("ssh with herd's known_hosts: %v: %s", err, out)
	}
	// ...and so does herd, now refusing anything unknown.
	for _, h := range hosts {
		tg := l.target(h)
		tg.StrictHostKeys = StrictYes
		if got, err := connect(tg, testConfig()); err != nil || got != keyName(h.HostKey) {
			t.Errorf("second connection to %s: %s, %v", h.Name, got, err)
		}
	}
	if after, _ := os.ReadFile(kh); string(after) != string(b) {
		t.Errorf("second connections changed known_hosts:\n%s", after)
	}
}

// testSSHConfigStrict: StrictHostKeyChecking and UserKnownHostsFile (two
// files, ~) come from ssh_config; an explicit setting wins over it.
func (l *hkLab) testSSHConfigStrict(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	h1, b := l.Host("host1"), l.Host("bastion")
	cfg := writeSSHConfig(t, fmt.Sprintf(`
Host h1
  HostName %s
  StrictHostKeyChecking accept-new
  UserKnownHostsFile ~/kh_first ~/kh_second
Host bast
  HostName %s
  StrictHostKeyChecking yes
  UserKnownHostsFile ~/kh_b1 ~/kh_b2
Host *
  User root
  IdentityFile %s
`, h1.Addr, b.Addr, l.KeyFile))
	conf := testConfig()
	conf.SSHConfigFile = cfg
	h1t := Target{Name: "h1", CheckHostKeys: true}
	bt := Target{Name: "bast", CheckHostKeys: true}

	// The explicit setting wins over the file's accept-new.
	strict := h1t
	strict.StrictHostKeys = StrictYes
	if _, err := connect(strict, conf); !errors.Is(err, ErrUnknownHostKey) {
		t.Errorf("explicit yes over ssh_config accept-new: %v, want %v", err, ErrUnknownHostKey)
	}
	if _, err := os.Stat(filepath.Join(home, "kh_first")); !os.IsNotExist(err) {
		t.Errorf("a refused key was recorded: %v", err)
	}
	// accept-new from ssh_config records in the first file.
	if got, err := connect(h1t, conf); err != nil || got != keyName(h1.HostKey) {
		t.Fatalf("accept-new from ssh_config: %s, %v", got, err)
	}
	if rec, err := os.ReadFile(filepath.Join(home, "kh_first")); err != nil || !strings.HasPrefix(string(rec), h1.Addr+" ssh-ed25519 ") {
		t.Errorf("~/kh_first = %q, %v; want host1's key", rec, err)
	}
	if _, err := os.Stat(filepath.Join(home, "kh_second")); !os.IsNotExist(err) {
		t.Errorf("~/kh_second was written: %v", err)
	}
	// StrictHostKeyChecking yes from ssh_config refuses; a key in the
	// second file is found.
	if _, err := connect(bt, conf); !errors.Is(err, ErrUnknownHostKey) {
		t.Errorf("ssh_config yes, unknown key: %v, want %v", err, ErrUnknownHostKey)
	}
	writeFile(t, home, "kh_b2", l.keyscan(b, "ed25519", true))
	if got, err := connect(bt, conf); err != nil || got != keyName(b.HostKey) {
		t.Errorf("key in the second UserKnownHostsFile: %s, %v", got, err)
	}
}

// testAcceptNewRefusesImpostor performs the attack accept-new must not
// fall for: known_hosts holds host2's real key, and what answers at
// host2's address presents another one: first another ED25519 key, then
// only an ECDSA key (a type known_hosts has nothing for). Both must be
// refused as a changed key and nothing recorded.
func (l *hkLab) testAcceptNewRefusesImpostor(t *testing.T) {
	h := l.Host("host2")
	kh := writeFile(t, t.TempDir(), "known_hosts", l.keyscan(h, "ed25519", false))
	before, _ := os.ReadFile(kh)
	orig, err := os.ReadFile(h.Path(labSSHDConfig))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, typ := range []string{"ed25519", "ecdsa"} {
		t.Run("impostor with an "+typ+" key", func(t *testing.T) {
			key := "/etc/ssh/herd-lab/impostor_" + typ
			if _, err := h.Exec(ctx, "ssh-keygen", "-q", "-t", typ, "-N", "", "-f", key); err != nil {
				t.Fatal(err)
			}
			var cfg []string
			for _, ln := range strings.Split(string(orig), "\n") {
				if !strings.HasPrefix(ln, "HostKey ") {
					cfg = append(cfg, ln)
				}
			}
			l.setSSHD(h, strings.Join(append(cfg, "HostKey "+key, ""), "\n"))
			if got := l.keyscan(h, typ, false); strings.Contains(got, strings.Fields(string(before))[2]) {
				t.Fatalf("the impostor still presents the real key")
			}
			tg := l.target(h, kh)
			tg.StrictHostKeys = AcceptNew
			_, err := connect(tg, testConfig())
			if !errors.Is(err, ErrHostKeyChanged) {
				t.Fatalf("connected to an impostor with accept-new (err = %v), want %v", err, ErrHostKeyChanged)
			}
			if after, _ := os.ReadFile(kh); string(after) != string(before) {
				t.Errorf("known_hosts changed:\n%s", after)
			}
		})
	}
}
