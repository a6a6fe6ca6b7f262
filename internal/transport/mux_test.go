package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestMain makes this test binary a mux when HERD_MUX_SERVE=1 (the
// MuxCommand of muxConfig), and an attacker when HERD_MUX_ATTACK names a
// socket (TestPersistRefusesOtherUsers).
func TestMain(m *testing.M) {
	if os.Getenv("HERD_MUX_SERVE") == "1" {
		null, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		os.Stderr = null
		if err := ServeMux(os.Stdin, os.Stdout, func() { os.Stdout.Close() }); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if path := os.Getenv("HERD_MUX_ATTACK"); path != "" {
		attackMux(path)
		return
	}
	os.Exit(m.Run())
}

// muxConfig persists connections for persist in a fresh directory under
// parent ("" = a private temp dir), with this test binary as the mux.
func muxConfig(t *testing.T, parent string, persist time.Duration) Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if parent == "" {
		parent = t.TempDir()
	}
	cfg := testConfig()
	cfg.Persist = persist
	cfg.MuxDir = filepath.Join(parent, "mux")
	cfg.MuxCommand = []string{"/usr/bin/env", "HERD_MUX_SERVE=1", exe}
	t.Cleanup(func() { stopAllMuxes(t, cfg.MuxDir) })
	return cfg
}

// stopAllMuxes stops the muxes of dir and waits for their processes.
func stopAllMuxes(t *testing.T, dir string) {
	stopped, _ := StopMuxes(dir, "")
	for _, m := range stopped {
		if m.Pid > 0 && !waitGone(m.Pid, 5*time.Second) {
			t.Errorf("mux pid %d still running after herd mux stop", m.Pid)
			syscall.Kill(m.Pid, syscall.SIGKILL)
		}
	}
}

// waitGone waits for pid to exit (it is this process's child, reaped by
// startMux's Wait).
func waitGone(pid int, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
	}
	return false
}

func logins(s *testSSHD) int { return strings.Count(s.log.String(), "Accepted publickey for root") }

func onlyMux(t *testing.T, dir string) MuxStatus {
	t.Helper()
	all, err := ListMuxes(dir)
	if err != nil || len(all) != 1 || all[0].Err != nil {
		t.Fatalf("want one live mux in %s, got %+v (%v)", dir, all, err)
	}
	return all[0]
}

// TestPersistedConnectionIsReused: a second pool (the next run) gets the
// first one's login through the mux: sshd sees one login; output, stderr,
// stdin, exit status, a signal's death and port forwarding all cross the
// bridge; the mux reports the upstream host key.
func TestPersistedConnectionIsReused(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	cfg := muxConfig(t, "", 20*time.Second)
	target := sshd.target("web1")
	for n := 1; n <= 2; n++ {
		p := NewPool(cfg)
		c, err := p.Get(context.Background(), target)
		if err != nil {
			t.Fatalf("run %d: %v", n, err)
		}
		if want := "ED25519 " + ssh.FingerprintSHA256(sshd.hostKeys[0]); c.HostKey() != want {
			t.Errorf("run %d: HostKey() = %q, want %q", n, c.HostKey(), want)
		}
		out, errOut, err := run(t, c, "echo out; echo err >&2; exit 3")
		var exit *ExitError
		if out != "out\n" || errOut != "err\n" || !errors.As(err, &exit) || exit.Code != 3 {
			t.Errorf("run %d: got %q %q %v, want out, err, exit 3", n, out, errOut, err)
		}
		if _, _, err := run(t, c, "kill -TERM $$"); !errors.As(err, &exit) || exit.Signal != "TERM" {
			t.Errorf("run %d: killed command: %v, want killed by TERM", n, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := c.Start(ctx, "cat")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(s.Stdin, "through stdin\n")
		if out, _, err := collect(s); out != "through stdin\n" || err != nil {
			t.Errorf("run %d: cat got %q, %v", n, out, err)
		}
		cancel()
		// A cancelled session ends the remote command: the channel close
		// crosses the mux (sshd ignores signals for root logins).
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		s, err = c.Start(ctx, "echo $$; "+untilOutputCloses)
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if _, err := fmt.Fscan(s.Stdout, &pid); err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, s.Stdout)
		cancel()
		s.Wait()
		if !waitGone(pid, 5*time.Second) {
			t.Errorf("run %d: remote command pid %d still running 5 s after its session was cancelled", n, pid)
		}
		fw, err := c.Dial("tcp", sshd.addr())
		if err != nil {
			t.Fatalf("run %d: direct-tcpip: %v", n, err)
		}
		banner := make([]byte, 8)
		fw.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(fw, banner); err != nil || string(banner) != "SSH-2.0-" {
			t.Errorf("run %d: forwarded connection read %q, %v; want sshd's banner", n, banner, err)
		}
		fw.Close()
		p.Close()
	}
	if n := logins(sshd); n != 1 {
		t.Errorf("sshd saw %d logins for two runs, want 1 (the mux's)", n)
	}
	m := onlyMux(t, cfg.MuxDir)
	for deadline := time.Now().Add(5 * time.Second); m.IdleSince.IsZero() && time.Now().Before(deadline); m = onlyMux(t, cfg.MuxDir) {
		time.Sleep(20 * time.Millisecond) // the mux has yet to see the run leave
	}
	if m.Host != "web1" || m.IdleSince.IsZero() || m.Conns != 0 || m.Persist != 20*time.Second {
		t.Errorf("mux list: %+v", m.MuxInfo)
	}
	fi, err := os.Stat(m.Socket)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %s: %v %v, want 0600", m.Socket, fi.Mode(), err)
	}
}

// TestPersistedConnectionThroughAJumpHost: the mux dials the whole
// ProxyJump chain itself; the next run reuses it (one login on each sshd),
// and a failure behind the hop names the hop as a direct dial does.
func TestPersistedConnectionThroughAJumpHost(t *testing.T) {
	hop, inner := startSSHD(t, sshdOptions{}), startSSHD(t, sshdOptions{})
	cfg := muxConfig(t, "", 20*time.Second)
	jump := hop.target("bastion")
	target := inner.target("db1")
	target.ProxyJump = &jump
	for n := 1; n <= 2; n++ {
		p := NewPool(cfg)
		c, err := p.Get(context.Background(), target)
		if err != nil {
			t.Fatalf("run %d: %v", n, err)
		}
		if out, _, err := run(t, c, "echo $SSH_CONNECTION"); err != nil || !strings.HasSuffix(strings.TrimSpace(out), " "+strconv.Itoa(inner.port)) {
			t.Errorf("run %d: SSH_CONNECTION %q %v, want a connection to port %d", n, out, err, inner.port)
		}
		p.Close()
	}
	if logins(hop) != 1 || logins(inner) != 1 {
		t.Errorf("logins: hop %d, target %d; want 1 each (the mux's)", logins(hop), logins(inner))
	}
	// The hop as a target of its own: a second connection, served by the
	// same mux process.
	ph := NewPool(cfg)
	if _, err := ph.Get(context.Background(), jump); err != nil {
		t.Fatal(err)
	}
	ph.Close()
	if all, err := ListMuxes(cfg.MuxDir); err != nil || len(all) != 2 || all[0].Pid != all[1].Pid || all[0].Pid == 0 {
		t.Errorf("want two connections served by one mux process, got %+v (%v)", all, err)
	}
	closed := inner.target("db2")
	closed.Port, closed.ProxyJump = freePort(t), &jump
	p := NewPool(cfg)
	defer p.Close()
	_, err := p.Get(context.Background(), closed)
	if want := "jump host bastion could not connect"; err == nil || !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), want) {
		t.Errorf("closed port behind the hop through a mux: %v, want ErrUnreachable saying %q", err, want)
	}
}

// TestPersistedMuxEndsAndIsReplaced: an idle mux exits after its persist
// time and removes its socket; a mux killed outright leaves a stale
// socket, and the next run replaces it with a fresh login; a mux whose
// upstream died exits, and the next run logs in afresh.
func TestPersistedMuxEndsAndIsReplaced(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	target := sshd.target("web1")

	idle := muxConfig(t, "", 300*time.Millisecond)
	p := NewPool(idle)
	if _, err := p.Get(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	m := onlyMux(t, idle.MuxDir)
	p.Close()
	if !waitGone(m.Pid, 5*time.Second) {
		t.Fatalf("idle mux pid %d still running 5 s after a 300 ms persist", m.Pid)
	}
	if _, err := os.Stat(m.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("idle mux left its socket: %v", err)
	}

	cfg := muxConfig(t, "", 20*time.Second)
	get := func() *Pool {
		t.Helper()
		p := NewPool(cfg)
		c, err := p.Get(context.Background(), target)
		if err != nil {
			t.Fatal(err)
		}
		if out, _, err := run(t, c, "echo ok"); out != "ok\n" || err != nil {
			t.Fatalf("echo: %q %v", out, err)
		}
		return p
	}
	get().Close()
	first := onlyMux(t, cfg.MuxDir)
	syscall.Kill(first.Pid, syscall.SIGKILL)
	waitGone(first.Pid, 5*time.Second)
	if _, err := os.Stat(first.Socket); err != nil {
		t.Fatalf("want the killed mux's socket left behind: %v", err)
	}
	get().Close()
	second := onlyMux(t, cfg.MuxDir)
	if second.Pid == first.Pid || logins(sshd) != 3 {
		t.Errorf("after a stale socket: mux pid %d (was %d), %d logins; want a new mux and a fresh login", second.Pid, first.Pid, logins(sshd))
	}

	// The upstream dies (sshd kills the mux's connection): the mux exits.
	for _, pid := range descendants(sshd.cmd.Process.Pid)[1:] { // not sshd itself
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if !waitGone(second.Pid, 5*time.Second) {
		t.Fatalf("mux pid %d still running after its upstream connection died", second.Pid)
	}
	get().Close()
	if logins(sshd) != 4 {
		t.Errorf("%d logins, want a fresh one after the upstream died", logins(sshd))
	}
}

// TestPersistedMuxOfAFrozenHostIsNotUsed: the host stops answering on the
// mux's connection (its sshd process frozen) while sshd still accepts new
// logins. A run then logs in afresh instead of waiting on the frozen
// connection: the mux, silent upstream for over 1.5 keepalive intervals,
// probes it before it says hello, and stands down.
func TestPersistedMuxOfAFrozenHostIsNotUsed(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	cfg := muxConfig(t, "", 20*time.Second)
	cfg.KeepAlive = time.Second
	target := sshd.target("web1")
	p := NewPool(cfg)
	if _, err := p.Get(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	p.Close()
	frozen := onlyMux(t, cfg.MuxDir)
	for _, pid := range descendants(sshd.cmd.Process.Pid)[1:] { // the mux's session, not the listener
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	time.Sleep(1700 * time.Millisecond) // silent > 1.5 intervals, < the 3 after which the mux gives up
	p2 := NewPool(cfg)
	defer p2.Close()
	c, err := p2.Get(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, c, "echo fresh"); out != "fresh\n" || err != nil {
		t.Fatalf("run after the freeze: %q %v", out, err)
	}
	if n := logins(sshd); n != 2 {
		t.Errorf("%d logins, want a fresh one after the freeze", n)
	}
	if now := onlyMux(t, cfg.MuxDir); !now.Since.After(frozen.Since) {
		t.Errorf("the frozen connection (since %v) is still served, want a new one", frozen.Since)
	}
}

// TestPersistRefusesChangedHostKeyAndSecrets: a fresh mux checks the host
// key as a direct dial does (a changed key fails the host, nothing is left
// listening); a host with a password is not persisted; and the mux's argv,
// environment and directory hold no secret of the run's.
func TestPersistRefusesChangedHostKeyAndSecrets(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	cfg := muxConfig(t, "", 20*time.Second)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(otherPub)
	target := sshd.target("web1")
	target.KnownHosts = []string{sshd.knownHostsFile(other)}
	p := NewPool(cfg)
	defer p.Close()
	if _, err := p.Get(context.Background(), target); !errors.Is(err, ErrHostKeyChanged) || !strings.Contains(err.Error(), "ssh-keygen -R") {
		t.Fatalf("changed host key through a mux: %v, want ErrHostKeyChanged with the fix", err)
	}
	if all, _ := ListMuxes(cfg.MuxDir); len(all) != 0 {
		t.Errorf("a mux is left after a refused host key: %+v", all)
	}

	pw := NewPool(cfg)
	defer pw.Close()
	withPassword := sshd.target("web1")
	withPassword.Password = "pw-not-for-the-mux"
	if _, err := pw.Get(context.Background(), withPassword); err != nil {
		t.Fatal(err)
	}
	if all, _ := ListMuxes(cfg.MuxDir); len(all) != 0 {
		t.Errorf("a host with a password was persisted: %+v", all)
	}

	const secret = "sekrit-sudo-pw-4711"
	t.Setenv("HERD_SUDO_PASSWORD", secret)
	p2 := NewPool(cfg)
	defer p2.Close()
	if _, err := p2.Get(context.Background(), sshd.target("web1")); err != nil {
		t.Fatal(err)
	}
	m := onlyMux(t, cfg.MuxDir)
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(m.Pid), f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) || strings.Contains(string(b), "HERD_SUDO") {
			t.Errorf("the mux's %s holds the run's secret: %q", f, b)
		}
	}
	entries, _ := os.ReadDir(cfg.MuxDir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sock") && e.Name() != ctlName {
			t.Errorf("the mux wrote %s in %s; want its sockets only", e.Name(), cfg.MuxDir)
		}
	}
}

// TestMuxDirIsRefusedWhenOthersCouldReachIt: a symlinked, shared or
// foreign directory is not used; the run then connects directly.
func TestMuxDirIsRefusedWhenOthersCouldReachIt(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"symlink", func(dir string) { os.Symlink(t.TempDir(), dir) }, "symlink"},
		{"group and others", func(dir string) { os.Mkdir(dir, 0o700); os.Chmod(dir, 0o755) }, "lets other users in"},
		{"another owner", func(dir string) { os.Mkdir(dir, 0o700); os.Chown(dir, 65534, 65534) }, "not owned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "another owner" && os.Getuid() != 0 {
				t.Skip("needs root to chown")
			}
			dir := filepath.Join(t.TempDir(), "mux")
			tt.setup(dir)
			if err := secureMuxDir(dir, true); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("secureMuxDir: %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}

// TestPersistRefusesOtherUsers attacks a live mux as uid 65534 with this
// test binary: through the 0700 directory, and again with the directory
// and socket opened to all (as a careless chmod would), where SO_PEERCRED
// alone must turn the attacker away. The attacker runs `id` if it gets in.
func TestPersistRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("attacking as another uid needs root")
	}
	sshd := startSSHD(t, sshdOptions{})
	public, err := os.MkdirTemp("", "muxatk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(public) })
	os.Chmod(public, 0o755)
	cfg := muxConfig(t, public, 20*time.Second)
	p := NewPool(cfg)
	defer p.Close()
	if _, err := p.Get(context.Background(), sshd.target("web1")); err != nil {
		t.Fatal(err)
	}
	m := onlyMux(t, cfg.MuxDir)
	bin := filepath.Join(public, "transport.test")
	exe, _ := os.Executable()
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	attack := func(stage string) {
		for _, sock := range []string{m.Socket, filepath.Join(cfg.MuxDir, ctlName)} {
			attackSocket(t, bin, sock, stage)
		}
	}
	attack("0700 directory")
	os.Chmod(cfg.MuxDir, 0o711)
	os.Chmod(m.Socket, 0o666)
	os.Chmod(filepath.Join(cfg.MuxDir, ctlName), 0o666)
	attack("directory and sockets open to all")
	os.Chmod(cfg.MuxDir, 0o700)
}

// attackSocket runs bin as uid 65534 against sock (attackMux).
func attackSocket(t *testing.T, bin, sock, stage string) {
	{
		cmd := exec.Command(bin)
		cmd.Env = []string{"HERD_MUX_ATTACK=" + sock}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		switch {
		case strings.Contains(string(out), "ATTACK-OK"):
			t.Errorf("%s: uid 65534 ran a command through the mux:\n%s", stage, out)
		case !strings.Contains(string(out), "ATTACK-REFUSED"):
			t.Errorf("%s: the attacker did not run as intended (%v):\n%s", stage, err, out)
		default:
			t.Logf("%s: %s: %s", stage, filepath.Base(sock), strings.TrimSpace(string(out)))
		}
	}
}

// attackMux is the attacker's side: dial the socket and try an SSH
// handshake, which the mux never starts with another uid: ATTACK-OK if it
// does, and then it also runs id if the socket is a host's.
func attackMux(path string) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		println("ATTACK-REFUSED dial:", err.Error())
		os.Exit(0)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	sc, chans, reqs, err := ssh.NewClientConn(conn, "mux", &ssh.ClientConfig{User: "root", HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		println("ATTACK-REFUSED handshake:", err.Error())
		os.Exit(0)
	}
	c := ssh.NewClient(sc, chans, reqs)
	out := []byte("(no session)")
	if s, err := c.NewSession(); err == nil {
		out, _ = s.CombinedOutput("id")
	}
	println("ATTACK-OK", string(out))
	os.Exit(0)
}
