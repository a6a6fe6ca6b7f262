package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/exchange"
)

// TestControllerKilledInCollectWait SIGKILLs a real controller while
// host1's agent waits for bastion's export (a collect wait, bastion's
// value still 3 s away): nothing of herd is left running on either host,
// host1's waiting file was never written, the embedded etcd (killed with
// the controller) opens again and holds no half entry (every host with an
// entry of a run has its facts of that run: one transaction), and the next
// run converges.
func TestControllerKilledInCollectWait(t *testing.T) {
	l := getStopLab(t)
	h1, bastion := l.Host("host1"), l.Host("bastion")
	for _, h := range []string{"host1", "bastion"} {
		l.Host(h).Exec(t.Context(), "rm", "-f", "/tmp/xkill-peers", "/tmp/xkill-fast")
	}
	dir := t.TempDir()
	writeStopLabProject(t, l, dir, `inv = inventory("inventory.toml")
def main(h):
    late = "test -e /tmp/xkill-fast || sleep 3; " if h.name == "bastion" else ""
    gen = exec("gen", command = late + "echo v-" + h.name, changes = False)
    export("v", gen.stdout)
    content = ""
    for n, v in sorted(collect("v", hosts = inv.hosts, collect_timeout = 60).items()):
        content += n + "=" + v
    file("/tmp/xkill-peers", content = content)
role("r", hosts = inv.hosts, main = main)
`, "host1", "bastion")
	args := []string{"apply", "site.star", "--ssh-config", "none", "--known-hosts", l.KnownHosts}

	cmd, out, exited := startHerd(t, dir, append(args, "--json")...)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), `"waits":["bastion:v"`) {
		select {
		case err := <-exited:
			t.Fatalf("controller ended before host1 waited: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("host1 did not wait for bastion within a minute:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	sent := time.Now()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("controller still running 10 s after SIGKILL")
	}
	var left []string
	var waiterGone time.Duration // host1's agent, the one in the collect wait
	for wait := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		on1 := agentsOn(t, h1)
		if len(on1) == 0 && waiterGone == 0 {
			waiterGone = time.Since(sent)
		}
		left = append(on1, agentsOn(t, bastion)...)
		if len(left) == 0 || time.Now().After(wait) {
			break
		}
	}
	if len(left) > 0 {
		t.Fatalf("herd processes still running %v after SIGKILL:\n%s", time.Since(sent).Round(time.Millisecond), strings.Join(left, "\n"))
	}
	t.Logf("after SIGKILL: the waiting agent gone in %v, all agents in %v (bastion's step in flight finishes)",
		waiterGone.Round(time.Millisecond), time.Since(sent).Round(time.Millisecond))
	if _, err := h1.ReadFile("/tmp/xkill-peers"); err == nil {
		t.Fatal("host1 wrote the file that waited for bastion's export")
	}
	checkWholeEntries(t, dir, 0)

	bastion.Exec(t.Context(), "touch", "/tmp/xkill-fast") // the next run needs no slow export
	cmd, out, exited = startHerd(t, dir, args...)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the next run: %v\n%s", err, out)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the next run still running after 60 s:\n%s", out)
	}
	for _, h := range []string{"host1", "bastion"} {
		b, err := l.Host(h).ReadFile("/tmp/xkill-peers")
		if want := "bastion=v-bastion\nhost1=v-host1\n"; err != nil || string(b) != want {
			t.Fatalf("%s's file %q %v, want %q\n%s", h, b, err, want, out)
		}
	}
	checkWholeEntries(t, dir, 2)
}

// checkWholeEntries lists the exchange of the project in dir and fails
// unless every host with an entry of a run has its facts from that run
// (the one-transaction rule) and wantValues values are stored.
func checkWholeEntries(t *testing.T, dir string, wantValues int) {
	t.Helper()
	c := exec.Command(herdCommand(t), "exchange", "list", "--json", "-i", "inventory.toml")
	c.Dir, c.Env = dir, append(os.Environ(), "HOME="+dir)
	b, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("herd exchange list after SIGKILL: %v\n%s", err, b)
	}
	facts := map[string]bool{}
	var es []exchange.Entry
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "{") {
			continue // "herd: exchange: cluster …"
		}
		var e exchange.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("entry %q: %v", sc.Text(), err)
		}
		es = append(es, e)
		if e.Kind == exchange.KindFacts {
			facts[e.Host+" "+e.Run] = true
		}
	}
	values := 0
	for _, e := range es {
		if !facts[e.Host+" "+e.Run] {
			t.Fatalf("half an entry: %s %s of %s (run %s) without its facts:\n%s", e.Kind, e.Name, e.Host, e.Run, b)
		}
		if e.Kind == exchange.KindValue {
			values++
		}
	}
	if values != wantValues {
		t.Fatalf("%d values stored, want %d:\n%s", values, wantValues, b)
	}
}
