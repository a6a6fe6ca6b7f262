package lab

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Faults for reliability tests. CutLink and RestoreLink are in net.go,
// StopSSHD, StartSSHD and RestartSSHD in sshd.go.

// fillDiskScript mounts a tmpfs of $2 bytes over $1 (keeping the owner and
// mode of $1, so the same user can still write there) and fills it.
const fillDiskScript = `set -e
mkdir -p "$1"
o=$(stat -c 'uid=%u,gid=%g,mode=%a' "$1")
mount -t tmpfs -o "size=$2,$o" herd-lab-full "$1"
cat /dev/zero > "$1/.herd-lab-fill" 2>/dev/null || true
`

// FillDisk makes directory dir of the host full: a tmpfs of size bytes is
// mounted over it (hiding what was there) and filled, so writes there fail
// with ENOSPC. FreeDisk undoes it.
func (h *Host) FillDisk(dir string, size int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if size < 4096 {
		size = 4096
	}
	_, err := h.Exec(ctx, "/bin/sh", "-c", fillDiskScript, "fill-disk", dir, strconv.FormatInt(size, 10))
	return err
}

// FreeDisk removes the full tmpfs FillDisk put over dir.
func (h *Host) FreeDisk(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A process of the host that has just been told to end (an agent whose
	// controller went away) may still hold a file there for a moment:
	// retry a busy unmount until the deadline, then detach it lazily.
	for {
		_, err := h.Exec(ctx, "umount", dir)
		if err == nil || !strings.Contains(err.Error(), "busy") {
			return err
		}
		select {
		case <-ctx.Done():
			_, err = h.Exec(context.Background(), "umount", "-l", dir)
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL to every process of this host (and of no other) whose
// command line matches the regular expression pattern, as `pkill -9 -f`
// would inside it, and returns how many it killed. The host's init is never
// a match.
func (h *Host) Kill(pattern string) (int, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return 0, fmt.Errorf("host %s: kill: %w", h.Name, err)
	}
	pidns := nsInode(h.pid, "pid")
	if pidns == 0 || !processAlive(h.pid, h.start0) {
		return 0, fmt.Errorf("host %s: not running", h.Name)
	}
	var killed []int
	for _, pid := range allPids() {
		if pid == h.pid || !running(pid) || nsInode(pid, "pid") != pidns {
			continue
		}
		if cl := cmdline(pid); cl != "" && re.MatchString(cl) {
			if err := unix.Kill(pid, unix.SIGKILL); err == nil {
				killed = append(killed, pid)
			}
		}
	}
	// Return once they are gone, so callers see the effect at once.
	for _, pid := range killed {
		waitFor(2*time.Second, func() bool { return !running(pid) })
	}
	return len(killed), nil
}
