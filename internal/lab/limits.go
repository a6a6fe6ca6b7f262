package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A lab of hundreds of hosts outgrows two of the kernel's defaults, each
// found by bringing one up:
//
//   - the root namespace's neighbour (ARP) table: every flat host is a
//     neighbour of its own /30, and past gc_thresh3 (1024 by default) the
//     kernel drops new entries ("neighbour table overflow"), so connections
//     to some hosts stall;
//   - kernel.pid_max (32768): every thread of every host's init, sshd,
//     session and agent takes a pid of the machine's, and a Go agent has
//     ten or more threads, so a 1,000-host run ran out of pids.
//
// raiseLimits lifts them (never lowers them) for a lab of n hosts. They are
// machine-wide sysctls and stay raised after the lab is gone.
func raiseLimits(n int) error {
	if n < 200 {
		return nil
	}
	neigh := 4 * n // entries per host: its address, plus headroom for the others' churn
	want := []struct {
		key string
		min int
	}{
		{"net/ipv4/neigh/default/gc_thresh1", neigh / 4},
		{"net/ipv4/neigh/default/gc_thresh2", neigh / 2},
		{"net/ipv4/neigh/default/gc_thresh3", neigh},
		{"kernel/pid_max", 4194304},
		{"kernel/threads-max", 200 * n},
	}
	for _, w := range want {
		if err := raiseSysctl(w.key, w.min); err != nil {
			return fmt.Errorf("lab of %d hosts: %w", n, err)
		}
	}
	return nil
}

// raiseSysctl sets /proc/sys/key to min unless it is already at least min.
func raiseSysctl(key string, min int) error {
	path := "/proc/sys/" + key
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s: %q is not a number", path, strings.TrimSpace(string(b)))
	}
	if cur >= min {
		return nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(min)), 0o644); err != nil {
		return fmt.Errorf("raise %s from %d to %d: %w", path, cur, min, err)
	}
	return nil
}
