package lab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// leftovers lists what a lab named name (with address index) left on the
// machine: namespaces, links, routes, mounts, processes and its directory.
func leftovers(t *testing.T, name string, index int, pids []int) []string {
	t.Helper()
	var left []string
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "herd-"+name+"-") {
				left = append(left, "netns "+e.Name())
			}
		}
	}
	if links, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, ln := range links {
			if strings.HasPrefix(ln.Name(), fmt.Sprintf("hl%du", index)) {
				left = append(left, "link "+ln.Name())
			}
		}
	}
	if out, _ := exec.Command("ip", "route", "show", "exact", labNet(index)).Output(); len(strings.TrimSpace(string(out))) > 0 {
		left = append(left, "route "+strings.TrimSpace(string(out)))
	}
	dir := filepath.Join(BaseDir, name)
	// Mounts of every mount namespace on the machine, not just ours: the
	// hosts' overlays live in their own.
	for _, pid := range allPids() {
		mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		for _, ln := range strings.Split(string(mi), "\n") {
			if strings.Contains(ln, dir+"/") || strings.Contains(ln, "herd-"+name+"-") {
				left = append(left, fmt.Sprintf("mount (seen by pid %d) %s", pid, ln))
			}
		}
	}
	for _, pid := range pids {
		if running(pid) {
			left = append(left, fmt.Sprintf("process %d %s", pid, cmdline(pid)))
		}
	}
	for _, pid := range allPids() {
		if strings.HasPrefix(cmdline(pid), "herd-lab-init:"+name+"/") && running(pid) {
			left = append(left, fmt.Sprintf("process %d %s", pid, cmdline(pid)))
		}
	}
	if _, err := os.Stat(dir); err == nil {
		left = append(left, "directory "+dir)
	}
	return left
}

func TestUpTenHostsThenDownLeavesNothing(t *testing.T) {
	if ok, why := Available(); !ok {
		t.Skip("lab: " + why)
	}
	name := fmt.Sprintf("u%d", os.Getpid())
	start := time.Now()
	l, err := Up(context.Background(), Spec{Name: name, Flat: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up of 10 hosts took %v", time.Since(start))
	defer l.Down()
	names, keys := map[string]bool{}, map[string]bool{}
	var pids []int
	for _, h := range l.Hosts {
		b, err := h.Exec(context.Background(), "hostname")
		if err != nil {
			t.Fatal(err)
		}
		names[strings.TrimSpace(string(b))] = true
		keys[string(h.HostKey.Marshal())] = true
		if !reachable(h, 2*time.Second) {
			t.Errorf("%s: sshd not reachable at %s", h.Name, h.Addr)
		}
		pids = append(pids, h.Pid())
	}
	if len(l.Hosts) != 10 || len(names) != 10 || len(keys) != 10 {
		t.Errorf("got %d hosts, %d distinct hostnames, %d distinct host keys; want 10 of each", len(l.Hosts), len(names), len(keys))
	}
	// The leak check must see every kind of thing a running lab has.
	seen := strings.Join(leftovers(t, name, l.index, pids), "\n")
	for _, kind := range []string{"netns ", "link ", "route ", "mount ", "process ", "directory "} {
		if !strings.Contains(seen, kind) {
			t.Fatalf("the leak check sees no %q in a running lab:\n%s", kind, seen)
		}
	}
	start = time.Now()
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	t.Logf("down of 10 hosts took %v", time.Since(start))
	if left := leftovers(t, name, l.index, pids); len(left) > 0 {
		t.Errorf("down left behind:\n%s", strings.Join(left, "\n"))
	}
	if err := l.Down(); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

// crashEnv makes the test binary a process that brings a lab up and then
// waits to be killed, standing in for a test run that crashes.
const crashEnv = "HERD_LAB_TEST_CRASH"

func TestHelperCrashingProcess(t *testing.T) {
	name := os.Getenv(crashEnv)
	if name == "" {
		t.Skip("helper for TestNextUpCleansACrashedLab")
	}
	l, err := Up(context.Background(), Spec{Name: name, Flat: 2})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("up", l.index)
	time.Sleep(time.Minute)
	os.Exit(1)
}

func TestNextUpCleansACrashedLab(t *testing.T) {
	if ok, why := Available(); !ok {
		t.Skip("lab: " + why)
	}
	crashed := fmt.Sprintf("c%d", os.Getpid())
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashingProcess$")
	cmd.Env = append(os.Environ(), crashEnv+"="+crashed)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	var index int
	if _, err := fmt.Sscanf(line, "up %d", &index); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper did not bring its lab up: %q", line)
	}
	st, err := loadState(crashed)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill() // the crash: no Down
	cmd.Wait()
	if left := leftovers(t, crashed, index, nil); len(left) == 0 {
		t.Fatal("the crashed run left nothing to clean; the test proves nothing")
	}
	l, err := Up(context.Background(), Spec{Name: fmt.Sprintf("n%d", os.Getpid()), Flat: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The new lab may reuse the crashed lab's addresses and link names:
	// take it down before looking for the crashed lab's leftovers.
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, h := range st.Hosts {
		pids = append(pids, h.InitPid)
	}
	if left := leftovers(t, crashed, index, pids); len(left) > 0 {
		t.Errorf("the next Up left the crashed lab's:\n%s", strings.Join(left, "\n"))
	}
}

func BenchmarkUpTenHosts(b *testing.B) {
	if ok, why := Available(); !ok {
		b.Skip("lab: " + why)
	}
	for i := 0; i < b.N; i++ {
		l, err := Up(context.Background(), Spec{Name: fmt.Sprintf("b%d", os.Getpid()), Flat: 10})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := l.Down(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
