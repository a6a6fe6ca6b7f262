package transport

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const sshdPath = "/usr/sbin/sshd"

// testSSHD is a real OpenSSH sshd on 127.0.0.1 with throwaway keys, logging
// in as root with a generated client key.
type testSSHD struct {
	t        *testing.T
	dir      string
	port     int
	hostKeys []ssh.PublicKey
	cmd      *exec.Cmd
	log      *syncBuffer
}

type sshdOptions struct {
	hostKeyTypes []string // "ed25519" (default), "rsa"
	extraConfig  string
}

func requireSSHD(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a real sshd")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		t.Skip("needs OpenSSH sshd at " + sshdPath)
	}
}

// clientKey is shared by every test sshd so jump chains can use one key.
var clientKey = sync.OnceValues(func() (ssh.Signer, []byte) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		panic(err)
	}
	return signer, marshalPrivate(priv)
})

func marshalPrivate(k crypto.PrivateKey) []byte {
	block, err := ssh.MarshalPrivateKey(k, "herd-test")
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(block)
}

// writeClientKey writes the shared client key into dir and returns its path.
func writeClientKey(t *testing.T, dir string) string {
	_, pemBytes := clientKey()
	p := filepath.Join(dir, "id_test")
	if err := os.WriteFile(p, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startSSHD(t *testing.T, opts sshdOptions) *testSSHD {
	t.Helper()
	requireSSHD(t)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation dir
		t.Fatal(err)
	}
	s := &testSSHD{t: t, dir: t.TempDir(), log: &syncBuffer{}}
	if len(opts.hostKeyTypes) == 0 {
		opts.hostKeyTypes = []string{"ed25519"}
	}
	var cfg strings.Builder
	for _, typ := range opts.hostKeyTypes {
		var priv crypto.Signer
		switch typ {
		case "ed25519":
			_, priv, _ = ed25519.GenerateKey(rand.Reader)
		case "rsa":
			priv, _ = rsa.GenerateKey(rand.Reader, 2048)
		default:
			t.Fatalf("unknown host key type %q", typ)
		}
		p := filepath.Join(s.dir, "host_"+typ)
		if err := os.WriteFile(p, marshalPrivate(priv), 0o600); err != nil {
			t.Fatal(err)
		}
		pub, err := ssh.NewPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		s.hostKeys = append(s.hostKeys, pub)
		fmt.Fprintf(&cfg, "HostKey %s\n", p)
	}
	signer, _ := clientKey()
	auth := filepath.Join(s.dir, "authorized_keys")
	if err := os.WriteFile(auth, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	s.port = freePort(t)
	// Sessions get a HOME of their own: the machine's root may have a
	// .bashrc (pyenv init) that is slow, or stalls on a stale lock left by
	// a session a test killed, and the agent cache stays per test.
	home := filepath.Join(s.dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// sshd keeps the first value of a keyword: extraConfig goes first.
	fmt.Fprintf(&cfg, `%s
SetEnv HOME=`+home+`
ListenAddress 127.0.0.1:%d
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PidFile none
LogLevel VERBOSE
MaxStartups 100
MaxSessions 50
`, opts.extraConfig, s.port, auth)
	conf := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(sshdPath, "-D", "-e", "-f", conf)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Sessions live in their own process groups: kill the whole tree
		// so no test command outlives its sshd.
		s.signalAll(syscall.SIGCONT)
		s.signalAll(syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("sshd on port %d logged:\n%s", s.port, s.log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.addr())
		if err == nil {
			c.Close()
			return s
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd not listening on %s after 10s: %s", s.addr(), s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *testSSHD) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// knownHostsFile writes a known_hosts file trusting this sshd's host keys
// (or the given keys instead) and returns its path.
func (s *testSSHD) knownHostsFile(keys ...ssh.PublicKey) string {
	if len(keys) == 0 {
		keys = s.hostKeys
	}
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(s.addr())}, k) + "\n")
	}
	p := filepath.Join(s.t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// target is a checked login as root to this sshd.
func (s *testSSHD) target(name string) Target {
	return Target{
		Name:          name,
		Address:       "127.0.0.1",
		Port:          s.port,
		User:          "root",
		KeyFiles:      []string{writeClientKey(s.t, s.t.TempDir())},
		CheckHostKeys: true,
		KnownHosts:    []string{s.knownHostsFile()},
	}
}

// signalAll signals sshd and every process it forked: sshd moves each
// connection into its own session, so a process group signal would miss
// them. SIGSTOP makes the host look frozen to the client.
func (s *testSSHD) signalAll(sig syscall.Signal) {
	for _, pid := range descendants(s.cmd.Process.Pid) {
		syscall.Kill(pid, sig)
	}
}

func descendants(root int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may contain spaces.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		f := strings.Fields(rest)
		if len(f) > 1 {
			parent[pid], _ = strconv.Atoi(f[1])
		}
	}
	out := []int{root}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if slices.Contains(out, pp) && !slices.Contains(out, pid) {
				out = append(out, pid)
				changed = true
			}
		}
	}
	return out
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
