package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Session is a running command with its three streams, the same for SSH and
// local runs. Stdout and Stderr stay readable after Wait returns until they
// report EOF, so callers may Wait first and drain afterwards.
type Session struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	Stderr io.Reader

	wait     func() error
	close    func() error
	waitOnce sync.Once
	waitErr  error
}

// Wait waits for the command to end. A non-zero exit is an *ExitError.
// Calling Wait again returns the same result.
func (s *Session) Wait() error {
	s.waitOnce.Do(func() { s.waitErr = s.wait() })
	return s.waitErr
}

// Close releases the session, ending the command if it still runs.
func (s *Session) Close() error {
	err := s.close()
	if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// StartLocal runs argv as a subprocess, for --local mode and tests. Its
// streams are plain pipes, not exec.Cmd's, so that Wait does not close
// Stdout under a reader the way exec.Cmd.StdoutPipe does, matching SSH.
func StartLocal(ctx context.Context, argv []string) (*Session, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("local: empty command")
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err1 := pipe()
	outR, outW, err2 := pipe()
	errR, errW, err3 := pipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		closeAll()
		return nil, fmt.Errorf("local: %w", err)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("local: %w", err)
	}
	// The child holds its own copies; ours would keep the pipes open.
	inR.Close()
	outW.Close()
	errW.Close()
	name := argv[0]
	exited := make(chan struct{})
	var waitErr error
	go func() {
		defer close(exited)
		err := cmd.Wait()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case ctx.Err() != nil:
			waitErr = fmt.Errorf("local %s: %w", name, ctx.Err())
		case errors.As(err, &exit):
			waitErr = exitErrorOf(exit)
		default:
			waitErr = fmt.Errorf("local %s: %w", name, err)
		}
	}()
	return &Session{
		Stdin:  inW,
		Stdout: outR,
		Stderr: errR,
		wait: func() error {
			<-exited
			return waitErr
		},
		close: func() error {
			inW.Close()
			select {
			case <-exited:
			default:
				cmd.Process.Kill()
				<-exited
			}
			outR.Close()
			errR.Close()
			return nil
		},
	}, nil
}

func exitErrorOf(exit *exec.ExitError) *ExitError {
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := strings.TrimPrefix(unix.SignalName(ws.Signal()), "SIG")
		return &ExitError{Code: 128 + int(ws.Signal()), Signal: sig}
	}
	return &ExitError{Code: exit.ExitCode()}
}
