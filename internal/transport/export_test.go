package transport

import (
	"context"
	"os"
	"testing"
)

// SSHStarterForTests starts commands over a real SSH connection to an
// in-process-started OpenSSH sshd, for the external tests in this directory
// (the bootstrap's); nil when this machine cannot run one (not root, no sshd).
func SSHStarterForTests(t *testing.T) func(ctx context.Context, cmd string) (*Session, error) {
	if os.Geteuid() != 0 {
		return nil
	}
	if _, err := os.Stat(sshdPath); err != nil {
		return nil
	}
	sshd := startSSHD(t, sshdOptions{})
	p := NewPool(testConfig())
	t.Cleanup(func() { p.Close() })
	c, err := p.Get(context.Background(), sshd.target("web1"))
	if err != nil {
		t.Fatal(err)
	}
	return c.Start
}
