package agent

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/plan"
)

// ExitTampered tells the bootstrap script's caller that the cached binary
// did not match its hash and removed itself; the controller then installs a
// fresh copy. Chosen to be unlikely as a shell or signal exit status.
const ExitTampered = bootstrap.ExitAgentCorrupt

// ExitWatched tells the controller that the agent found a program between
// itself and the controller (VerifyUnwatched) and refused to start.
const ExitWatched = bootstrap.ExitAgentWatched

// VerifySelf checks that the running executable has the expected sha256.
// The cache directory is named by hash, so a mismatch means the file was
// modified after install (disk corruption or tampering): it must not run.
func VerifySelf(want string) error {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("open own executable: %w", err)
	}
	defer f.Close()
	got, _, err := plan.HashReader(f)
	if err != nil {
		return fmt.Errorf("hash own executable: %w", err)
	}
	if got != want {
		return fmt.Errorf("agent binary hash %s does not match %s", got[:16], shortHash(want))
	}
	return nil
}

// VerifyUnwatched runs before the agent (or become broker) started by the
// bootstrap says its first word, so before the controller sends a plan or a
// become password. It refuses to start when
//   - the file the bootstrap executed (bootstrap.AgentPathEnv) is not the
//     file running: a wrapper stands at the cached path and started this
//     binary from somewhere else;
//   - a tracer is attached (it could read every message);
//   - stdin or stdout is not a pipe or socket, or another process than the
//     agent's parent (sshd) holds either end of them: something reads or
//     writes the protocol stream on the way (tee, script, a wrapper).
//
// All of it runs as the login user, so it catches a careless wrapper, not
// an attacker who owns that account: such an attacker can replace the
// whole agent with one that lies (see the README's threat model).
//
// want is the agent's hash: a cached path that is another file with exactly
// that content is accepted, since a concurrent run may have installed an
// identical copy over it (rename) between this one's exec and this check.
func VerifyUnwatched(want string) error {
	path := os.Getenv(bootstrap.AgentPathEnv)
	os.Unsetenv(bootstrap.AgentPathEnv) // not for the commands the agent runs
	if path == "" {
		return fmt.Errorf("started without %s: not by herd's bootstrap (a wrapper around the cached agent?)", bootstrap.AgentPathEnv)
	}
	if err := checkExecuted(path, want); err != nil {
		return err
	}
	if pid := tracerPid(); pid != 0 {
		return fmt.Errorf("process %d (%s) is tracing the agent", pid, cmdline(pid))
	}
	for fd := 0; fd <= 1; fd++ {
		if err := checkStream(fd); err != nil {
			return err
		}
	}
	return nil
}

// checkStream refuses a stream fd that is not a pipe or socket, or that
// another process than this one and its parent holds (as far as this user
// can see: other users' processes and non-dumpable ones, such as sshd's
// own, are not readable).
func checkStream(fd int) error {
	name := [...]string{"stdin", "stdout"}[fd]
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if !strings.HasPrefix(link, "pipe:") && !strings.HasPrefix(link, "socket:") {
		return fmt.Errorf("%s is %s, not the pipe or socket sshd gives a command: something stands between the agent and the controller", name, link)
	}
	me, parent := os.Getpid(), os.Getppid()
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == me || pid == parent {
			continue
		}
		dir := "/proc/" + p.Name() + "/fd/"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, f := range fds {
			if l, err := os.Readlink(dir + f.Name()); err == nil && l == link {
				return fmt.Errorf("process %d (%s) also holds the agent's %s (%s): something reads or writes the protocol stream on the way", pid, cmdline(pid), name, link)
			}
		}
	}
	return nil
}

func tracerPid() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, ln := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(ln, "TracerPid:"); ok {
			pid, _ := strconv.Atoi(strings.TrimSpace(v))
			return pid
		}
	}
	return 0
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// checkExecuted refuses when path, the file the bootstrap executed, is
// neither the running executable nor a file with the agent's exact content.
func checkExecuted(path, want string) error {
	self, err := os.Stat("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("stat own executable: %w", err)
	}
	if fi, err := os.Stat(path); err != nil || (!os.SameFile(fi, self) && !hasHash(path, want)) {
		exe, _ := os.Readlink("/proc/self/exe")
		return fmt.Errorf("the bootstrap executed %s but the agent runs from %s: a wrapper stands at the cached path", path, exe)
	}
	return nil
}

// hasHash reports whether the regular file at path has sha256 want.
func hasHash(path, want string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	got, _, err := plan.HashReader(f)
	return err == nil && got == want
}
