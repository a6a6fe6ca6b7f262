package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestAgentKeys logs in with a key held only by a real ssh-agent.
func TestAgentKeys(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Skip("needs ssh-agent")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agentCmd.Process.Kill(); agentCmd.Wait() })
	// The socket file exists from bind(); wait until the agent listens.
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			t.Fatal("ssh-agent socket did not appear")
		}
		time.Sleep(10 * time.Millisecond)
	}
	add := exec.Command("ssh-add", writeClientKey(t, dir))
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	t.Setenv("HOME", dir) // no default key files

	for _, noAgent := range []bool{false, true} {
		cfg := testConfig()
		cfg.NoAgent = noAgent
		p := NewPool(cfg)
		target := sshd.target("web1")
		target.KeyFiles = nil
		_, err := p.Get(context.Background(), target)
		p.Close()
		switch {
		case !noAgent && err != nil:
			t.Errorf("with the agent: %v", err)
		case noAgent && !errors.Is(err, ErrAuthFailed):
			t.Errorf("with NoAgent: err = %v, want ErrAuthFailed", err)
		}
	}
}

// TestEncryptedKeyIsSkippedWithANote: an encrypted key cannot be used
// without a passphrase; the run goes on with other methods.
func TestEncryptedKeyIsSkippedWithANote(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	dir := t.TempDir()
	enc := filepath.Join(dir, "id_encrypted")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "pass phrase", "-f", enc).CombinedOutput(); err != nil {
		t.Skipf("ssh-keygen: %v %s", err, out)
	}
	var notes []string
	cfg := testConfig()
	cfg.Debugf = func(f string, a ...any) { notes = append(notes, f) }
	p := NewPool(cfg)
	defer p.Close()
	target := sshd.target("web1")
	target.KeyFiles = append([]string{enc}, target.KeyFiles...)
	if _, err := p.Get(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "it is encrypted") {
		t.Errorf("debug notes %q lack the skipped key", notes)
	}
}

// throwawayUser creates a local user with a password for the duration of
// the test; sshd (UsePAM no) checks it against /etc/shadow.
func throwawayUser(t *testing.T) (name, password string) {
	for _, tool := range []string{"useradd", "userdel", "chpasswd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip("password auth test needs " + tool)
		}
	}
	b := make([]byte, 4)
	rand.Read(b)
	name = "herdpw" + hex.EncodeToString(b)
	rand.Read(b)
	password = "pw-" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "-M", "-d", "/tmp", "-s", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Skipf("useradd: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(name + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v %s", err, out)
	}
	return name, password
}

func TestPasswordAuth(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{extraConfig: "PasswordAuthentication yes"})
	user, password := throwawayUser(t)
	t.Setenv("HOME", t.TempDir()) // no default key files

	tests := []struct {
		name       string
		password   string
		prompt     string // "" = no prompt
		wantErr    bool
		wantPrompt int32
	}{
		{name: "inventory password", password: password},
		{name: "prompted after keys failed", prompt: password, wantPrompt: 1},
		{name: "wrong password fails without showing it", password: "wrong-" + password, wantErr: true},
		{name: "inventory password wins over the prompt", password: password, prompt: "unused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prompts atomic.Int32
			cfg := testConfig()
			if tt.prompt != "" {
				cfg.PasswordPrompt = func(target string) (string, error) {
					prompts.Add(1)
					if target != "web1" {
						t.Errorf("prompt for %q, want web1", target)
					}
					return tt.prompt, nil
				}
			}
			p := NewPool(cfg)
			defer p.Close()
			target := sshd.target("web1")
			target.User, target.Password = user, tt.password
			c, err := p.Get(context.Background(), target)
			if tt.wantErr {
				if !errors.Is(err, ErrAuthFailed) || strings.Contains(err.Error(), tt.password) {
					t.Fatalf("err = %v, want ErrAuthFailed without the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out, _, err := run(t, c, "id -un"); err != nil || out != user+"\n" {
				t.Errorf("id -un = %q, %v", out, err)
			}
			if got := prompts.Load(); got != tt.wantPrompt {
				t.Errorf("prompted %d times, want %d", got, tt.wantPrompt)
			}
		})
	}
}

// TestPromptNotUsedWhenKeysWork: the prompt is a fallback, never asked when
// the key logs in.
func TestPromptNotUsedWhenKeysWork(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{extraConfig: "PasswordAuthentication yes"})
	cfg := testConfig()
	cfg.PasswordPrompt = func(string) (string, error) {
		t.Error("prompted although the key works")
		return "", errors.New("no")
	}
	p := NewPool(cfg)
	defer p.Close()
	if _, err := p.Get(context.Background(), sshd.target("web1")); err != nil {
		t.Fatal(err)
	}
}
