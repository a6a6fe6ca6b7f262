package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/transport"
)

// stopLab is this file's private lab: one flat host and a rack host behind
// a bastion (relayed through the bastion's agent).
var stopLab struct {
	once sync.Once
	lab  *lab.Lab
	err  error
}

func getStopLab(t *testing.T) *lab.Lab {
	t.Helper()
	if ok, why := lab.Available(); !ok {
		t.Skip("lab: " + why)
	}
	stopLab.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		stopLab.lab, stopLab.err = lab.Up(ctx, lab.Spec{Name: fmt.Sprintf("stp%d", os.Getpid()%100000), Flat: 1,
			Bastion: &lab.BastionSpec{RackHosts: 1}})
	})
	if stopLab.err != nil {
		t.Fatalf("lab up: %v", stopLab.err)
	}
	t.Cleanup(func() {}) // the lab dies with the test process
	return stopLab.lab
}

// writeStopLabProject writes into dir an inventory.toml naming hosts of
// the stop lab (each with its address and the lab's key) and the policy
// as site.star, the project every command test here runs.
func writeStopLabProject(t *testing.T, l *lab.Lab, dir, policy string, hosts ...string) {
	t.Helper()
	inv := "[groups.all.hosts]\n"
	for _, n := range hosts {
		inv += fmt.Sprintf("%q = \"herd_host=%s herd_ssh_key=%s\"\n", n, l.Host(n).Addr, l.KeyFile)
	}
	for name, text := range map[string]string{"inventory.toml": inv, "site.star": policy} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// herdCommand is this test binary under the name herd (TestMain runs it as
// the CLI), so the controller is a real separate process.
func herdCommand(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "herd")); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "herd")
}

// slowPolicy is 30 sequential steps of 0.3 s, each appending its number
// to marker on the host.
func slowPolicy(host, marker string, sudo bool) string {
	s := "False"
	if sudo {
		s = "True"
	}
	return fmt.Sprintf(`inv = inventory("inventory.toml")

def main(h):
    for i in range(30):
        exec("step%%d" %% i, command = "sleep 0.3; echo %%d >> %s" %% i)

role("slow", hosts = inv.filter(hosts = [%q]), main = main, sudo = %s)
`, marker, host, s)
}

// agentsOn lists the herd processes (agents, brokers, sudo running one) in
// the host's own PID namespace: ps runs inside the host, so this sees no
// other host's processes and no other test's.
func agentsOn(t *testing.T, h *lab.Host) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, "ps", "-eo", "pid=,user=,args=")
	if err != nil {
		t.Fatalf("ps on %s: %v", h.Name, err)
	}
	var found []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "herd agent") {
			found = append(found, strings.TrimSpace(l))
		}
	}
	return found
}

func markerLines(h *lab.Host, path string) int {
	b, _ := h.ReadFile(path)
	return bytes.Count(b, []byte("\n"))
}

// TestControllerStopLeavesNothingRunning kills or interrupts a real
// controller process mid-run and checks the hosts: every agent (plain,
// privileged through sudo with and without a password, relayed) and every
// become broker exits, and at most the step in flight still finishes.
func TestControllerStopLeavesNothingRunning(t *testing.T) {
	l := getStopLab(t)
	herd := herdCommand(t)
	tests := []struct {
		name   string
		host   string
		vars   string // inventory vars of the host
		sudo   bool
		sig    syscall.Signal
		others []string // hosts in the connection path, checked too
		// persist runs with --persist: the host's connection is the mux's,
		// which outlives the killed controller.
		persist bool
	}{
		{"plain agent, SIGKILL", "host1", "", false, syscall.SIGKILL, nil, false},
		{"plain agent, SIGINT", "host1", "", false, syscall.SIGINT, nil, false},
		{"sudo with password, SIGKILL", "host1", "herd_user=deploy-pw", true, syscall.SIGKILL, nil, false},
		{"sudo with password, SIGINT", "host1", "herd_user=deploy-pw", true, syscall.SIGINT, nil, false},
		{"relayed (trusted), SIGKILL", "rack1", "herd_via=bastion herd_via_mode=trusted", false, syscall.SIGKILL, []string{"bastion"}, false},
		{"passwordless sudo, SIGKILL", "host1", "herd_user=deploy", true, syscall.SIGKILL, nil, false},
		{"via ProxyJump, SIGKILL", "rack1", "herd_via=bastion", false, syscall.SIGKILL, []string{"bastion"}, false},
		{"relayed (trusted) with sudo, SIGINT", "rack1", "herd_via=bastion herd_via_mode=trusted herd_user=deploy-pw", true, syscall.SIGINT, []string{"bastion"}, false},
		{"persisted connection, SIGKILL", "host1", "", false, syscall.SIGKILL, nil, true},
		{"persisted connection, sudo with password, SIGKILL", "host1", "herd_user=deploy-pw", true, syscall.SIGKILL, nil, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := l.Host(tt.host)
			marker := fmt.Sprintf("/tmp/stop-marker-%d", i)
			dir := t.TempDir()
			inv := fmt.Sprintf("[groups.all.hosts]\n%q = \"herd_host=%s herd_ssh_key=%s %s\"\n%q = \"herd_host=%s herd_ssh_key=%s\"\n",
				tt.host, h.Addr, l.KeyFile, tt.vars, "bastion", l.Host("bastion").Addr, l.KeyFile)
			os.WriteFile(filepath.Join(dir, "inventory.toml"), []byte(inv), 0o644)
			os.WriteFile(filepath.Join(dir, "site.star"), []byte(slowPolicy(tt.host, marker, tt.sudo)), 0o644)
			home := filepath.Join(dir, "home")
			os.MkdirAll(home, 0o755)
			args := []string{"apply", "site.star", "--ssh-config", "none", "--known-hosts", l.KnownHosts}
			if tt.persist {
				home = shortHome(t) // the mux's socket path must fit sun_path
				args = append(args, "--persist", "30s")
				t.Cleanup(func() { stopMuxes(t, filepath.Join(home, ".herd", "mux")) })
			}

			var out bytes.Buffer
			cmd := exec.Command(herd, args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "HOME="+home, "HERD_SUDO_PASSWORD="+l.Passwords.DeployPW, "NO_COLOR=1")
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer cmd.Process.Kill()

			deadline := time.Now().Add(60 * time.Second)
			for markerLines(h, marker) < 3 {
				select {
				case err := <-exited:
					t.Fatalf("controller ended before the steps ran: %v\n%s", err, out.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("no steps ran within a minute:\n%s", out.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			before := markerLines(h, marker)
			cmd.Process.Signal(tt.sig)
			sent := time.Now()

			var err error
			select {
			case err = <-exited:
			case <-time.After(30 * time.Second):
				t.Fatalf("controller still running 30 s after %v:\n%s", tt.sig, out.String())
			}
			controllerGone := time.Since(sent)
			if tt.sig == syscall.SIGINT {
				if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
					t.Errorf("exit status %d (%v), want %d:\n%s", code, err, exitInterrupted, out.String())
				}
				if !strings.Contains(out.String(), "interrupted") || strings.Contains(out.String(), "unreachable") ||
					strings.Contains(out.String(), "context canceled") {
					t.Errorf("want the host reported as interrupted, not unreachable:\n%s", out.String())
				}
			}

			hosts := append([]string{tt.host}, tt.others...)
			var left []string
			for wait := time.Now().Add(20 * time.Second); ; {
				left = nil
				for _, name := range hosts {
					left = append(left, agentsOn(t, l.Host(name))...)
				}
				if len(left) == 0 || time.Now().After(wait) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			agentsGone := time.Since(sent)
			if len(left) > 0 {
				t.Fatalf("herd processes still running %v after %v:\n%s", agentsGone.Round(time.Millisecond), tt.sig, strings.Join(left, "\n"))
			}
			if tt.persist {
				if m, err := transport.ListMuxes(filepath.Join(home, ".herd", "mux")); err != nil || len(m) != 1 || m[0].Err != nil {
					t.Errorf("want the persisted connection still open after the controller died: %+v %v", m, err)
				}
			}
			after := markerLines(h, marker)
			time.Sleep(time.Second)
			final := markerLines(h, marker)
			t.Logf("%v: controller gone after %v, agents after %v; steps %d at the signal, %d after", tt.sig,
				controllerGone.Round(time.Millisecond), agentsGone.Round(time.Millisecond), before, final)
			if final != after {
				t.Errorf("marker still growing after the agents exited: %d then %d lines", after, final)
			}
			// The step in flight may finish, and one may have finished
			// between reading the marker and the signal.
			if final-before > 2 {
				t.Errorf("%d steps ran after the signal (at %d), want at most the one in flight\n%s", final-before, before, out.String())
			}
		})
	}
}

// shortHome is a HOME whose ~/.herd/mux/<name>.sock fits a unix socket
// path (t.TempDir's names are long).
func shortHome(t *testing.T) string {
	home, err := os.MkdirTemp("", "hp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	return home
}

// stopMuxes closes the persisted connections of dir and waits for their
// processes to exit.
func stopMuxes(t *testing.T, dir string) {
	stopped, err := transport.StopMuxes(dir, "")
	if err != nil {
		t.Errorf("herd mux stop: %v", err)
	}
	for _, m := range stopped {
		for deadline := time.Now().Add(5 * time.Second); m.Pid > 0; time.Sleep(20 * time.Millisecond) {
			if !running(m.Pid) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("mux pid %d still running 5 s after herd mux stop", m.Pid)
				syscall.Kill(m.Pid, syscall.SIGKILL)
				break
			}
		}
	}
}

// running says pid is alive: it exists and is not a zombie (a mux outlives
// its controller and is reaped by whoever inherits it).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// TestSecondInterruptQuitsAtOnce: the first SIGINT waits for the step in
// flight (3 s here); a second one ends the controller at once with 130.
// The agent still stops on its own: the step in flight finishes, the next
// never starts, and nothing of herd is left on the host.
func TestSecondInterruptQuitsAtOnce(t *testing.T) {
	l := getStopLab(t)
	h := l.Host("host1")
	dir := t.TempDir()
	marker := "/tmp/stop-marker-twice"
	writeStopLabProject(t, l, dir, fmt.Sprintf(`inv = inventory("inventory.toml")
def main(h):
    exec("started", command = "echo started >> %[1]s")
    exec("long", command = "sleep 3; echo long >> %[1]s")
    exec("next", command = "echo next >> %[1]s")
role("r", hosts = inv.hosts, main = main)
`, marker), "host1")
	cmd, out, exited := startHerd(t, dir, "apply", "site.star", "--ssh-config", "none", "--known-hosts", l.KnownHosts)
	for deadline := time.Now().Add(60 * time.Second); markerLines(h, marker) < 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first step did not run:\n%s", out)
		}
	}
	time.Sleep(300 * time.Millisecond) // "long" is in flight
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-exited:
		t.Fatalf("the first SIGINT did not wait for the step in flight: %v\n%s", err, out)
	default:
	}
	cmd.Process.Signal(syscall.SIGINT)
	sent := time.Now()
	select {
	case <-exited:
	case <-time.After(2 * time.Second):
		t.Fatalf("controller still running 2 s after the second SIGINT:\n%s", out)
	}
	t.Logf("second SIGINT: exit %d after %v", cmd.ProcessState.ExitCode(), time.Since(sent).Round(time.Millisecond))
	if code := cmd.ProcessState.ExitCode(); code != exitKilled {
		t.Errorf("exit %d, want %d\n%s", code, exitKilled, out)
	}
	if !strings.Contains(out.String(), "interrupted again: quitting now") {
		t.Errorf("output does not say it quit:\n%s", out)
	}
	var left []string
	for wait := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if left = agentsOn(t, h); len(left) == 0 || time.Now().After(wait) {
			break
		}
	}
	if len(left) > 0 {
		t.Fatalf("herd processes still running:\n%s", strings.Join(left, "\n"))
	}
	time.Sleep(500 * time.Millisecond)
	b, _ := h.ReadFile(marker)
	if got := string(b); got != "started\nlong\n" {
		t.Errorf("marker = %q, want the step in flight finished and the next not started", got)
	}
}
