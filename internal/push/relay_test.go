package push_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/push"
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

// The controller-link cost of a 10-host rack behind bastion → racktop, in
// both herd_via modes, cold (no agent cached anywhere) and warm (the run
// again). Trusted relays install children from the parent's cache, so the
// binary crosses the link once; the default end-to-end SSH sends each
// child its own copy on a cold run, and on a warm one only plans and
// handshakes cross either way.
func TestRelayControllerLinkBytesForARack(t *testing.T) {
	l := treeLab(t)
	gz, _, _ := agentBinary(t).Payload()
	bastion := l.Host("bastion")

	measure := func(mode string) int64 {
		extra := ""
		if mode == "trusted" {
			extra = "herd_via_mode=trusted"
		}
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
	bins := func(n int64) float64 { return float64(n) / float64(len(gz)) }
	got := map[string][2]int64{}
	for _, mode := range []string{"default", "trusted"} {
		clearAgentCaches(l)
		cold := measure(mode)
		warm := measure(mode)
		got[mode] = [2]int64{cold, warm}
		t.Logf("%s: controller link for 10 rack hosts: cold %d bytes (%.2f binaries of %d gzipped), warm %d bytes (%.2f)",
			mode, cold, bins(cold), len(gz), warm, bins(warm))
		fmt.Printf("relay %s: cold %d bytes = %.2f agent binaries, warm %d bytes = %.2f\n", mode, cold, bins(cold), warm, bins(warm))
		if warm*3 > cold {
			t.Errorf("%s: warm run sent %d bytes, cold %d: the cache saved less than expected, so the measure is suspect", mode, warm, cold)
		}
	}
	if trusted := got["trusted"][0]; trusted > len64(gz)*3/2 {
		t.Errorf("trusted relay sent %d bytes over the controller's link cold, more than 1.5 binaries (%d)", trusted, len(gz))
	}
	if got["default"][0] < 5*got["trusted"][0] {
		t.Errorf("default mode sent %d bytes cold, trusted %d: the comparison shows no saving, so the measure is suspect", got["default"][0], got["trusted"][0])
	}
}

func len64(b []byte) int64 { return int64(len(b)) }

// Cutting the bastion's link mid-run fails the hosts behind it with an
// error naming the relay, while flat hosts finish.
func TestRelayLinkCutFailsTheSubtreeOnly(t *testing.T) {
	l := treeLab(t)
	start := time.Now()
	res, rec, _ := runCuttingLink(t, l, l.Host("bastion"), "rack10", 500*time.Millisecond, 4)
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

// runCuttingLink runs a role that sleeps sleepSecs on every flat and rack
// host of the tree lab, and cuts victim's link delay after trigger's role
// started. It returns the result, the events and when the cut happened
// (zero if trigger never started).
func runCuttingLink(t *testing.T, l *lab.Lab, victim *lab.Host, trigger string, delay time.Duration, sleepSecs int) (*push.Result, *recorder, time.Time) {
	t.Helper()
	t.Cleanup(func() { restoreLink(t, victim) })
	dir := project(t, map[string]string{
		"inventory.toml": treeInventory(l, "herd_via_mode=trusted"),
		"site.star": fmt.Sprintf(`
inv = inventory("inventory.toml")

def main(host):
    exec("slow", command = "sleep %d; echo done > /srv/slow")

role("all", hosts = inv.filter(groups = ["flat", "rack"]), main = main)
`, sleepSecs),
	})
	// Warm every agent cache first with the default keepalive: a cold
	// install of a dozen agents on two shared CPUs can miss the short
	// keepalives below, which are meant for the cut link only.
	warm := project(t, map[string]string{
		"inventory.toml": treeInventory(l, "herd_via_mode=trusted"),
		"site.star": `
inv = inventory("inventory.toml")
role("all", hosts = inv.filter(groups = ["flat", "rack"]), main = lambda host: noop("warm"))
`,
	})
	if res := run(t, load(t, warm), options(t, l, &recorder{})); total(res).Failed+total(res).Unreachable != 0 {
		t.Fatalf("warm-up run failed: %+v", total(res))
	}
	for _, h := range l.Hosts {
		os.Remove(h.Path("/srv/slow"))
	}
	rec := &recorder{}
	o := options(t, l, rec)
	o.Transport.KeepAlive = 500 * time.Millisecond
	var once sync.Once
	cut := make(chan time.Time, 1)
	sink := o.Sink
	o.Sink = func(e event.Event) {
		sink(e)
		if e.Type == event.HostStart && e.Host == trigger {
			once.Do(func() {
				go func() {
					time.Sleep(delay)
					if err := victim.CutLink(); err != nil {
						t.Error(err)
					}
					cut <- time.Now()
				}()
			})
		}
	}
	res := run(t, load(t, dir), o)
	var cutAt time.Time
	select {
	case cutAt = <-cut:
	default:
	}
	return res, rec, cutAt
}

// Become works on hosts behind a parent in both modes (rack1 trusted: the
// broker is started through the parent's agent like the agent; rack2 the
// default end-to-end SSH), and the password still only crosses encrypted
// streams.
func TestRelayedHostsBecomeRoot(t *testing.T) {
	l := treeLab(t)
	pw := l.Passwords.DeployPW
	var inv strings.Builder
	fmt.Fprintf(&inv, "[groups.relays.hosts]\n%q = \"herd_host=%s\"\n%q = \"herd_host=%s herd_via=bastion\"\n",
		"bastion", l.Host("bastion").Addr, "racktop", l.Host("racktop").Addr)
	inv.WriteString("[groups.become.hosts]\n")
	fmt.Fprintf(&inv, "%q = \"herd_host=%s herd_via=racktop herd_via_mode=trusted herd_user=deploy-pw herd_sudo_password=%s\"\n", "rack1", l.Host("rack1").Addr, pw)
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

// Children's host keys are checked against the controller's known_hosts
// by transport's one check, not trusted to the parent: a changed key and
// an unknown one fail that host with the usual errors, and its siblings go
// on. In the default mode this is the controller's own SSH handshake with
// the child, end to end through the parent.
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
	for _, mode := range []string{"", "herd_via_mode=trusted"} {
		dir := project(t, map[string]string{"inventory.toml": treeInventory(l, mode), "site.star": rackPolicy})
		rec := &recorder{}
		o := options(t, l, rec)
		o.Defaults.KnownHosts = []string{kh}
		res := run(t, load(t, dir), o)
		want := map[string]string{"rack1": "HOST KEY CHANGED", "rack2": "unknown host key"}
		for n, msg := range want {
			if hr := res.Hosts[n]; hr == nil || !hr.Unreachable || !strings.Contains(hr.Err, msg) {
				t.Errorf("%q: %s: %+v, want unreachable with %q", mode, n, hr, msg)
			} else {
				t.Logf("%q: %s: %s", mode, n, hr.Err)
			}
		}
		if hr := res.Hosts["rack3"]; hr == nil || hr.Failed || hr.Unreachable {
			t.Errorf("%q: rack3: %+v, want success", mode, hr)
		}
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
		if sshdAnswers(h) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%s: sshd unreachable 15s after the link came back", h.Name)
}

// Cutting one child's link below a relay fails that child alone, within a
// few keepalive intervals and with an error naming it and the cause; its
// siblings behind the same rack top finish.
func TestRelayCutChildLinkFailsOnlyThatChild(t *testing.T) {
	l := treeLab(t)
	// The cut lands inside the exec's sleep.
	res, rec, cutAt := runCuttingLink(t, l, l.Host("rack3"), "rack3", time.Second, 3)
	if cutAt.IsZero() {
		t.Fatalf("rack3 never started, so its link was not cut:\n%s", rec.dump())
	}
	for n, hr := range res.Hosts {
		if n == "rack3" {
			continue
		}
		if hr == nil || hr.Failed || hr.Unreachable {
			t.Errorf("%s: %+v, want success", n, hr)
		}
	}
	if len(res.Hosts) != 12 {
		t.Errorf("%d hosts in the result, want 12", len(res.Hosts))
	}
	hr := res.Hosts["rack3"]
	if hr == nil || !(hr.Failed || hr.Unreachable) || !strings.Contains(hr.Err, "rack3") || !strings.Contains(hr.Err, "keepalive") {
		t.Fatalf("rack3: %+v, want a failure naming rack3 and its silent link", hr)
	}
	t.Logf("rack3: %s", hr.Err)
	var failedAt time.Time
	for _, e := range rec.events {
		if e.Host == "rack3" && (e.Type == event.HostDone || e.Type == event.Unreachable) {
			failedAt = e.Time
		}
	}
	if failedAt.IsZero() {
		t.Fatalf("no end event for rack3:\n%s", rec.dump())
	}
	if d := failedAt.Sub(cutAt); d > 20*time.Second {
		t.Errorf("rack3 failed %v after its link was cut, want within 20s", d.Round(100*time.Millisecond))
	} else {
		t.Logf("rack3 failed %v after its link was cut", d.Round(100*time.Millisecond))
	}
}

// sshdAnswers dials h's sshd from where herd reaches it: the controller, or
// for a host behind a relay, its parent.
func sshdAnswers(h *lab.Host) bool {
	if h.Via == nil {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Addr, "22"), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := h.Via.Exec(ctx, "bash", "-c", "exec 3<>/dev/tcp/"+h.Addr+"/22")
	return err == nil
}

// A relayed child honours the controller's ssh_config like a direct host:
// an alias with HostName, User and IdentityFile is resolved on the
// controller, and the parent dials what it resolved to.
func TestRelayedChildUsesTheControllersSSHConfig(t *testing.T) {
	l := treeLab(t)
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	text := fmt.Sprintf("Host rack3-alias\n  HostName %s\n  User root\n  IdentityFile %s\n\nHost bastion racktop\n  User root\n  IdentityFile %s\n",
		l.Host("rack3").Addr, l.KeyFile, l.KeyFile)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var inv strings.Builder
	fmt.Fprintf(&inv, "[groups.relays.hosts]\n%q = \"herd_host=%s\"\n%q = \"herd_host=%s herd_via=bastion\"\n",
		"bastion", l.Host("bastion").Addr, "racktop", l.Host("racktop").Addr)
	fmt.Fprintf(&inv, "[groups.rack.hosts]\n%q = \"herd_via=racktop herd_via_mode=trusted\"\n", "rack3-alias")
	dir := project(t, map[string]string{"inventory.toml": inv.String(), "site.star": rackPolicy})
	os.Remove(l.Host("rack3").Path("/srv/relayed"))
	rec := &recorder{}
	o := options(t, l, rec)
	o.Defaults.SSHUser, o.Defaults.KeyFile = "", "" // only the config names them
	o.Transport.SSHConfigFile = cfg
	res := run(t, load(t, dir), o)
	if hr := res.Hosts["rack3-alias"]; hr == nil || hr.Failed || hr.Unreachable {
		t.Fatalf("rack3-alias: %+v, want success\n%s", hr, rec.dump())
	}
	if b, err := l.Host("rack3").ReadFile("/srv/relayed"); err != nil || string(b) != "via relay on rack3-alias\n" {
		t.Errorf("rack3 /srv/relayed = %q, %v; want the file written through the alias", b, err)
	}
}

// Files far larger than the relay window reach hosts two relays down
// intact: stdin credit is returned hop by hop, so flow control slows the
// transfer to the slowest link without stalling it.
func TestRelayCarriesFilesLargerThanTheWindow(t *testing.T) {
	l := treeLab(t)
	dir := project(t, map[string]string{
		"inventory.toml": treeInventory(l, "herd_via_mode=trusted"),
		"site.star": `
inv = inventory("inventory.toml")

def main(host):
    file("/srv/big.bin", source = "files/big.bin", mode = 0o644)

role("rack", hosts = inv.filter(hosts = ["rack1", "rack2", "rack3"]), main = main)
`,
	})
	want := writeRandom(t, filepath.Join(dir, "files", "big.bin"), 7, 8<<20)
	for _, n := range []string{"rack1", "rack2", "rack3"} {
		os.Remove(l.Host(n).Path("/srv/big.bin"))
	}
	rec := &recorder{}
	res := run(t, load(t, dir), options(t, l, rec))
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("run failed:\n%s", rec.dump())
	}
	for _, n := range []string{"rack1", "rack2", "rack3"} {
		if got := hostHash(t, l.Host(n), "/srv/big.bin"); got != want {
			t.Errorf("%s: big.bin sha256 %s, want %s", n, got, want)
		}
	}
}
