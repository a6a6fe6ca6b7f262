package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testConfig reads no ssh_config and ignores any agent of the test runner.
func testConfig() Config {
	return Config{SSHConfigFile: "none", NoAgent: true, ConnectTimeout: 10 * time.Second}
}

// untilOutputCloses runs until its stdout goes away, so a test's remote
// command cannot outlive the test even when sshd orphans it.
const untilOutputCloses = "while echo tick; do sleep 0.1; done"

// run executes command and collects its output.
func run(t *testing.T, c *Client, command string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Start(ctx, command)
	if err != nil {
		return "", "", err
	}
	defer s.Close()
	return collect(s)
}

func collect(s *Session) (stdout, stderr string, err error) {
	s.Stdin.Close()
	var out, errb []byte
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); errb, _ = io.ReadAll(s.Stderr) }()
	out, _ = io.ReadAll(s.Stdout)
	wg.Wait()
	return string(out), string(errb), s.Wait()
}

func TestExecReportsOutputAndExitStatus(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	p := NewPool(testConfig())
	defer p.Close()
	c, err := p.Get(context.Background(), sshd.target("web1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		command        string
		stdout, stderr string
		code           int // -1: success
		signal         string
	}{
		{command: "echo hello; echo oops >&2", stdout: "hello\n", stderr: "oops\n", code: -1},
		{command: "whoami", stdout: "root\n", code: -1},
		{command: "exit 3", code: 3},
		{command: "exit 97", code: 97},
		{command: "kill -TERM $$", code: 128 + 15, signal: "TERM"},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			stdout, stderr, err := run(t, c, tt.command)
			if stdout != tt.stdout || stderr != tt.stderr {
				t.Errorf("stdout %q stderr %q, want %q and %q", stdout, stderr, tt.stdout, tt.stderr)
			}
			var exit *ExitError
			switch {
			case tt.code == -1 && err != nil:
				t.Errorf("err = %v, want success", err)
			case tt.code != -1 && !errors.As(err, &exit):
				t.Errorf("err = %v, want *ExitError", err)
			case tt.code != -1 && (exit.Code != tt.code || exit.Signal != tt.signal):
				t.Errorf("exit = %+v, want code %d signal %q", exit, tt.code, tt.signal)
			}
		})
	}
}

func TestStdinReachesTheCommand(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	p := NewPool(testConfig())
	defer p.Close()
	c, err := p.Get(context.Background(), sshd.target("web1"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Start(context.Background(), "tr a-z A-Z")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	io.WriteString(s.Stdin, "shout\n")
	stdout, _, err := collect(s)
	if stdout != "SHOUT\n" || err != nil {
		t.Errorf("got %q, %v; want \"SHOUT\\n\", nil", stdout, err)
	}
}

func TestHostKeyChecking(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(otherPub)
	empty := filepath.Join(t.TempDir(), "known_hosts_empty")
	os.WriteFile(empty, nil, 0o600)
	missing := filepath.Join(t.TempDir(), "does_not_exist")
	changed := sshd.knownHostsFile(other)
	fp := ssh.FingerprintSHA256(sshd.hostKeys[0])

	tests := []struct {
		name       string
		knownHosts []string
		check      bool
		wantErr    error
		wantInErr  []string
	}{
		{name: "known host connects", knownHosts: []string{sshd.knownHostsFile()}, check: true},
		{name: "hashed known_hosts entry connects", knownHosts: []string{hashedKnownHosts(t, sshd)}, check: true},
		{name: "unknown host is refused with its fingerprint and the fix", knownHosts: []string{empty}, check: true,
			wantErr: ErrUnknownHostKey,
			wantInErr: []string{"host web1 (127.0.0.1:" + strconv.Itoa(sshd.port) + ")", "ED25519 " + fp,
				"ssh-keyscan -p " + strconv.Itoa(sshd.port) + " 127.0.0.1 >> " + empty, "--strict-host-keys=accept-new"}},
		{name: "missing known_hosts file means unknown host", knownHosts: []string{missing}, check: true,
			wantErr: ErrUnknownHostKey, wantInErr: []string{fp}},
		{name: "changed key is refused naming file and line", knownHosts: []string{changed}, check: true,
			wantErr:   ErrHostKeyChanged,
			wantInErr: []string{changed + ":1", "ED25519 " + fp, ssh.FingerprintSHA256(other), "ssh-keygen -R"}},
		{name: "check_host_keys=False accepts any key", knownHosts: []string{changed}, check: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPool(testConfig())
			defer p.Close()
			target := sshd.target("web1")
			target.KnownHosts, target.CheckHostKeys = tt.knownHosts, tt.check
			c, err := p.Get(context.Background(), target)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if c.HostKey() != "ED25519 "+fp {
					t.Errorf("HostKey() = %q, want the server's fingerprint", c.HostKey())
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func hashedKnownHosts(t *testing.T, sshd *testSSHD) string {
	line := knownHostsLine(sshd, true)
	p := filepath.Join(t.TempDir(), "known_hosts_hashed")
	if err := os.WriteFile(p, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHostKeyAlgorithmsFollowKnownHosts: the server prefers RSA, but we only
// know its ED25519 key; asking for ED25519 avoids a false "key changed".
func TestHostKeyAlgorithmsFollowKnownHosts(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{hostKeyTypes: []string{"rsa", "ed25519"}})
	for _, known := range sshd.hostKeys {
		t.Run(known.Type(), func(t *testing.T) {
			p := NewPool(testConfig())
			defer p.Close()
			target := sshd.target("web1")
			target.KnownHosts = []string{sshd.knownHostsFile(known)}
			c, err := p.Get(context.Background(), target)
			if err != nil {
				t.Fatal(err)
			}
			if want := keyName(known); c.HostKey() != want {
				t.Errorf("server presented %s, want %s", c.HostKey(), want)
			}
		})
	}
}

func TestAuthFailureListsWhatWasTried(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	keyFile := filepath.Join(t.TempDir(), "id_stranger")
	os.WriteFile(keyFile, marshalPrivate(stranger), 0o600)

	p := NewPool(testConfig())
	defer p.Close()
	target := sshd.target("web1")
	target.KeyFiles = []string{keyFile}
	target.Password = "s3cret-never-shown"
	_, err := p.Get(context.Background(), target)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("err = %v, want ErrAuthFailed", err)
	}
	for _, s := range []string{"host web1", `user "root"`, keyFile, "password"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the password: %q", err)
	}
}

func TestMissingExplicitKeyFileIsAnError(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	p := NewPool(testConfig())
	defer p.Close()
	target := sshd.target("web1")
	target.KeyFiles = []string{"/nonexistent/id_herd"}
	_, err := p.Get(context.Background(), target)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/id_herd does not exist") {
		t.Fatalf("err = %v, want a missing key file error", err)
	}
}

func TestConnectionRefusedNamesHostAndPort(t *testing.T) {
	requireSSHD(t)
	port := freePort(t)
	p := NewPool(testConfig())
	defer p.Close()
	_, err := p.Get(context.Background(), Target{Name: "db1", Address: "127.0.0.1", Port: port, CheckHostKeys: true})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	want := "host db1 (127.0.0.1:" + strconv.Itoa(port) + "): host unreachable: connection refused; is sshd running and listening on port " + strconv.Itoa(port)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q\nwant it to contain %q", err, want)
	}
}

func TestPoolReusesOneConnectionPerTarget(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	p := NewPool(testConfig())
	defer p.Close()
	var dials atomic.Int32
	p.onDial = func(*endpoint) { dials.Add(1) }
	target := sshd.target("web1")

	var wg sync.WaitGroup
	clients := make([]*Client, 8)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Get(context.Background(), target)
			if err != nil {
				t.Error(err)
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	for _, c := range clients {
		if c != clients[0] {
			t.Fatalf("Get returned different clients for one target")
		}
	}
	other := target
	other.User = "nobody" // another login is another connection, even to the same host
	if _, err := p.Get(context.Background(), other); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("login as nobody: err = %v, want ErrAuthFailed", err)
	}
	if got := dials.Load(); got != 2 {
		t.Errorf("%d dials, want 1 for root plus 1 for nobody", got)
	}
}

func TestPoolBoundsConcurrentDials(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	cfg := testConfig()
	cfg.MaxConns = 2
	p := NewPool(cfg)
	defer p.Close()
	var inFlight, peak atomic.Int32
	p.onDial = func(*endpoint) {
		n := inFlight.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		inFlight.Add(-1)
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Get(context.Background(), sshd.target("web"+strconv.Itoa(i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := peak.Load(); got != 2 {
		t.Errorf("peak concurrent dials = %d, want MaxConns = 2", got)
	}
}

func TestByteCountersGrowWithTraffic(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	p := NewPool(testConfig())
	defer p.Close()
	c, err := p.Get(context.Background(), sshd.target("web1"))
	if err != nil {
		t.Fatal(err)
	}
	sent0, recv0 := c.BytesSent(), c.BytesReceived()
	if sent0 == 0 || recv0 == 0 {
		t.Fatalf("handshake counted sent=%d received=%d, want both > 0", sent0, recv0)
	}
	s, err := c.Start(context.Background(), "wc -c; head -c 200000 /dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Stdin.Write(make([]byte, 100000))
	stdout, _, err := collect(s)
	if err != nil || !strings.HasPrefix(stdout, "100000\n") {
		t.Fatalf("got %.20q, %v", stdout, err)
	}
	if sent := c.BytesSent() - sent0; sent < 100000 {
		t.Errorf("sent %d bytes, want ≥ 100000", sent)
	}
	if recv := c.BytesReceived() - recv0; recv < 200000 {
		t.Errorf("received %d bytes, want ≥ 200000", recv)
	}
}

func TestKeepAliveClosesAFrozenConnection(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	cfg := testConfig()
	cfg.KeepAlive = 100 * time.Millisecond
	p := NewPool(cfg)
	defer p.Close()
	c, err := p.Get(context.Background(), sshd.target("web1"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Start(context.Background(), untilOutputCloses)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.Sleep(300 * time.Millisecond) // keepalives answered: still alive
	if c.isClosed() {
		t.Fatal("connection closed although the host answers keepalives")
	}
	sshd.signalAll(syscall.SIGSTOP)
	defer sshd.signalAll(syscall.SIGCONT)

	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no answer to keepalives") {
			t.Errorf("Wait() = %v, want a keepalive failure", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session still waiting 5s after the host froze")
	}
	if !c.isClosed() {
		t.Error("client not marked closed")
	}
	// Once the host is back, the pool replaces the dead connection.
	sshd.signalAll(syscall.SIGCONT)
	c2, err := p.Get(context.Background(), sshd.target("web1"))
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c {
		t.Fatal("Get returned the dead connection")
	}
	if out, _, err := run(t, c2, "echo back"); err != nil || out != "back\n" {
		t.Errorf("new connection: %q, %v", out, err)
	}
}

// TestConnectTimeoutCoversTheHandshake: a port that accepts but never
// speaks SSH (a hung sshd, a tarpit) fails within ConnectTimeout.
func TestConnectTimeoutCoversTheHandshake(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg := testConfig()
	cfg.ConnectTimeout = 300 * time.Millisecond
	cfg.DialRetries = -1 // retries: retry_test.go
	p := NewPool(cfg)
	defer p.Close()
	port := l.Addr().(*net.TCPAddr).Port
	began := time.Now()
	_, err = p.Get(context.Background(), Target{Name: "tarpit", Address: "127.0.0.1", Port: port, CheckHostKeys: true})
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("took %s with a 300ms timeout", took)
	}
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "SSH handshake did not finish within 300ms") {
		t.Errorf("err = %v, want a handshake timeout naming connect_timeout", err)
	}
}

func knownHostsLine(sshd *testSSHD, hashed bool) string {
	host := knownhosts.Normalize(sshd.addr())
	if hashed {
		host = knownhosts.HashHostname(host)
	}
	return knownhosts.Line([]string{host}, sshd.hostKeys[0]) + "\n"
}
