package transport

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestStartLocalMatchesTheSSHSessionShape(t *testing.T) {
	tests := []struct {
		name           string
		argv           []string
		stdin          string
		stdout, stderr string
		code           int // -1: success
		signal         string
	}{
		{name: "streams", argv: []string{"/bin/sh", "-c", "cat; echo err >&2"}, stdin: "in\n", stdout: "in\n", stderr: "err\n", code: -1},
		{name: "exit status", argv: []string{"/bin/sh", "-c", "exit 97"}, code: 97},
		{name: "signal", argv: []string{"/bin/sh", "-c", "kill -TERM $$"}, code: 128 + 15, signal: "TERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := StartLocal(context.Background(), tt.argv)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			io.WriteString(s.Stdin, tt.stdin)
			stdout, stderr, err := collect(s)
			if stdout != tt.stdout || stderr != tt.stderr {
				t.Errorf("stdout %q stderr %q, want %q and %q", stdout, stderr, tt.stdout, tt.stderr)
			}
			var exit *ExitError
			switch {
			case tt.code == -1 && err != nil:
				t.Errorf("err = %v, want success", err)
			case tt.code != -1 && (!errors.As(err, &exit) || exit.Code != tt.code || exit.Signal != tt.signal):
				t.Errorf("err = %v, want code %d signal %q", err, tt.code, tt.signal)
			}
		})
	}
}

// Unlike exec.Cmd.StdoutPipe, output stays readable after Wait, as with SSH.
func TestStartLocalOutputSurvivesWait(t *testing.T) {
	s, err := StartLocal(context.Background(), []string{"/bin/sh", "-c", "echo late"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(s.Stdout)
	if string(out) != "late\n" {
		t.Errorf("after Wait read %q, want \"late\\n\"", out)
	}
}

func TestStartLocalEndsOnCancelAndClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := StartLocal(ctx, []string{"sleep", "60"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Wait() = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled command still running after 5s")
	}

	s, err = StartLocal(context.Background(), []string{"sleep", "60"})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the command")
	}
}

func TestStartLocalMissingProgram(t *testing.T) {
	_, err := StartLocal(context.Background(), []string{"/nonexistent/herd"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/herd") {
		t.Errorf("err = %v, want it to name the program", err)
	}
}

func TestSSHSessionEndsOnCancel(t *testing.T) {
	sshd := startSSHD(t, sshdOptions{})
	p := NewPool(testConfig())
	defer p.Close()
	c, err := p.Get(context.Background(), sshd.target("web1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.Start(ctx, untilOutputCloses)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancel()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "host web1") {
			t.Errorf("Wait() = %v, want context.Canceled naming the host", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled session still running after 5s")
	}
	// The connection itself survives for the next role.
	if out, _, err := run(t, c, "echo still here"); err != nil || out != "still here\n" {
		t.Errorf("after cancel: %q, %v", out, err)
	}
}
