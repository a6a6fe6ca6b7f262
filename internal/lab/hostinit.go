package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// initEnv carries the host init configuration to the re-executed binary. A
// lab host's first process is this package's own binary (the test binary or
// herd-lab), re-executed as pid 1 of the host's new namespaces: building the
// root there in Go needs no shell, no helper program, and gives the host an
// init that reaps orphans, so killing it tears the whole host down at once.
const initEnv = "HERD_LAB_INIT"

// initConfig is what the host init needs to build its root.
type initConfig struct {
	Hostname string `json:"hostname"`
	Root     string `json:"root"`  // overlay mount point (controller path)
	Upper    string `json:"upper"` // overlay upper layer
	Work     string `json:"work"`  // overlay work dir
}

func init() {
	if cfg := os.Getenv(initEnv); cfg != "" {
		os.Exit(runHostInit(cfg))
	}
}

// runHostInit builds the host's root, reports "ok" (or the error) on stdout,
// then stays as the host's pid 1 until killed.
func runHostInit(raw string) int {
	report := func(msg string) { fmt.Fprintln(os.Stdout, msg) }
	if os.Getpid() != 1 {
		report("error: " + initEnv + " set but not pid 1 of a new pid namespace")
		return 2
	}
	var cfg initConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		report("error: bad init config: " + err.Error())
		return 2
	}
	os.Unsetenv(initEnv)
	// Ignore the signals a stray `kill` inside the host could send to pid 1;
	// teardown uses SIGKILL, which cannot be caught.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	if err := buildRoot(cfg); err != nil {
		report("error: " + err.Error())
		return 1
	}
	report("ok")
	devnull, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err == nil {
		unix.Dup2(int(devnull.Fd()), 1)
	}
	reapForever()
	return 0
}

// buildRoot mounts the overlay root and the pseudo filesystems a login needs,
// sets the hostname and chroots into the result.
func buildRoot(c initConfig) error {
	// Nothing we mount may leak to the controller's mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	opts := "lowerdir=/,upperdir=" + c.Upper + ",workdir=" + c.Work
	if err := unix.Mount("herd-lab", c.Root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", c.Root, err)
	}
	r := func(p string) string { return filepath.Join(c.Root, p) }
	type mnt struct {
		src, dst, fstype string
		flags            uintptr
		data             string
	}
	const nsd = unix.MS_NOSUID | unix.MS_NODEV
	mounts := []mnt{
		{"proc", "/proc", "proc", nsd | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", nsd | unix.MS_NOEXEC | unix.MS_RDONLY, ""},
		{"herd-lab-dev", "/dev", "tmpfs", unix.MS_NOSUID, "mode=0755,size=1m"},
		{"herd-lab-run", "/run", "tmpfs", nsd, "mode=0755,size=64m"},
		{"herd-lab-tmp", "/tmp", "tmpfs", nsd, "mode=1777,size=512m"},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(r(m.dst), 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, r(m.dst), m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dst, err)
		}
	}
	if err := populateDev(r("/dev")); err != nil {
		return err
	}
	for _, d := range []string{"/run/sshd", "/run/lock"} {
		if err := os.MkdirAll(r(d), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	// A bastion must not route between its links: the lab's topology claims
	// depend on it. New namespaces may inherit forwarding from the root one.
	if err := os.WriteFile(r("/proc/sys/net/ipv4/ip_forward"), []byte("0\n"), 0); err != nil {
		return fmt.Errorf("disable ip_forward: %w", err)
	}
	if err := unix.Chroot(c.Root); err != nil {
		return fmt.Errorf("chroot %s: %w", c.Root, err)
	}
	return unix.Chdir("/")
}

// populateDev gives the host a minimal /dev: the usual character devices
// (bound from the real ones), its own devpts instance and /dev/shm.
func populateDev(dev string) error {
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		p := filepath.Join(dev, name)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+name, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", name, err)
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return fmt.Errorf("mount devpts: %w", err)
	}
	if err := unix.Mount("herd-lab-shm", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=64m"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	links := map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return nil
}

// reapForever collects orphans, as pid 1 must, or exited daemons and
// sessions would stay zombies for the lab's lifetime.
func reapForever() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD)
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		<-sigs
	}
}
