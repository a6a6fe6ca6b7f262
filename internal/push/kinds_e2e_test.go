package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/push"
)

// The account and package kinds change system databases, so they run only
// on host9 and host10, which no other test of this package uses.
var kindHosts = []string{"host9", "host10"}

// e2eHash is `openssl passwd -6 -salt herde2esalt 'correct horse'`.
const e2eHash = "$6$herde2esalt$FxzatjNgXIMWKk8YKcu8MovMSAlqCnCgugrkKavFWLfM2CfPar0orSN3sIk4qAY9bMFAXZxgG7NaQFfzo8he0/"

// allEvents renders every field of every event, so a secret anywhere in
// one (message, diff, output) is found.
func allEvents(t *testing.T, rec *recorder) string {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	b, err := json.Marshal(rec.events)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// msgOf returns the message of host's terminal event for resource id.
func msgOf(rec *recorder, host, id string) (event.Type, string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.events {
		if e.Host == host && e.Resource == id && (e.Type == event.OK || e.Type == event.Changed || e.Type == event.Failed) {
			return e.Type, e.Msg
		}
	}
	return "", ""
}

// pushKinds runs policy body (the main function of one role over
// kindHosts, or of several roles) and fails the test when a host fails.
func pushKinds(t *testing.T, l *lab.Lab, body string, check bool) (*recorder, *push.Result) {
	t.Helper()
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"kinds": kindHosts}),
		"site.star":      "inv = inventory(\"inventory.toml\")\n" + body,
	})
	rec := &recorder{}
	o := options(t, l, rec)
	o.Check = check
	res := run(t, load(t, dir), o)
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("run failed:\n%s", rec.dump())
	}
	return rec, res
}

func accountsPolicy(shell string, groups string, state string) string {
	if state == "absent" {
		return `
def main(host):
    user("herd-alice", state = "absent", remove_home = True)
    group("herd-ops", state = "absent")
    group("herd-sys", state = "absent")
role("accounts", hosts = inv.hosts, main = main)
`
	}
	return fmt.Sprintf(`
def main(host):
    group("herd-ops", gid = 2345)
    group("herd-sys", system = True)
    user("herd-alice", uid = 2345, group = "herd-ops", groups = %s, shell = %q,
         home = "/home/herd-alice", password_hash = %q)
role("accounts", hosts = inv.hosts, main = main)
`, groups, shell, e2eHash)
}

func readHostFile(t *testing.T, h *lab.Host, path string) string {
	t.Helper()
	b, err := h.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hasLine reports whether text has a line starting with prefix.
func hasLine(text, prefix string) (string, bool) {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line, true
		}
	}
	return "", false
}

func TestKindsUserAndGroup(t *testing.T) {
	l := flatLab(t)
	var dumps []string

	// Check mode reports the changes and makes none.
	rec, res := pushKinds(t, l, accountsPolicy("/bin/sh", `["herd-sys", "sudo"]`, "present"), true)
	dumps = append(dumps, allEvents(t, rec))
	if c := total(res); c.Changed != 3*len(kindHosts) {
		t.Errorf("check: %+v, want 3 changes per host\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		if _, ok := hasLine(readHostFile(t, l.Host(name), "/etc/passwd"), "herd-alice:"); ok {
			t.Fatalf("%s: check mode created the user", name)
		}
	}

	rec, _ = pushKinds(t, l, accountsPolicy("/bin/sh", `["herd-sys", "sudo"]`, "present"), false)
	dumps = append(dumps, allEvents(t, rec))
	for _, name := range kindHosts {
		h := l.Host(name)
		if typ, msg := msgOf(rec, name, "user:herd-alice"); typ != event.Changed || msg != "create, password set" {
			t.Errorf("%s: user event %s %q", name, typ, msg)
		}
		passwd, group, shadow := readHostFile(t, h, "/etc/passwd"), readHostFile(t, h, "/etc/group"), readHostFile(t, h, "/etc/shadow")
		if line, _ := hasLine(passwd, "herd-alice:"); line != "herd-alice:x:2345:2345::/home/herd-alice:/bin/sh" {
			t.Errorf("%s: passwd line %q", name, line)
		}
		if line, _ := hasLine(group, "herd-ops:"); line != "herd-ops:x:2345:" {
			t.Errorf("%s: group line %q", name, line)
		}
		sys, _ := hasLine(group, "herd-sys:")
		var gid int
		if _, err := fmt.Sscanf(strings.Split(sys+"::", ":")[2], "%d", &gid); err != nil || gid >= 1000 || !strings.HasSuffix(sys, ":herd-alice") {
			t.Errorf("%s: system group line %q: want a gid below 1000 and herd-alice as member", name, sys)
		}
		if line, _ := hasLine(group, "sudo:"); !strings.Contains(line, "herd-alice") {
			t.Errorf("%s: sudo line %q lacks herd-alice", name, line)
		}
		if line, _ := hasLine(shadow, "herd-alice:"); !strings.HasPrefix(line, "herd-alice:"+e2eHash+":") {
			t.Errorf("%s: shadow line does not hold the hash", name)
		}
		if fi, err := os.Stat(h.Path("/home/herd-alice")); err != nil || !fi.IsDir() {
			t.Errorf("%s: home not created: %v", name, err)
		}
	}
	if _, ok := hasLine(readFileOrEmpty("/etc/passwd"), "herd-alice:"); ok {
		t.Fatal("herd-alice exists on the controller")
	}

	rec, res = pushKinds(t, l, accountsPolicy("/bin/sh", `["herd-sys", "sudo"]`, "present"), false)
	dumps = append(dumps, allEvents(t, rec))
	if c := total(res); c.Changed != 0 || c.Failed != 0 || c.OK != 3*len(kindHosts) {
		t.Errorf("second run: %+v, want changed=0\n%s", c, rec.dump())
	}

	// A new shell and one group fewer: the summary says exactly that.
	rec, _ = pushKinds(t, l, accountsPolicy("/bin/bash", `["herd-sys"]`, "present"), false)
	dumps = append(dumps, allEvents(t, rec))
	for _, name := range kindHosts {
		if typ, msg := msgOf(rec, name, "user:herd-alice"); typ != event.Changed || msg != "groups -sudo, shell /bin/sh→/bin/bash" {
			t.Errorf("%s: user event %s %q", name, typ, msg)
		}
		if line, _ := hasLine(readHostFile(t, l.Host(name), "/etc/passwd"), "herd-alice:"); !strings.HasSuffix(line, ":/bin/bash") {
			t.Errorf("%s: passwd line %q", name, line)
		}
		if line, _ := hasLine(readHostFile(t, l.Host(name), "/etc/group"), "sudo:"); strings.Contains(line, "herd-alice") {
			t.Errorf("%s: still in sudo: %q", name, line)
		}
	}

	// An empty list is a wanted state too: no supplementary group at all.
	rec, _ = pushKinds(t, l, accountsPolicy("/bin/bash", `[]`, "present"), false)
	dumps = append(dumps, allEvents(t, rec))
	for _, name := range kindHosts {
		if typ, msg := msgOf(rec, name, "user:herd-alice"); typ != event.Changed || msg != "groups -herd-sys" {
			t.Errorf("%s: user event %s %q", name, typ, msg)
		}
		if line, _ := hasLine(readHostFile(t, l.Host(name), "/etc/group"), "herd-sys:"); strings.Contains(line, "herd-alice") {
			t.Errorf("%s: still in herd-sys: %q", name, line)
		}
	}

	rec, _ = pushKinds(t, l, accountsPolicy("", "", "absent"), false)
	dumps = append(dumps, allEvents(t, rec))
	for _, name := range kindHosts {
		h := l.Host(name)
		for _, f := range []string{"/etc/passwd", "/etc/group", "/etc/shadow"} {
			text := readHostFile(t, h, f)
			for _, who := range []string{"herd-alice:", "herd-ops:", "herd-sys:"} {
				if line, ok := hasLine(text, who); ok {
					t.Errorf("%s: %s still has %q", name, f, line)
				}
			}
		}
		if _, err := os.Stat(h.Path("/home/herd-alice")); !os.IsNotExist(err) {
			t.Errorf("%s: home not removed: %v", name, err)
		}
	}
	rec, res = pushKinds(t, l, accountsPolicy("", "", "absent"), false)
	if c := total(res); c.Changed != 0 || c.Failed != 0 {
		t.Errorf("absent twice: %+v\n%s", c, rec.dump())
	}

	for i, d := range dumps {
		if strings.Contains(d, e2eHash) || strings.Contains(d, "herde2esalt") {
			t.Errorf("run %d: the password hash is in an event", i+1)
		}
	}
}

func readFileOrEmpty(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// buildDeb makes a tiny package with one file; dpkg-deb only reads and
// writes files in the test's temp dir.
func buildDeb(t *testing.T, version string) string {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for path, body := range map[string]string{
		"DEBIAN/control": "Package: herd-e2e\nVersion: " + version + "\nArchitecture: all\n" +
			"Maintainer: herd tests <herd@example.org>\nDescription: herd end-to-end test package\n",
		"usr/share/herd-e2e/hello": "hello " + version + "\n",
	} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(dir, "herd-e2e.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v: %s", err, out)
	}
	return deb
}

func copyToHost(t *testing.T, h *lab.Host, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Path(dst), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dpkgStatus is the package's dpkg status line inside host h, or "" when
// dpkg does not know it.
func dpkgStatus(t *testing.T, h *lab.Host, pkg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := h.Exec(ctx, "dpkg-query", "-W", "-f", "${Status} ${Version}", pkg)
	return strings.TrimSpace(string(out))
}

// The package kind can only be tried with dpkg/apt here: apk and dnf are
// covered by unit tests of their command lines. Lab hosts have no network,
// so installs come from a local .deb, and the removal is of a package of
// the base system, in host9's private overlay only.
func TestKindsPackage(t *testing.T) {
	l := flatLab(t)
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		t.Skip("not a dpkg system")
	}
	if !strings.HasPrefix(dpkgStatus(t, l.Host("host9"), "doas"), "install ok installed") {
		t.Skip("doas is not installed on the lab hosts' base system")
	}
	deb := buildDeb(t, "1.0")
	for _, name := range kindHosts {
		copyToHost(t, l.Host(name), deb, "/tmp/herd-e2e.deb")
	}
	const policy = `
def main(host):
    package("herd-e2e", deb = "/tmp/herd-e2e.deb")
def drop(host):
    package("doas", state = "absent")
role("install", hosts = inv.hosts, main = main)
role("drop", hosts = inv.filter(hosts = ["host9"]), main = drop)
`
	rec, res := pushKinds(t, l, policy, true)
	if c := total(res); c.Changed != 3 {
		t.Errorf("check: %+v, want 3 pending changes\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		if st := dpkgStatus(t, l.Host(name), "herd-e2e"); st != "" {
			t.Fatalf("%s: check mode installed herd-e2e: %q", name, st)
		}
	}
	if st := dpkgStatus(t, l.Host("host9"), "doas"); !strings.HasPrefix(st, "install ok installed") {
		t.Fatalf("host9: check mode removed doas: %q", st)
	}

	rec, _ = pushKinds(t, l, policy, false)
	for _, name := range kindHosts {
		h := l.Host(name)
		if typ, msg := msgOf(rec, name, "package:herd-e2e"); typ != event.Changed || msg != "install herd-e2e 1.0" {
			t.Errorf("%s: package event %s %q", name, typ, msg)
		}
		if st := dpkgStatus(t, h, "herd-e2e"); st != "install ok installed 1.0" {
			t.Errorf("%s: herd-e2e status %q", name, st)
		}
		if got := readHostFile(t, h, "/usr/share/herd-e2e/hello"); got != "hello 1.0\n" {
			t.Errorf("%s: packaged file %q", name, got)
		}
	}
	if typ, msg := msgOf(rec, "host9", "package:doas"); typ != event.Changed || msg != "remove doas" {
		t.Errorf("host9: doas event %s %q", typ, msg)
	}
	if st := dpkgStatus(t, l.Host("host9"), "doas"); strings.Contains(st, "ok installed") {
		t.Errorf("host9: doas still installed: %q", st)
	}
	if st := dpkgStatus(t, l.Host("host10"), "doas"); !strings.HasPrefix(st, "install ok installed") {
		t.Errorf("host10: doas status %q: the removal leaked out of host9", st)
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", "doas").Output(); err != nil || string(out) != "install ok installed" {
		t.Errorf("controller: doas status %q (%v): the removal leaked out of the lab", out, err)
	}
	if _, err := os.Stat("/usr/share/herd-e2e"); err == nil {
		t.Fatal("herd-e2e is installed on the controller")
	}

	rec, res = pushKinds(t, l, policy, false)
	if c := total(res); c.Changed != 0 || c.Failed != 0 || c.OK != 3 {
		t.Errorf("second run: %+v, want changed=0\n%s", c, rec.dump())
	}

	// A new version of the file upgrades; names= removes in one call.
	deb2 := buildDeb(t, "1.1")
	copyToHost(t, l.Host("host10"), deb2, "/tmp/herd-e2e.deb")
	rec, _ = pushKinds(t, l, `
def main(host):
    package("herd-e2e", deb = "/tmp/herd-e2e.deb")
role("install", hosts = inv.filter(hosts = ["host10"]), main = main)
`, false)
	if typ, msg := msgOf(rec, "host10", "package:herd-e2e"); typ != event.Changed || msg != "herd-e2e 1.0→1.1" {
		t.Errorf("host10: upgrade event %s %q", typ, msg)
	}
	if got := readHostFile(t, l.Host("host10"), "/usr/share/herd-e2e/hello"); got != "hello 1.1\n" {
		t.Errorf("host10: packaged file after upgrade %q", got)
	}

	const removal = `
def main(host):
    package("cleanup", names = ["herd-e2e", "herd-never-installed"], state = "absent")
role("remove", hosts = inv.hosts, main = main)
`
	rec, _ = pushKinds(t, l, removal, false)
	for _, name := range kindHosts {
		if typ, msg := msgOf(rec, name, "package:cleanup"); typ != event.Changed || msg != "remove herd-e2e" {
			t.Errorf("%s: removal event %s %q", name, typ, msg)
		}
		if st := dpkgStatus(t, l.Host(name), "herd-e2e"); strings.Contains(st, "ok installed") {
			t.Errorf("%s: herd-e2e still installed: %q", name, st)
		}
		if _, err := l.Host(name).ReadFile("/usr/share/herd-e2e/hello"); err == nil {
			t.Errorf("%s: packaged file left behind", name)
		}
	}
	rec, res = pushKinds(t, l, removal, false)
	if c := total(res); c.Changed != 0 || c.Failed != 0 {
		t.Errorf("removal twice: %+v\n%s", c, rec.dump())
	}
}
