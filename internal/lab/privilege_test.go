package lab

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// dial opens an x/crypto/ssh connection as user to a flat host.
func dial(t *testing.T, l *Lab, h *Host, user string) *ssh.Client {
	t.Helper()
	cfg, err := l.ClientConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", net.JoinHostPort(h.Addr, "22"), cfg)
	if err != nil {
		t.Fatalf("ssh %s@%s: %v", user, h.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runSession runs cmd with stdin and returns its output (stdout and stderr).
func runSession(t *testing.T, c *ssh.Client, cmd, stdin string) (string, error) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out lockedBuffer
	s.Stdout, s.Stderr, s.Stdin = &out, &out, strings.NewReader(stdin)
	err = s.Run(cmd)
	return strings.TrimSpace(out.String()), err
}

// lockedBuffer collects stdout and stderr, which x/crypto/ssh copies from
// two goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestPrivilegeEscalationAsDocumented(t *testing.T) {
	l := Shared(t)
	h := l.Host("host2")
	pw := l.Passwords.DeployPW
	tests := []struct {
		name, user, cmd, stdin string
		wantOK                 bool
		wantOut                string // substring of the output
	}{
		{"deploy sudo without password", UserDeploy, "sudo -n id -u", "", true, "0"},
		{"deploy doas without password", UserDeploy, "doas -n id -u", "", true, "0"},
		{"deploy-pw sudo refuses without password", UserDeployPW, "sudo -n id -u", "", false, "password is required"},
		{"deploy-pw sudo with password", UserDeployPW, "sudo -S -p '' id -u", pw + "\n", true, "0"},
		{"deploy-pw sudo with wrong password", UserDeployPW, "sudo -S -p '' id -u", "wrong-" + pw + "\n", false, "incorrect password"},
		{"deploy-pw doas refuses without password", UserDeployPW, "doas -n id -u", "", false, "Authentication required"},
		{"root by key", "root", "id -u", "", true, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, l, h, tt.user)
			out, err := runSession(t, c, tt.cmd, tt.stdin)
			if (err == nil) != tt.wantOK || !strings.Contains(out, tt.wantOut) {
				t.Errorf("%s as %s: ok=%v out=%q; want ok=%v and output containing %q", tt.cmd, tt.user, err == nil, out, tt.wantOK, tt.wantOut)
			}
			if strings.Contains(out, pw) {
				t.Errorf("output echoes the password: %q", out)
			}
		})
	}
}

func TestSuNeedsRootsPassword(t *testing.T) {
	l := Shared(t)
	h := l.Host("host2")
	tests := []struct {
		name     string
		password string
		want     string
	}{
		{"right password", l.Passwords.Root, "uid=0"},
		{"wrong password", "not-" + l.Passwords.Root, "Authentication failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, l, h, UserDeploy)
			out := suWithPTY(t, c, tt.password)
			if !strings.Contains(out, tt.want) {
				t.Errorf("su as deploy with %s: output %q, want it to contain %q", tt.name, out, tt.want)
			}
		})
	}
}

// suWithPTY runs su in a pseudo-terminal (su reads passwords only from a
// terminal), types password at the prompt and returns the whole output.
func suWithPTY(t *testing.T, c *ssh.Client, password string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	stdin, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	var mu sync.Mutex
	var out bytes.Buffer
	prompted, drained := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 1024)
		once := sync.Once{}
		for {
			n, err := stdout.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			if strings.Contains(out.String(), "Password:") {
				once.Do(func() { close(prompted) })
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	if err := s.Start("su -c 'id' root"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-prompted:
	case <-time.After(10 * time.Second):
		t.Fatalf("su never asked for a password; output %q", out.String())
	}
	io.WriteString(stdin, password+"\n")
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("su did not finish")
	}
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	return out.String()
}
