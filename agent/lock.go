package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/herd-project/herd/wire"
)

// The run lock keeps two controllers from applying to one machine at once:
// interleaved runs would undo each other's changes and deliver each other's
// refreshes. The agent that applies takes it, an flock on run.lock in its
// state directory, before its first plan and keeps it until it exits (the
// kernel drops it if the agent dies). The lock is on the state directory of
// the identity that applies, because that is where runs collide: a become
// agent (root) locks root's, so two operators logging in as alice and bob
// and both becoming root wait for each other, and an SSH login as root
// collides with a become to root. Check runs change nothing and take no
// lock.

// LockFile is the run lock's name in the state directory.
const LockFile = "run.lock"

// RunLock is a held run lock; the zero value (a lock shared with another
// agent of the same controller run) holds nothing.
type RunLock struct{ f *os.File }

// Release drops the lock. The file stays: removing a lock file lets two
// runs lock two different files of the same name.
func (l *RunLock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// TakeRunLock takes the run lock of stateDir for the run req describes,
// waiting up to req.Wait (wire.DefaultLockWait if req is nil) while another run
// holds it, then failing with who holds it and since when. gone, when
// closed, ends the wait at once (the controller went away).
func TakeRunLock(ctx context.Context, stateDir string, req *wire.RunLock, gone <-chan struct{}) (*RunLock, error) {
	if req == nil {
		req = &wire.RunLock{Wait: wire.DefaultLockWait}
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	path := filepath.Join(stateDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// Who holds it, for those who wait; best effort (a full disk
			// must not stop the run: the flock is the lock).
			if f.Truncate(0) == nil {
				f.WriteAt([]byte(holderLine(req, time.Now())), 0)
			}
			return &RunLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("run lock %s: %w", path, err)
		}
		who, run := readHolder(path)
		if req.Run != "" && run == req.Run {
			f.Close()
			return &RunLock{}, nil // our own run: its roles never overlap on a host
		}
		if time.Since(start) >= req.Wait {
			f.Close()
			return nil, fmt.Errorf("locked by %s: another herd run is applying to this host (waited %s; see --lock-wait)", who, req.Wait.Round(time.Millisecond))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("run lock: %w", ctx.Err())
		case <-gone:
			f.Close()
			return nil, errors.New("run lock: the controller went away while waiting")
		}
	}
}

// holderLine is the lock file's content: who, then the run's token.
func holderLine(req *wire.RunLock, since time.Time) string {
	user, host := clean(req.User), clean(req.Host)
	if user == "" {
		user = "unknown"
	}
	if host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s@%s pid %d since %s\nrun %s\n", user, host, req.Pid, since.UTC().Format(time.RFC3339), clean(req.Run))
}

// readHolder reads who holds the lock at path, as written by holderLine.
func readHolder(path string) (who, run string) {
	b := make([]byte, 512)
	f, err := os.Open(path)
	if err != nil {
		return "an unknown run", ""
	}
	defer f.Close()
	n, _ := f.Read(b)
	lines := strings.Split(string(b[:n]), "\n")
	who = "an unknown run"
	if len(lines) > 0 && strings.Contains(lines[0], " pid ") {
		who = lines[0]
	}
	if len(lines) > 1 {
		run = strings.TrimPrefix(lines[1], "run ")
	}
	return who, run
}

// clean keeps what the controller says about itself to a short, printable
// word: it is written to a file and shown to other operators.
func clean(s string) string {
	var b strings.Builder
	for _, c := range s {
		if b.Len() >= 64 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
