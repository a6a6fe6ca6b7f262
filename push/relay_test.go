package push_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-project/herd/event"
	"github.com/herd-project/herd/lab"
)

// treeInventory puts the rack hosts behind racktop behind bastion; extra
// is added to every relayed host's variables.
func treeInventory(l *lab.Lab, extra string) string {
	var b strings.Builder
	b.WriteString("[groups.flat.hosts]\n")
	for _, n := range []string{"host1", "host2"} {
		fmt.Fprintf(&b, "%q = \"herd_host=%s\"\n", n, l.Host(n).Addr)
	}
	b.WriteString("[groups.relays.hosts]\n")
	fmt.Fprintf(&b, "%q = \"herd_host=%s\"\n", "bastion", l.Host("bastion").Addr)
	fmt.Fprintf(&b, "%q = \"herd_host=%s herd_via=bastion %s\"\n", "racktop", l.Host("racktop").Addr, extra)
	b.WriteString("[groups.rack.hosts]\n")
	for i := 1; i <= 10; i++ {
		n := "rack" + strconv.Itoa(i)
		fmt.Fprintf(&b, "%q = \"herd_host=%s herd_via=racktop %s\"\n", n, l.Host(n).Addr, extra)
	}
	return b.String()
}

// rxBytes is what the host has received on its uplink (eth0), i.e. what
// crossed the controller's own link to it.
func rxBytes(t *testing.T, h *lab.Host) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, "cat", "/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range strings.Split(string(out), "\n") {
		if name, rest, ok := strings.Cut(strings.TrimSpace(ln), ":"); ok && name == "eth0" {
			n, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("%s: no eth0 in /proc/net/dev:\n%s", h.Name, out)
	return 0
}

func clearAgentCaches(l *lab.Lab) {
	for _, h := range l.Hosts {
		os.RemoveAll(h.Path("/root/.cache/herd"))
	}
}

const rackPolicy = `
inv = inventory("inventory.toml")

def main(host):
    file("/srv/relayed", content = "via relay on " + host.name + "\n")

role("rack", hosts = inv.filter(groups = "rack"), main = main)
`

// Through relays the binary crosses the controller's link once, for the
// bastion; the bastion installs the rack top and the rack top its ten
// hosts. With plain ProxyJump every host's copy crosses it.
func TestRelayCrossesTheControllerLinkWithOneBinaryForARack(t *testing.T) {
	l := treeLab(t)
	gz, _, _ := agentBinary(t).Parts()
	bastion := l.Host("bastion")

	measure := func(mode string) int64 {
		extra := ""
		if mode == "jump" {
			extra = "herd_via_mode=jump"
		}
		clearAgentCaches(l)
		dir := project(t, map[string]string{"inventory.toml": treeInventory(l, extra), "site.star": rackPolicy})
		rec := &recorder{}
		before := rxBytes(t, bastion)
		res := run(t, load(t, dir), options(t, l, rec))
		sent := rxBytes(t, bastion) - before
		if failed, unreachable := res.Failed(); failed || unreachable {
			t.Fatalf("%s run failed:\n%s", mode, rec.dump())
		}
		if got := rec.hosts(event.HostDone); len(got) != 10 {
			t.Fatalf("%s: %d hosts done (%v), want the 10 rack hosts", mode, len(got), got)
		}
		for i := 1; i <= 10; i++ {
			n := "rack" + strconv.Itoa(i)
			if b, err := l.Host(n).ReadFile("/srv/relayed"); err != nil || string(b) != "via relay on "+n+"\n" {
				t.Errorf("%s: %s: /srv/relayed = %q, %v", mode, n, b, err)
			}
		}
		return sent
	}
	relayed := measure("relay")
	jumped := measure("jump")
	t.Logf("bytes over the controller's link for a 10-host rack (agent binary %d bytes gzipped): relay %d (%.2f binaries), ProxyJump %d (%.2f binaries)",
		len(gz), relayed, float64(relayed)/float64(len(gz)), jumped, float64(jumped)/float64(len(gz)))
	fmt.Printf("relay: %d bytes over the controller link for 10 rack hosts = %.2f agent binaries (ProxyJump: %.2f)\n",
		relayed, float64(relayed)/float64(len(gz)), float64(jumped)/float64(len(gz)))
	if relayed > len64(gz)*3/2 {
		t.Errorf("relay sent %d bytes over the controller's link, more than 1.5 binaries (%d)", relayed, len(gz))
	}
	if jumped < 5*relayed {
		t.Errorf("ProxyJump sent %d bytes, relay %d: the comparison shows no saving, so the measure is suspect", jumped, relayed)
	}
}

func len64(b []byte) int64 { return int64(len(b)) }

// Cutting the bastion's link mid-run fails the hosts behind it with an
// error naming the relay, while flat hosts finish.
func TestRelayLinkCutFailsTheSubtreeOnly(t *testing.T) {
	l := treeLab(t)
	bastion := l.Host("bastion")
	t.Cleanup(func() { restoreLink(t, bastion) })
	dir := project(t, map[string]string{
		"inventory.toml": treeInventory(l, ""),
		"site.star": `
inv = inventory("inventory.toml")

def main(host):
    exec("slow", command = "sleep 4; echo done > /srv/slow")

role("all", hosts = inv.filter(groups = ["flat", "rack"]), main = main)
`,
	})
	for _, h := range l.Hosts {
		os.Remove(h.Path("/srv/slow"))
	}
	rec := &recorder{}
	o := options(t, l, rec)
	o.Transport.KeepAlive = 500 * time.Millisecond
	var once sync.Once
	sink := o.Sink
	o.Sink = func(e event.Event) {
		sink(e)
		if e.Type == event.HostStart && e.Host == "rack10" {
			once.Do(func() {
				go func() {
					time.Sleep(500 * time.Millisecond)
					if err := bastion.CutLink(); err != nil {
						t.Error(err)
					}
				}()
			})
		}
	}
	start := time.Now()
	res := run(t, load(t, dir), o)
	t.Logf("run with a cut took %v", time.Since(start).Round(time.Millisecond))
	for _, e := range rec.events {
		if e.Type == event.HostDone || e.Type == event.Unreachable {
			t.Logf("%s %s after %v", e.Host, e.Type, e.Time.Sub(start).Round(100*time.Millisecond))
		}
	}
	for _, n := range []string{"host1", "host2"} {
		if hr := res.Hosts[n]; hr == nil || hr.Failed || hr.Unreachable {
			t.Errorf("%s: %+v, want success", n, hr)
		}
	}
	for i := 1; i <= 10; i++ {
		n := "rack" + strconv.Itoa(i)
		hr := res.Hosts[n]
		if hr == nil || !(hr.Failed || hr.Unreachable) || !strings.Contains(hr.Err, "bastion") {
			t.Errorf("%s: %+v, want a failure naming the bastion", n, hr)
		} else if i == 1 {
			t.Logf("%s: %s", n, hr.Err)
		}
	}
	if t.Failed() {
		t.Log(rec.dump())
	}
}

// Become works on relayed hosts too: the broker is started through the
// relay like the agent, and the password still only crosses the encrypted
// streams.
func TestRelayedHostsBecomeRoot(t *testing.T) {
	l := treeLab(t)
	pw := l.Passwords.DeployPW
	var inv strings.Builder
	fmt.Fprintf(&inv, "[groups.relays.hosts]\n%q = \"herd_host=%s\"\n%q = \"herd_host=%s herd_via=bastion\"\n",
		"bastion", l.Host("bastion").Addr, "racktop", l.Host("racktop").Addr)
	inv.WriteString("[groups.become.hosts]\n")
	fmt.Fprintf(&inv, "%q = \"herd_host=%s herd_via=racktop herd_user=deploy-pw herd_sudo_password=%s\"\n", "rack1", l.Host("rack1").Addr, pw)
	fmt.Fprintf(&inv, "%q = \"herd_host=%s herd_via=racktop herd_user=deploy herd_become_method=doas\"\n", "rack2", l.Host("rack2").Addr)
	for _, n := range []string{"rack1", "rack2"} {
		cleanBecome(t, l.Host(n))
	}
	dir := project(t, map[string]string{"inventory.toml": inv.String(), "site.star": rootFilePolicy})
	rec := &recorder{}
	spy := spyOn(l, []string{"bastion", "racktop", "rack1", "rack2"})
	res := run(t, load(t, dir), options(t, l, rec))
	captured := spy.stop()
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("run failed:\n%s", rec.dump())
	}
	for _, n := range []string{"rack1", "rack2"} {
		if who, _ := l.Host(n).ReadFile("/root/herd-become.who"); strings.TrimSpace(string(who)) != "root" {
			t.Errorf("%s: exec ran as %q, want root", n, who)
		}
	}
	assertNoSecret(t, l, []string{"bastion", "racktop", "rack1", "rack2"}, rec, captured, pw)
}

// Children's host keys are checked against the controller's known_hosts,
// not trusted by the relay: a changed key and an unknown one fail that host
// with the usual errors, and its siblings go on.
func TestRelayChecksChildHostKeysOnTheController(t *testing.T) {
	l := treeLab(t)
	raw, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var rack3Key string
	for _, ln := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if f := strings.Fields(ln); len(f) == 3 && strings.HasPrefix(f[0], "rack3,") {
			rack3Key = f[1] + " " + f[2]
		}
	}
	for _, ln := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		switch name, _, _ := strings.Cut(ln, ","); name {
		case "rack1":
			ln = strings.SplitN(ln, " ", 2)[0] + " " + rack3Key // another host's key
		case "rack2":
			continue // unknown
		}
		lines = append(lines, ln)
	}
	kh := t.TempDir() + "/known_hosts"
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := project(t, map[string]string{"inventory.toml": treeInventory(l, ""), "site.star": rackPolicy})
	rec := &recorder{}
	o := options(t, l, rec)
	o.Defaults.KnownHosts = []string{kh}
	res := run(t, load(t, dir), o)
	want := map[string]string{"rack1": "HOST KEY CHANGED", "rack2": "unknown host key"}
	for n, msg := range want {
		if hr := res.Hosts[n]; hr == nil || !hr.Unreachable || !strings.Contains(hr.Err, msg) {
			t.Errorf("%s: %+v, want unreachable with %q", n, hr, msg)
		} else {
			t.Logf("%s: %s", n, hr.Err)
		}
	}
	if hr := res.Hosts["rack3"]; hr == nil || hr.Failed || hr.Unreachable {
		t.Errorf("rack3: %+v, want success", hr)
	}
}

// restoreLink brings the host's link back and waits until its sshd answers
// again: the controller's neighbour entry for it failed during the cut, and
// the next test must not see "no route to host".
func restoreLink(t *testing.T, h *lab.Host) {
	if err := h.RestoreLink(); err != nil {
		t.Error(err)
		return
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Addr, "22"), time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%s: sshd unreachable 15s after the link came back", h.Name)
}
