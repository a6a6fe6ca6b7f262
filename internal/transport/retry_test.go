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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// flakyFront listens on a port of its own, closes the first drop
// connections at once (as sshd does past MaxStartups) and forwards the
// rest to the real sshd at to.
func flakyFront(t *testing.T, to string, drop int32) (port int, accepted *atomic.Int32) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = &atomic.Int32{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if accepted.Add(1) <= drop {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer s.Close()
				go io.Copy(s, c)
				io.Copy(c, s)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, accepted
}

type retryNote struct {
	target            string
	attempt, attempts int
	wait              time.Duration
}

func TestDialRetriesPassingFailuresWithBackoff(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	tests := []struct {
		name      string
		drop      int32
		retries   int
		wantErr   bool
		wantNotes []int // attempts announced
	}{
		{"two dropped handshakes, then through", 2, 0, false, []int{2, 3}},
		{"dropped more often than retried", 5, 1, true, []int{2}},
		{"no retries asked", 1, -1, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port, accepted := flakyFront(t, sshd.addr(), tc.drop)
			cfg := testConfig()
			cfg.DialRetries = tc.retries
			cfg.ConnectTimeout = 5 * time.Second
			var mu sync.Mutex
			var notes []retryNote
			cfg.OnDialRetry = func(target string, attempt, attempts int, wait time.Duration, err error) {
				mu.Lock()
				notes = append(notes, retryNote{target, attempt, attempts, wait})
				mu.Unlock()
			}
			p := NewPool(cfg)
			defer p.Close()
			target := sshd.target("web1")
			target.Port = port
			// The known_hosts entry names the real port; the front's port
			// carries the same key.
			target.CheckHostKeys = false
			began := time.Now()
			c, err := p.Get(context.Background(), target)
			if tc.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if err == nil && c.HostKey() == "" {
				t.Fatalf("the retried connection has no host key")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(notes) != len(tc.wantNotes) {
				t.Fatalf("retries announced: %+v, want attempts %v", notes, tc.wantNotes)
			}
			var slept time.Duration
			for i, n := range notes {
				if n.target != "web1" || n.attempt != tc.wantNotes[i] {
					t.Errorf("retry %d: %+v, want target web1 attempt %d", i, n, tc.wantNotes[i])
				}
				if min := 500 * time.Millisecond << i; n.wait < min || n.wait > min*5/4 {
					t.Errorf("retry %d waits %s, want %s..%s (exponential back-off)", i, n.wait, min, min*5/4)
				}
				slept += n.wait
			}
			if took := time.Since(began); took < slept {
				t.Errorf("took %s, less than the announced pauses %s", took, slept)
			}
			if want := int32(len(tc.wantNotes) + 1); accepted.Load() != want {
				t.Errorf("%d connections reached the host, want %d", accepted.Load(), want)
			}
		})
	}
}

// A refused key or host key is final: trying again would only knock on
// the door again (and lock accounts that count failures).
func TestDialDoesNotRetryAuthOrHostKeyFailures(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	keyFile := filepath.Join(t.TempDir(), "id_stranger")
	os.WriteFile(keyFile, marshalPrivate(stranger), 0o600)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(otherPub)
	badKnown := sshd.knownHostsFile(other)

	for _, tc := range []struct {
		name  string
		tweak func(*Target)
		want  error
	}{
		{"auth", func(tg *Target) { tg.KeyFiles = []string{keyFile} }, ErrAuthFailed},
		{"host key", func(tg *Target) { tg.KnownHosts = []string{badKnown} }, ErrHostKeyChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPool(testConfig())
			defer p.Close()
			var dials atomic.Int32
			p.onDial = func(*endpoint) { dials.Add(1) }
			target := sshd.target("web1")
			tc.tweak(&target)
			_, err := p.Get(context.Background(), target)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if dials.Load() != 1 {
				t.Errorf("%d attempts, want 1", dials.Load())
			}
		})
	}
}

func TestPacerNarrowsOnTimeoutsAndWidensOnSuccess(t *testing.T) {
	p := NewPool(Config{MaxConns: 6, SSHConfigFile: "none"})
	for range 10 {
		p.pace.timeout()
	}
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for len(p.sem) != cap(p.sem)-p.InService() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := p.InService(); got != want {
			t.Fatalf("in service = %d, want %d", got, want)
		}
		if len(p.sem) != cap(p.sem)-want {
			t.Fatalf("%d slots held, want %d", len(p.sem), cap(p.sem)-want)
		}
	}
	waitFor(2) // never below two
	p.pace.success()
	waitFor(3)
	for range 10 {
		p.pace.success()
	}
	waitFor(6)
}
