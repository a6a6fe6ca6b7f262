package push_test

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// The agent's facts about a lab host: its own network namespace's
// addresses and default route, memory, mounts and package manager, read in
// a policy (Starlark) and in a template, both unchanged on a rerun.
func TestFactsOnLabHosts(t *testing.T) {
	l := flatLab(t)
	const policy = `
def main(host):
    f = host.facts
    addrs = []
    for name, i in f.interfaces.items():
        addrs += i.ipv4
    file("/tmp/herd-facts", content = "%s|%s|%s|%d|%s|%s|%s\n" % (
        ",".join(addrs), f.default_ipv4.interface, f.default_ipv4.address, f.memtotal_mb,
        f.pkg_mgr, f.init_system, ",".join([m.mount for m in f.mounts])))
    template("/tmp/herd-facts-tmpl", src = "facts.tmpl")
    template("/tmp/herd-facts-j2", src = "facts.j2", vars = {"listen": ["a", "b"]})
role("facts", hosts = inv.hosts, main = main)
`
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"kinds": kindHosts}),
		"site.star":      "inv = inventory(\"inventory.toml\")\n" + policy,
		"facts.j2": "# {{ inventory_hostname }}\n{% for name, i in ansible_facts.interfaces | dictsort %}{{ name }}: {{ i.ipv4 | join(' ') }}\n{% endfor %}" +
			"route {{ facts.default_ipv4.interface | default('none', true) }} mem {{ 'big' if facts.memtotal_mb > 0 else 'zero' }} {{ listen | to_json }}\n",
		"facts.tmpl": `{{.facts.default_ipv4.address}} {{range $n, $i := .facts.interfaces}}{{$n}}={{join "," $i.ipv4}} {{end}}` + "\n",
	})
	// A default route inside each host's own network namespace, via the
	// machine's end of its /30 link, so default_ipv4 has something to find.
	for _, name := range kindHosts {
		h := l.Host(name)
		ip := net.ParseIP(h.Addr).To4()
		gw := net.IPv4(ip[0], ip[1], ip[2], ip[3]-1).String()
		hostExec(t, h, "ip", "route", "replace", "default", "via", gw, "dev", "eth0")
	}
	rec := &recorder{}
	check := options(t, l, rec)
	check.Check = true
	if c := total(run(t, load(t, dir), check)); c.Changed != 3*len(kindHosts) {
		t.Errorf("check: %+v\n%s", c, rec.dump())
	}
	rec = &recorder{}
	res := run(t, load(t, dir), options(t, l, rec))
	if c := total(res); c.Changed != 3*len(kindHosts) || c.Failed != 0 {
		t.Fatalf("first run: %+v\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		h := l.Host(name)
		got := strings.TrimSpace(readHostFile(t, h, "/tmp/herd-facts"))
		f := strings.Split(got, "|")
		if len(f) != 7 {
			t.Fatalf("%s: facts file %q", name, got)
		}
		if !strings.Contains(","+f[0]+",", ","+h.Addr+"/") || !strings.Contains(f[0], "127.0.0.1/8") {
			t.Errorf("%s: addresses %q lack %s and loopback", name, f[0], h.Addr)
		}
		// The kernel's view inside the host, as ip(8) reports it.
		route := strings.Fields(hostExec(t, h, "sh", "-c", "ip -4 route show default || true"))
		wantIf := ""
		for i := 0; i+1 < len(route); i++ {
			if route[i] == "dev" {
				wantIf = route[i+1]
			}
		}
		t.Logf("%s: default route %q via %q", name, f[2], f[1])
		if f[1] != wantIf || wantIf != "eth0" || f[2] != h.Addr {
			t.Errorf("%s: default route %q %q, ip route says %v", name, f[1], f[2], route)
		}
		if mb, _ := strconv.Atoi(f[3]); mb <= 0 {
			t.Errorf("%s: memtotal_mb %q", name, f[3])
		}
		if f[4] != "apt" && f[4] != "dnf" && f[4] != "apk" {
			t.Errorf("%s: pkg_mgr %q", name, f[4])
		}
		if f[5] == "" || !strings.Contains(","+f[6]+",", ",/,") {
			t.Errorf("%s: init %q, mounts %q", name, f[5], f[6])
		}
		tmpl := readHostFile(t, h, "/tmp/herd-facts-tmpl")
		if !strings.Contains(tmpl, "lo=127.0.0.1/8") || !strings.Contains(tmpl, h.Addr+"/") || !strings.HasPrefix(tmpl, f[2]+" ") {
			t.Errorf("%s: template rendered %q", name, tmpl)
		}
	}
	for _, name := range kindHosts {
		h := l.Host(name)
		j2 := readHostFile(t, h, "/tmp/herd-facts-j2")
		route := "none"
		if f := strings.Split(readHostFile(t, h, "/tmp/herd-facts"), "|"); f[1] != "" {
			route = f[1]
		}
		if !strings.HasPrefix(j2, "# "+name+"\n") || !strings.Contains(j2, "\nlo: 127.0.0.1/8\n") ||
			!strings.Contains(j2, h.Addr+"/") || !strings.HasSuffix(j2, "route "+route+` mem big ["a","b"]`+"\n") {
			t.Errorf("%s: jinja template rendered %q", name, j2)
		}
	}
	rec = &recorder{}
	if c := total(run(t, load(t, dir), options(t, l, rec))); c.Changed != 0 {
		t.Errorf("second run: %+v, facts are not stable\n%s", c, rec.dump())
	}
}
