package push_test

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Hosts behind relays (herd_via end to end, and trusted) and hosts that
// become root with a password take part in the exchange like any other:
// each exports a value only its target knows (its name and the uid the
// command ran as) and collects everyone's into a root-owned file, waiting
// for the others' in the same role. Export, Exported and Collected travel
// over the same agent channel, however it was set up. (collect_timeout is
// generous: a cold become agent behind two relays can take half a minute
// to start on a loaded machine, and the others wait for its export.)
func TestExchangeThroughRelaysAndBecome(t *testing.T) {
	l := treeLab(t)
	pw := l.Passwords.DeployPW
	// Users and modes as the relay tests use them, so the agents they
	// cache on these hosts serve both.
	hosts := []struct{ name, vars string }{
		{"host1", ""},
		{"rack1", "herd_via=racktop herd_via_mode=trusted herd_user=deploy-pw herd_sudo_password=" + pw},
		{"rack2", "herd_via=racktop"},
		{"rack3", "herd_via=racktop herd_user=deploy-pw herd_sudo_password=" + pw},
		{"rack4", "herd_via=racktop herd_via_mode=trusted"},
	}
	var inv strings.Builder
	fmt.Fprintf(&inv, "[groups.relays.hosts]\n%q = \"herd_host=%s\"\n%q = \"herd_host=%s herd_via=bastion\"\n",
		"bastion", l.Host("bastion").Addr, "racktop", l.Host("racktop").Addr)
	inv.WriteString("[groups.g.hosts]\n")
	var names []string
	for _, h := range hosts {
		fmt.Fprintf(&inv, "%q = \"herd_host=%s %s\"\n", h.name, l.Host(h.name).Addr, h.vars)
		names = append(names, h.name)
		l.Host(h.name).Exec(t.Context(), "rm", "-f", "/etc/xrel")
	}
	sort.Strings(names)
	dir := project(t, map[string]string{
		"inventory.toml": inv.String(),
		"site.star": `
inv = inventory("inventory.toml")
g = inv.filter(groups = "g")
def main(host):
    gen = exec("gen", command = "echo " + host.name + "-uid$(id -u)", changes = False)
    export("who", gen.stdout)
    content = ""
    for h, v in sorted(collect("who", hosts = g, collect_timeout = 120).items()):
        content += h + "=" + v
    file("/etc/xrel", content = content, mode = 0o600)
role("x", hosts = g, main = main, sudo = True)
`})
	etcdDir := filepath.Join(t.TempDir(), "etcd")
	pol := load(t, dir)
	rec := &recorder{}
	if c := total(run(t, pol, withExchange(options(t, l, rec), etcdDir))); c.Failed != 0 || c.Unreachable != 0 {
		t.Fatalf("%+v\n%s", c, rec.dump())
	}
	want := ""
	for _, n := range names {
		want += n + "=" + n + "-uid0\n"
	}
	for _, n := range names {
		if got := readOn(t, l.Host(n), "/etc/xrel"); got != want {
			t.Fatalf("%s's /etc/xrel:\n%s\nwant:\n%s\n%s", n, got, want, rec.dump())
		}
	}
}
