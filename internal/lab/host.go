package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// Host is one lab host.
type Host struct {
	Name    string
	Addr    string // IPv4 address of the host's sshd
	Port    int    // always 22
	Via     *Host  // the jump host, nil when the controller reaches Addr directly
	HostKey ssh.PublicKey
	Netns   string // name of its network namespace (ip netns exec works)
	Upper   string // controller path of the overlay upper layer: exactly what changed on the host

	lab    *Lab
	uplink int
	pid    int    // controller pid of the host's init (pid 1 inside)
	start0 uint64 // its start time, against pid reuse
}

// Pid is the controller-side pid of the host's init; its namespaces are the
// host's.
func (h *Host) Pid() int { return h.pid }

// Path is the controller-side path of path p on the host (through
// /proc/<pid>/root), for os functions in tests. Absolute symlinks on the host
// resolve against the controller's root through it: use ReadFile to follow
// them the host's way.
func (h *Host) Path(p string) string {
	return filepath.Join("/proc", strconv.Itoa(h.pid), "root", filepath.Clean("/"+p))
}

// ReadFile reads path p as the host sees it (mounts and symlinks resolved
// inside the host), from the controller side.
func (h *Host) ReadFile(p string) ([]byte, error) {
	root, err := unix.Open(filepath.Join("/proc", strconv.Itoa(h.pid), "root"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	defer unix.Close(root)
	rel := strings.TrimLeft(filepath.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(root, rel, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return nil, fmt.Errorf("host %s: read %s: %w", h.Name, p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("host %s: read %s: %w", h.Name, p, err)
	}
	return b, nil
}

// Exec runs argv inside the host (all its namespaces and its root, as root)
// and returns its standard output. It is for test setup and inspection, not
// for what herd itself should do over SSH.
func (h *Host) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	return h.execIn(ctx, nil, argv...)
}

func (h *Host) execIn(ctx context.Context, stdin []byte, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("host %s: exec: no command", h.Name)
	}
	args := append(h.nsenterArgs(), argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = toolEnv
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("host %s: %s: %w: %s", h.Name, strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (h *Host) nsenterArgs() []string {
	return []string{"-t", strconv.Itoa(h.pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--"}
}

// spawnReq asks the spawner to start a command.
type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

var spawnCh = make(chan spawnReq)

// The spawner starts host inits from one OS thread that never exits:
// Pdeathsig fires when the thread that forked a child dies, and Go retires
// threads at will unless they are locked.
func init() {
	if os.Getenv(initEnv) != "" {
		return
	}
	go func() {
		runtime.LockOSThread()
		for req := range spawnCh {
			req.done <- req.cmd.Start()
		}
	}()
}

// start runs the host's init in new namespaces and names its network
// namespace.
func (h *Host) start(ctx context.Context, persistent bool) error {
	dir := filepath.Join(h.lab.Dir, h.Name)
	cfg := initConfig{Hostname: h.Name, Root: filepath.Join(dir, "root"), Upper: h.Upper, Work: filepath.Join(filepath.Dir(h.Upper), "work")}
	for _, d := range []string{cfg.Root, cfg.Upper, cfg.Work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	raw, _ := json.Marshal(cfg)
	logf, err := os.OpenFile(filepath.Join(dir, "init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	cmd.Args = []string{"herd-lab-init:" + h.lab.Name + "/" + h.Name}
	cmd.Env = append(append([]string{}, toolEnv...), initEnv+"="+string(raw))
	cmd.Dir = "/"
	cmd.Stderr = logf
	// A plain pipe, not StdoutPipe: Wait runs concurrently and must not
	// close it under the reader.
	rd, wr, err := os.Pipe()
	if err != nil {
		return err
	}
	defer rd.Close()
	cmd.Stdout = wr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET,
		Setsid:     true,
	}
	if !persistent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	done := make(chan error)
	spawnCh <- spawnReq{cmd, done}
	err = <-done
	wr.Close()
	if err != nil {
		return fmt.Errorf("start init: %w", err)
	}
	h.pid = cmd.Process.Pid
	h.start0 = startTime(h.pid)
	go cmd.Wait() // reap it when it dies
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(rd).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s != "ok" {
			if s == "" {
				s = "init exited; see " + logf.Name()
			}
			return fmt.Errorf("init: %s", s)
		}
	case <-time.After(10 * time.Second):
		return fmt.Errorf("init did not report ready in 10s; see %s", logf.Name())
	case <-ctx.Done():
		return ctx.Err()
	}
	if out, err := run("ip", "netns", "attach", h.Netns, strconv.Itoa(h.pid)); err != nil {
		return fmt.Errorf("ip netns attach %s: %v: %s", h.Netns, err, out)
	}
	return nil
}
