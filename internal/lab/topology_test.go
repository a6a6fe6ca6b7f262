package lab

import (
	"context"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestRackHostsAreReachableOnlyThroughTheBastion(t *testing.T) {
	l := Shared(t)
	needSSH(t)
	bastion, racktop := l.Host("bastion"), l.Host("racktop")
	tests := []struct {
		host string
		jump string // ssh -J chain
	}{
		{"racktop", "root@" + bastion.Addr},
		{"rack1", "root@" + bastion.Addr + ",root@" + racktop.Addr},
		{"rack2", "root@" + bastion.Addr + ",root@" + racktop.Addr},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			h := l.Host(tt.host)
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Addr, "22"), 2*time.Second); err == nil {
				c.Close()
				t.Fatalf("controller connected to %s (%s) directly", h.Name, h.Addr)
			}
			base := []string{"-i", l.KeyFile, "-o", "UserKnownHostsFile=" + l.KnownHosts}
			// The refused route may time out rather than be refused: a short
			// bound there; the jump through two sshds gets a long one, since a
			// loaded machine delays the banner exchange (seen at load 26).
			if out, err := sshRun(t, l, "", append(base, "-o", "ConnectTimeout=3", "root@"+h.Addr, "true")...); err == nil {
				t.Fatalf("ssh straight to %s succeeded: %s", h.Addr, out)
			}
			out, err := sshRun(t, l, "", append(base, "-o", "ConnectTimeout=30", "-J", tt.jump, "root@"+h.Addr, "hostname")...)
			if err != nil || out != h.Name {
				t.Fatalf("ssh -J %s root@%s hostname = %q, %v; want %s", tt.jump, h.Addr, out, err, h.Name)
			}
		})
	}
	t.Run("no forwarding", func(t *testing.T) {
		for _, h := range []*Host{bastion, racktop} {
			out, err := h.Exec(context.Background(), "cat", "/proc/sys/net/ipv4/ip_forward")
			if err != nil || strings.TrimSpace(string(out)) != "0" {
				t.Errorf("%s: ip_forward = %q, %v; want 0", h.Name, out, err)
			}
		}
		// The bastion itself is one level short of the rack hosts.
		rack1 := l.Host("rack1")
		if out, err := bastion.Exec(context.Background(), "timeout", "2", "bash", "-c", "</dev/tcp/"+rack1.Addr+"/22"); err == nil {
			t.Errorf("bastion reached rack1 directly: %s", out)
		}
	})
}

func TestLatencyProxyAddsTheAskedDelay(t *testing.T) {
	l := Shared(t)
	h := l.Host("host1")
	const oneWay = 90 * time.Millisecond
	addr, stop, err := l.Latency(h, oneWay, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cfg, err := l.ClientConfig("root")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HostKeyCallback = ssh.FixedHostKey(h.HostKey)
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("ssh through the proxy %s: %v", addr, err)
	}
	defer c.Close()
	// A global request with want-reply is exactly one round trip.
	var rtts []time.Duration
	for range 5 {
		start := time.Now()
		if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
			t.Fatal(err)
		}
		rtts = append(rtts, time.Since(start))
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	median, want := rtts[len(rtts)/2], 2*oneWay
	t.Logf("round trips through a %v-each-way proxy: %v (median %v)", oneWay, rtts, median)
	if median < want*8/10 || median > want*12/10 {
		t.Errorf("median round trip %v, want %v ± 20%%", median, want)
	}
	if _, _, err := l.Latency(l.Host("rack1"), oneWay, 0); err == nil {
		t.Error("a latency proxy in front of a rack host (unreachable from the controller) did not fail")
	}
}

func TestBandwidthLimit(t *testing.T) {
	l := Shared(t)
	h := l.Host("host1")
	const rateKBps, size = 512, 512 * 1024
	addr, stop, err := l.Latency(h, 0, rateKBps)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cfg, err := l.ClientConfig("root")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HostKeyCallback = ssh.FixedHostKey(h.HostKey)
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n countingWriter
	s.Stdout = &n
	start := time.Now()
	if err := s.Run("head -c " + strconv.Itoa(size) + " /dev/urandom"); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	got := float64(n) / 1024 / elapsed.Seconds()
	t.Logf("%d bytes in %v through a %d KB/s proxy: %.0f KB/s", int(n), elapsed, rateKBps, got)
	// SSH framing and the session set-up make it a little slower.
	if n != size || got > rateKBps*1.2 || got < rateKBps*0.6 {
		t.Errorf("got %d bytes at %.0f KB/s, want %d at about %d KB/s", int(n), got, size, rateKBps)
	}
}

type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}
