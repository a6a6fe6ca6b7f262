package lab

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// reachable reports whether the host's sshd accepts a TCP connection
// within timeout.
func reachable(h *Host, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Addr, "22"), timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// The faults use host3 only, so the other tests see healthy hosts.
func TestFaults(t *testing.T) {
	l := Shared(t)
	h := l.Host("host3")
	ctx := context.Background()

	t.Run("stop and start sshd", func(t *testing.T) {
		if err := h.StopSSHD(); err != nil {
			t.Fatal(err)
		}
		if reachable(h, time.Second) {
			t.Fatal("sshd still accepts connections after StopSSHD")
		}
		if err := h.StopSSHD(); err != nil {
			t.Errorf("stopping a stopped sshd: %v", err)
		}
		if err := h.StartSSHD(); err != nil {
			t.Fatal(err)
		}
		c := dial(t, l, h, "root")
		if out, err := runSession(t, c, "hostname", ""); err != nil || out != h.Name {
			t.Fatalf("after StartSSHD: %q, %v", out, err)
		}
		if err := h.RestartSSHD(); err != nil {
			t.Fatal(err)
		}
		if !reachable(h, time.Second) {
			t.Fatal("sshd does not accept connections after RestartSSHD")
		}
	})

	t.Run("cut and restore the link", func(t *testing.T) {
		if err := h.CutLink(); err != nil {
			t.Fatal(err)
		}
		if reachable(h, 500*time.Millisecond) {
			t.Fatal("host reachable with its link cut")
		}
		if err := h.RestoreLink(); err != nil {
			t.Fatal(err)
		}
		if !waitFor(5*time.Second, func() bool { return reachable(h, 200*time.Millisecond) }) {
			t.Fatal("host unreachable after RestoreLink")
		}
	})

	t.Run("full disk", func(t *testing.T) {
		const dir = "/var/lib/herd-lab-full"
		if err := h.FillDisk(dir, 64<<10); err != nil {
			t.Fatal(err)
		}
		c := dial(t, l, h, "root")
		out, err := runSession(t, c, "echo data > "+dir+"/new", "")
		if err == nil || !strings.Contains(out, "No space left") {
			t.Errorf("write to a full disk: %q, %v; want ENOSPC", out, err)
		}
		if err := h.FreeDisk(dir); err != nil {
			t.Fatal(err)
		}
		if out, err := runSession(t, c, "echo data > "+dir+"/new", ""); err != nil {
			t.Errorf("write after FreeDisk: %q, %v", out, err)
		}
	})

	t.Run("kill by pattern on one host only", func(t *testing.T) {
		other := l.Host("host2")
		const sleeper = "sleep 4242"
		for _, x := range []*Host{h, other} {
			if _, err := x.Exec(ctx, "/bin/sh", "-c", sleeper+" >/dev/null 2>&1 &"); err != nil {
				t.Fatal(err)
			}
		}
		n, err := h.Kill("^" + sleeper + "$")
		if err != nil || n != 1 {
			t.Fatalf("Kill on %s = %d, %v; want 1 process", h.Name, n, err)
		}
		if _, err := h.Exec(ctx, "pgrep", "-f", "^"+sleeper+"$"); err == nil {
			t.Errorf("%s still runs %q", h.Name, sleeper)
		}
		if _, err := other.Exec(ctx, "pgrep", "-f", "^"+sleeper+"$"); err != nil {
			t.Errorf("killing on %s also killed %q on %s", h.Name, sleeper, other.Name)
		}
		if n, _ := other.Kill("^" + sleeper + "$"); n != 1 {
			t.Errorf("Kill on %s = %d, want 1", other.Name, n)
		}
	})
}
