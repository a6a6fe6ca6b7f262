package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer the test may read while herd writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits (bounded) until herd has printed want.
func (b *syncBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(b.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("herd never printed %q:\n%s", want, b)
		}
	}
}

// startHerd runs herd (this test binary under that name) in dir.
func startHerd(t *testing.T, dir string, args ...string) (cmd *exec.Cmd, out *syncBuffer, exited chan error) {
	t.Helper()
	out = &syncBuffer{}
	cmd = exec.Command(herdCommand(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "NO_COLOR=1")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, out, exited
}

// TestInterruptEndsPolicyEvaluation: a policy looping for ever (the step
// limit raised out of reach) is stopped by SIGINT or SIGTERM at once.
func TestInterruptEndsPolicyEvaluation(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		sig        syscall.Signal
	}{
		{"SIGINT in the top level", "top.star", syscall.SIGINT},
		{"SIGTERM in a role's main", "main.star", syscall.SIGTERM},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "top.star"), []byte("x = []\nprint(\"looping\")\nfor i in range(1000000000):\n    x.append(i)\n    x.pop()\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "main.star"), []byte("def main(h):\n    print(\"looping\")\n    for i in range(1000000000):\n        pass\nrole(\"r\", main = main)\n"), 0o644)
			cmd, out, exited := startHerd(t, dir, "apply", tt.file, "--local", "--max-steps", "1000000000000", "--state-dir", dir)
			out.waitFor(t, "looping")
			time.Sleep(200 * time.Millisecond) // well into the loop
			select {
			case err := <-exited:
				t.Fatalf("herd ended before the signal: %v\n%s", err, out)
			default:
			}
			cmd.Process.Signal(tt.sig)
			sent := time.Now()
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				t.Fatalf("herd still evaluating 5 s after %v", tt.sig)
			}
			t.Logf("exited %v after %v", cmd.ProcessState.ExitCode(), time.Since(sent).Round(time.Millisecond))
			if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Errorf("exit %d, want %d\n%s", code, exitInterrupted, out)
			}
			if !strings.Contains(out.String(), tt.file+":") || !strings.Contains(out.String(), "interrupted") {
				t.Errorf("want the file:line where evaluation was interrupted:\n%s", out)
			}
		})
	}
}
