package push_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/become"
	"github.com/herd-project/herd/internal/lab"
)

// rootFilePolicy writes a root-only file and sleeps, so the process list
// can be captured while the privileged agent and its tools are alive.
const rootFilePolicy = `
inv = inventory("inventory.toml")

def main(host):
    file("/root/herd-become.txt", content = "made by herd on " + host.name + "\n", mode = 0o600)
    exec("whoami", command = "id -un > /root/herd-become.who; sleep 1")

role("root-file", hosts = inv.hosts, main = main, sudo = True)
`

// becomeInventory lists hosts with their extra connection variables.
func becomeInventory(l *lab.Lab, vars map[string]string) string {
	var b strings.Builder
	b.WriteString("[groups.become.hosts]\n")
	for name, v := range vars {
		fmt.Fprintf(&b, "%q = \"herd_host=%s %s\"\n", name, l.Host(name).Addr, v)
	}
	return b.String()
}

// Every become method applies a root-owned file as root, whatever the
// password source, and the password typed at the prompt is asked once for
// all hosts that need it.
func TestBecomeMethodsApplyRootOwnedFiles(t *testing.T) {
	l := flatLab(t)
	pw, rootPW := l.Passwords.DeployPW, l.Passwords.Root
	hosts := map[string]string{
		"host1": "herd_user=deploy",                                                    // sudo, no password
		"host2": "herd_user=deploy-pw herd_sudo_password=" + pw,                        // sudo, inventory password
		"host3": "herd_user=deploy herd_become_method=su herd_sudo_password=" + rootPW, // su, root's password
		"host4": "herd_user=deploy herd_become_method=doas",                            // doas, no password
		"host5": "herd_user=deploy-pw herd_become_method=doas herd_sudo_password=" + pw,
		"host6": "herd_user=deploy-pw", // sudo, password from the prompt
		"host7": "herd_user=deploy-pw", // same prompt answer reused
	}
	for name := range hosts {
		cleanBecome(t, l.Host(name))
	}
	dir := project(t, map[string]string{"inventory.toml": becomeInventory(l, hosts), "site.star": rootFilePolicy})
	pol := load(t, dir)

	rec := &recorder{}
	o := options(t, l, rec)
	var asked atomic.Int32
	o.AskBecomePass = func() (string, error) { asked.Add(1); return pw, nil }

	spy := spyOn(l, hostsOf(hosts))
	res := run(t, pol, o)
	captured := spy.stop()
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("run failed:\n%s", rec.dump())
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("password prompt asked %d times, want once per run", n)
	}
	for name := range hosts {
		h := l.Host(name)
		content, err := h.ReadFile("/root/herd-become.txt")
		if err != nil || string(content) != "made by herd on "+name+"\n" {
			t.Errorf("%s: /root/herd-become.txt = %q, %v", name, content, err)
			continue
		}
		fi, err := os.Stat(h.Path("/root/herd-become.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: file owned by uid %d mode %v, want root 0600", name, st.Uid, fi.Mode().Perm())
		}
		who, _ := h.ReadFile("/root/herd-become.who")
		if strings.TrimSpace(string(who)) != "root" {
			t.Errorf("%s: exec ran as %q, want root", name, who)
		}
	}
	if !strings.Contains(captured, "--become-socket") {
		t.Errorf("the process spy never saw a privileged agent; the secret check below proves nothing:\n%.2000s", captured)
	}
	assertNoSecret(t, l, hostsOf(hosts), rec, captured, pw, rootPW)
}

// A wrong password fails that host quickly with an error naming whose
// password was wrong; a missing one says how to provide it; neither leaks
// the password, and other hosts are unaffected.
func TestBecomeWrongOrMissingPasswordFailsFast(t *testing.T) {
	l := flatLab(t)
	pw, rootPW := l.Passwords.DeployPW, l.Passwords.Root
	wrong := "Wrong" + pw[:10]
	hosts := map[string]string{
		"host1": "herd_user=deploy",
		"host2": "herd_user=deploy-pw herd_sudo_password=" + wrong,
		"host3": "herd_user=deploy herd_become_method=su herd_sudo_password=" + wrong,
		"host4": "herd_user=deploy-pw herd_become_method=doas herd_sudo_password=" + wrong,
		"host5": "herd_user=deploy-pw", // no password anywhere, no prompt
	}
	for name := range hosts {
		cleanBecome(t, l.Host(name))
	}
	dir := project(t, map[string]string{"inventory.toml": becomeInventory(l, hosts), "site.star": rootFilePolicy})
	pol := load(t, dir)
	rec := &recorder{}
	o := options(t, l, rec)
	t.Setenv("HERD_SUDO_PASSWORD", "")

	start := time.Now()
	spy := spyOn(l, hostsOf(hosts))
	res := run(t, pol, o)
	captured := spy.stop()
	// Failing fast means the tool's refusal is read, not the become
	// timeout waited out: a timed-out become reports "timeout", and the
	// messages below are the tools' own refusals. The wall-clock bound only
	// catches a hang (it includes cold agent uploads on a loaded machine).
	if d := time.Since(start); d > 3*become.DefaultTimeout {
		t.Errorf("run took %v; a wrong password must not wait for timeouts", d)
	}
	want := map[string]string{
		"host2": "sudo to root: wrong password for deploy-pw",
		"host3": "su to root: wrong password for root",
		"host4": "doas to root: wrong password for deploy-pw",
		"host5": "sudo asks for the password of deploy-pw and none is set",
	}
	for name, msg := range want {
		hr := res.Hosts[name]
		if hr != nil {
			t.Logf("%s", hr.Err)
		}
		if hr != nil && strings.Contains(hr.Err, "timeout") {
			t.Errorf("%s: waited for the become timeout instead of reading the refusal: %s", name, hr.Err)
		}
		if hr == nil || !hr.Failed || !strings.Contains(hr.Err, msg) || !strings.HasPrefix(hr.Err, name+": ") {
			t.Errorf("%s: result %+v, want a failure containing %q", name, hr, msg)
		}
	}
	if hr := res.Hosts["host1"]; hr == nil || hr.Failed {
		t.Errorf("host1 should have succeeded: %+v\n%s", hr, rec.dump())
	}
	assertNoSecret(t, l, hostsOf(hosts), rec, captured, pw, rootPW, wrong)
}

func hostsOf(m map[string]string) []string {
	var out []string
	for name := range m {
		out = append(out, name)
	}
	return out
}

func cleanBecome(t *testing.T, h *lab.Host) {
	for _, p := range []string{"/root/herd-become.txt", "/root/herd-become.who"} {
		os.Remove(h.Path(p))
	}
}

// processSpy records every process's argv and environment on some hosts,
// as any local user could read them, for the whole run.
type processSpy struct {
	stopc chan struct{}
	done  sync.WaitGroup
	mu    sync.Mutex
	buf   strings.Builder
}

func spyOn(l *lab.Lab, names []string) *processSpy {
	s := &processSpy{stopc: make(chan struct{})}
	for _, name := range names {
		h := l.Host(name)
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				out, _ := h.Exec(ctx, "sh", "-c", "ps -eo user,args; for f in /proc/[0-9]*/environ; do tr '\\0' ' ' < $f; echo; done 2>/dev/null")
				cancel()
				s.mu.Lock()
				s.buf.Write(out)
				s.mu.Unlock()
				select {
				case <-s.stopc:
					return
				case <-time.After(150 * time.Millisecond):
				}
			}
		}()
	}
	return s
}

func (s *processSpy) stop() string {
	close(s.stopc)
	s.done.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// assertNoSecret greps events, results, the agents' logs on the hosts and
// the captured process lists and environments for any of the secrets.
func assertNoSecret(t *testing.T, l *lab.Lab, names []string, rec *recorder, captured string, secrets ...string) {
	t.Helper()
	sources := map[string]string{"process lists and environments": captured}
	rec.mu.Lock()
	var ev strings.Builder
	for _, e := range rec.events {
		fmt.Fprintf(&ev, "%+v\n", e)
	}
	rec.mu.Unlock()
	sources["events"] = ev.String()
	logs := 0
	for _, name := range names {
		h := l.Host(name)
		for _, home := range []string{"/root", "/home/deploy", "/home/deploy-pw"} {
			if b, err := h.ReadFile(home + "/.herd/herd.log"); err == nil {
				sources[name+":"+home+"/.herd/herd.log"] = string(b)
				logs++
			}
		}
	}
	if logs == 0 {
		t.Error("no herd.log found on any host")
	}
	for where, text := range sources {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("a password appears in %s", where)
			}
		}
	}
}

// Without an inventory password, HERD_SUDO_PASSWORD and then defaults.toml's
// sudo_password are used.
func TestBecomePasswordFromEnvironmentOrDefaults(t *testing.T) {
	l := flatLab(t)
	h := l.Host("host8")
	dir := project(t, map[string]string{
		"inventory.toml": becomeInventory(l, map[string]string{"host8": "herd_user=deploy-pw"}),
		"site.star":      rootFilePolicy,
	})
	pol := load(t, dir)
	for _, source := range []string{"environment", "defaults"} {
		t.Run(source, func(t *testing.T) {
			cleanBecome(t, h)
			rec := &recorder{}
			o := options(t, l, rec)
			if source == "environment" {
				t.Setenv("HERD_SUDO_PASSWORD", l.Passwords.DeployPW)
			} else {
				t.Setenv("HERD_SUDO_PASSWORD", "")
				o.Defaults.SudoPassword = l.Passwords.DeployPW
			}
			res := run(t, pol, o)
			if failed, unreachable := res.Failed(); failed || unreachable {
				t.Fatalf("run failed:\n%s", rec.dump())
			}
			if who, _ := h.ReadFile("/root/herd-become.who"); strings.TrimSpace(string(who)) != "root" {
				t.Errorf("exec ran as %q, want root", who)
			}
		})
	}
}
