package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/lab"
)

// herd watch as a real process: the controller sees the edit of a
// template through fsnotify, re-applies it, and --converged-timeout ends
// the run (exit 0) that long after the last change; the edit restarted
// the clock. The idle agent's CPU and memory are logged.
func TestWatchCommandConvergedTimeout(t *testing.T) { watchCommand(t, false) }

// Without --converged-timeout, Ctrl-C ends the watch: exit 0 (every host
// was converged) and no agent is left on the host.
func TestWatchCommandCtrlC(t *testing.T) { watchCommand(t, true) }

func watchCommand(t *testing.T, ctrlC bool) {
	l := getStopLab(t)
	herd := herdCommand(t)
	h := l.Host("host1")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "app.conf.tmpl"), []byte("v=1\n"), 0o644)
	writeStopLabProject(t, l, dir, `inv = inventory("inventory.toml")
def main(h):
    template("/tmp/watch-cmd.conf", src = "templates/app.conf.tmpl")
role("w", hosts = inv.hosts, main = main)
`, "host1")
	os.MkdirAll(filepath.Join(dir, "home"), 0o755)
	h.Exec(context.Background(), "rm", "-f", "/tmp/watch-cmd.conf")

	var out bytes.Buffer
	cmd := exec.Command(herd, "watch", "site.star", "--ssh-config", "none", "--known-hosts", l.KnownHosts, "--converged-timeout", "3s")
	if ctrlC {
		cmd = exec.Command(herd, "watch", "site.star", "--ssh-config", "none", "--known-hosts", l.KnownHosts)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "NO_COLOR=1")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer cmd.Process.Kill()

	waitContent := func(want string) time.Time {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if b, _ := h.ReadFile("/tmp/watch-cmd.conf"); string(b) == want {
				return time.Now()
			}
			select {
			case <-exited:
				t.Fatalf("herd watch ended before the file read %q:\n%s", want, out.String())
			default:
			}
		}
		t.Fatalf("file never read %q:\n%s", want, out.String())
		return time.Time{}
	}
	waitContent("v=1\n")
	if ctrlC {
		time.Sleep(500 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			t.Fatalf("herd watch still running 20 s after Ctrl-C:\n%s", out.String())
		}
		if code := cmd.ProcessState.ExitCode(); code != exitOK || !strings.Contains(out.String(), "watch ended (interrupted)") {
			t.Fatalf("exit %d after Ctrl-C, want 0 and the reason:\n%s", code, out.String())
		}
		for wait := time.Now().Add(10 * time.Second); len(agentsOn(t, h)) > 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(wait) {
				t.Fatalf("agents left on host1 after Ctrl-C: %v", agentsOn(t, h))
			}
		}
		return
	}
	cpu0, rss := agentUsage(t, h)
	time.Sleep(1500 * time.Millisecond)
	cpu1, _ := agentUsage(t, h)
	t.Logf("idle agent: %.2f%% CPU over 1.5 s, RSS %d KiB", float64(cpu1-cpu0)/100/1.5*100, rss)

	os.WriteFile(filepath.Join(dir, "templates", "app.conf.tmpl"), []byte("v=2\n"), 0o644)
	changed := waitContent("v=2\n")
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("herd watch still running 20 s after the last change:\n%s", out.String())
	}
	took := time.Since(changed)
	t.Logf("exited %v after the last change (timeout 3s)", took.Round(time.Millisecond))
	if code := cmd.ProcessState.ExitCode(); code != exitOK {
		t.Fatalf("exit %d, want 0:\n%s", code, out.String())
	}
	if took < 2800*time.Millisecond || took > 4500*time.Millisecond {
		t.Errorf("exited %v after the last change, want about 3s:\n%s", took, out.String())
	}
	// The live display: the host's states since when, why, and the
	// running count; then the last states and why the watch ended.
	for _, re := range []string{
		`(?m)^\d\d:\d\d:\d\d  host1 converging since \d\d:\d\d:\d\d\.\d{3}: role w: whole plan \(\d+ bytes sent\)  \[0 converged, 1 converging, 0 failed, 0 lost\]$`,
		`(?m)^\d\d:\d\d:\d\d  host1 converged since \d\d:\d\d:\d\d\.\d{3}  \[1 converged, 0 converging, 0 failed, 0 lost\]$`,
		`(?m)^\d\d:\d\d:\d\d  host1 converging since \d\d:\d\d:\d\d\.\d{3}: role w: new plan after app.conf.tmpl changed: 1 to run, 0 removed \(\d+ bytes sent\)  \[0 converged, 1 converging, 0 failed, 0 lost\]$`,
		`(?m)^host1 +converged +since \d\d:\d\d:\d\d`,
		`(?m)^watch ended \(converged timeout\) after `,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("output lacks %s:\n%s", re, out.String())
		}
	}
	for wait := time.Now().Add(10 * time.Second); len(agentsOn(t, h)) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("agents left on host1: %v", agentsOn(t, h))
		}
	}
}

// agentUsage is the herd agent's CPU time in clock ticks (utime+stime)
// and its RSS in KiB, read inside the host.
func agentUsage(t *testing.T, h *lab.Host) (ticks int64, rssKiB int64) {
	t.Helper()
	agents := agentsOn(t, h)
	if len(agents) == 0 {
		t.Fatal("no agent on the host")
	}
	pid := strings.Fields(agents[0])[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stat, err := h.Exec(ctx, "cat", "/proc/"+pid+"/stat", "/proc/"+pid+"/status")
	if err != nil {
		t.Fatal(err)
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	for _, ln := range strings.Split(s, "\n") {
		if strings.HasPrefix(ln, "VmRSS:") {
			rssKiB, _ = strconv.ParseInt(strings.Fields(ln)[1], 10, 64)
		}
	}
	return ut + st, rssKiB
}
