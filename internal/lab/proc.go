package lab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// startTime is the process start time (clock ticks since boot) from
// /proc/<pid>/stat; with the pid it identifies a process across pid reuse.
func startTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// Fields after the command name start at field 3 (state); start time is field 22.
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// processState is the one-letter state of pid, or 0 if it does not exist.
func processState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// running reports whether pid exists and is not a zombie (a zombie holds no
// namespaces or mounts any more).
func running(pid int) bool {
	s := processState(pid)
	return s != 0 && s != 'Z' && s != 'X'
}

// processAlive reports whether pid is still the process that started at start.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 || !running(pid) {
		return false
	}
	return start == 0 || startTime(pid) == start
}

// nsInode is the inode of /proc/<pid>/ns/<kind>, which identifies a namespace.
func nsInode(pid int, kind string) uint64 {
	var s unix.Stat_t
	if unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/"+kind, &s) != nil {
		return 0
	}
	return s.Ino
}

// allPids lists the pids in /proc.
func allPids() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pidsInNetns lists running processes in any of the given network
// namespaces (by inode), never this process.
func pidsInNetns(inodes map[uint64]bool) []int {
	if len(inodes) == 0 {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, pid := range allPids() {
		if pid != self && running(pid) && inodes[nsInode(pid, "net")] {
			out = append(out, pid)
		}
	}
	return out
}

// cmdline is the process's argv joined by spaces, as pkill -f sees it.
func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// nsPid maps a pid as seen inside the host's pid namespace to the
// controller's pid, using the NSpid line of /proc/<pid>/status.
func nsPid(inodePid uint64, local int) int {
	for _, pid := range allPids() {
		if nsInode(pid, "pid") != inodePid {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f, ok := strings.CutPrefix(line, "NSpid:"); ok {
				ids := strings.Fields(f)
				if len(ids) > 1 && ids[len(ids)-1] == strconv.Itoa(local) {
					return pid
				}
			}
		}
	}
	return 0
}

// toolEnv is the environment of the tools the lab runs: nothing of the
// caller's (it may hold secrets), just enough to find programs.
var toolEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "HOME=/root"}

// run runs a tool on the controller and returns its combined output.
func run(name string, args ...string) ([]byte, error) {
	return runCtx(context.Background(), nil, name, args...)
}

func runCtx(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = toolEnv
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return bytes.TrimSpace(out), err
}
