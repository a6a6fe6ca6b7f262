package push_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/lab"
)

const e2eKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIHxxhTVxVBJyrkCX1TEf13/vRGqXKXUqnJYJdJHAc2N herd-e2e"

// textKindsPolicy uses block, cron, sysctl and authorized_key together.
// net.ipv4.ip_forward belongs to the lab host's network namespace, so
// setting it changes neither the machine nor the other hosts.
func textKindsPolicy(state string) string {
	if state == "absent" {
		return `
def main(host):
    block("/etc/herd-e2e.conf", state = "absent")
    cron("herd nightly", cron_file = "herd-e2e", state = "absent")
    sysctl("net.ipv4.ip_forward", file = "/etc/sysctl.d/90-herd-e2e.conf", state = "absent")
    authorized_key("herd-keys", keys = [` + "\"" + e2eKey + "\"" + `], state = "absent")
role("text", hosts = inv.hosts, main = main)
`
	}
	return `
def main(host):
    block("/etc/herd-e2e.conf", block = "listen = 0.0.0.0\nworkers = 4\n", create = True)
    cron("herd nightly", cron_file = "herd-e2e", job = "/usr/bin/true", minute = "5", hour = "4")
    sysctl("net.ipv4.ip_forward", value = "1", file = "/etc/sysctl.d/90-herd-e2e.conf")
    authorized_key("herd-keys", keys = [` + "'no-pty " + e2eKey + "'" + `])
role("text", hosts = inv.hosts, main = main)
`
}

var textKindIDs = []string{"block:/etc/herd-e2e.conf", "cron:herd nightly", "sysctl:net.ipv4.ip_forward", "authorized_key:herd-keys"}

func hostExec(t *testing.T, h *lab.Host, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, argv...)
	if err != nil {
		t.Fatalf("%s: %v: %v: %s", h.Name, argv, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestKindsTextFiles(t *testing.T) {
	l := flatLab(t)
	for _, name := range kindHosts {
		h := l.Host(name)
		if _, err := h.ReadFile("/home/herd-keys/.profile"); err != nil {
			hostExec(t, h, "useradd", "-m", "-s", "/bin/sh", "herd-keys")
		}
	}
	machineForward := readFileOrEmpty("/proc/sys/net/ipv4/ip_forward")

	// Check mode predicts the first run, message for message, and changes nothing.
	recCheck, res := pushKinds(t, l, textKindsPolicy("present"), true)
	if c := total(res); c.Changed != 4*len(kindHosts) {
		t.Errorf("check: %+v, want 4 changes per host\n%s", c, recCheck.dump())
	}
	for _, name := range kindHosts {
		h := l.Host(name)
		for _, p := range []string{"/etc/herd-e2e.conf", "/etc/cron.d/herd-e2e", "/etc/sysctl.d/90-herd-e2e.conf", "/home/herd-keys/.ssh"} {
			if _, err := os.Lstat(h.Path(p)); err == nil {
				t.Errorf("%s: check mode created %s", name, p)
			}
		}
		if v := hostExec(t, h, "cat", "/proc/sys/net/ipv4/ip_forward"); v != "0" {
			t.Errorf("%s: check mode set ip_forward to %s", name, v)
		}
	}

	rec, res := pushKinds(t, l, textKindsPolicy("present"), false)
	if c := total(res); c.Changed != 4*len(kindHosts) {
		t.Errorf("first run: %+v\n%s", c, rec.dump())
	}
	want := map[string]string{
		"block:/etc/herd-e2e.conf":   "create /etc/herd-e2e.conf, block inserted (2 lines)",
		"cron:herd nightly":          "create /etc/cron.d/herd-e2e, entry added",
		"sysctl:net.ipv4.ip_forward": "create /etc/sysctl.d/90-herd-e2e.conf, /etc/sysctl.d/90-herd-e2e.conf line added, live 0→1",
		"authorized_key:herd-keys":   "create ~/.ssh, create /home/herd-keys/.ssh/authorized_keys, 1 key added",
	}
	for _, name := range kindHosts {
		for _, id := range textKindIDs {
			typ, msg := msgOf(rec, name, id)
			if typ != event.Changed || msg != want[id] {
				t.Errorf("%s: %s: %s %q, want %q", name, id, typ, msg, want[id])
			}
			if _, cmsg := msgOf(recCheck, name, id); cmsg != msg {
				t.Errorf("%s: %s: check mode said %q, the run %q", name, id, cmsg, msg)
			}
		}
		h := l.Host(name)
		for path, content := range map[string]string{
			"/etc/herd-e2e.conf":                   "# BEGIN HERD MANAGED BLOCK\nlisten = 0.0.0.0\nworkers = 4\n# END HERD MANAGED BLOCK\n",
			"/etc/cron.d/herd-e2e":                 "#herd: herd nightly\n5 4 * * * root /usr/bin/true\n",
			"/etc/sysctl.d/90-herd-e2e.conf":       "net.ipv4.ip_forward = 1\n",
			"/home/herd-keys/.ssh/authorized_keys": "no-pty " + e2eKey + "\n",
		} {
			if got := readHostFile(t, h, path); got != content {
				t.Errorf("%s: %s = %q, want %q", name, path, got, content)
			}
		}
		if v := hostExec(t, h, "cat", "/proc/sys/net/ipv4/ip_forward"); v != "1" {
			t.Errorf("%s: ip_forward = %s", name, v)
		}
		if st := hostExec(t, h, "stat", "-c", "%a %U", "/home/herd-keys/.ssh", "/home/herd-keys/.ssh/authorized_keys", "/etc/cron.d/herd-e2e"); st != "700 herd-keys\n600 herd-keys\n644 root" {
			t.Errorf("%s: modes and owners:\n%s", name, st)
		}
	}
	if got := readFileOrEmpty("/proc/sys/net/ipv4/ip_forward"); got != machineForward {
		t.Errorf("the machine's ip_forward changed: %q → %q", machineForward, got)
	}

	rec, res = pushKinds(t, l, textKindsPolicy("present"), false)
	if c := total(res); c.Changed != 0 || c.OK != 4*len(kindHosts) {
		t.Errorf("second run: %+v, want changed=0\n%s", c, rec.dump())
	}

	// A drifted live value is found and set back, the file left alone.
	hostExec(t, l.Host("host9"), "sh", "-c", "echo 0 >/proc/sys/net/ipv4/ip_forward")
	rec, _ = pushKinds(t, l, textKindsPolicy("present"), false)
	if typ, msg := msgOf(rec, "host9", "sysctl:net.ipv4.ip_forward"); typ != event.Changed || msg != "live 0→1" {
		t.Errorf("drift: %s %q", typ, msg)
	}

	// A notify makes the sysctl write its running value again.
	rec, _ = pushKinds(t, l, `
def main(host):
    file("/etc/herd-e2e-trigger", content = "x\n", notify = "sysctl:net.ipv4.ip_forward")
    sysctl("net.ipv4.ip_forward", value = "1", file = "/etc/sysctl.d/90-herd-e2e.conf")
role("text", hosts = inv.hosts, main = main)
`, false)
	for _, name := range kindHosts {
		if msg := refreshMsg(rec, name, "sysctl:net.ipv4.ip_forward"); msg == "" {
			t.Errorf("%s: no refresh of the sysctl\n%s", name, rec.dump())
		}
	}

	rec, res = pushKinds(t, l, textKindsPolicy("absent"), false)
	if c := total(res); c.Changed != 4*len(kindHosts) {
		t.Errorf("absent: %+v\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		h := l.Host(name)
		for path, content := range map[string]string{
			"/etc/herd-e2e.conf":                   "",
			"/etc/sysctl.d/90-herd-e2e.conf":       "",
			"/home/herd-keys/.ssh/authorized_keys": "",
		} {
			if got := readHostFile(t, h, path); got != content {
				t.Errorf("%s: after absent %s = %q", name, path, got)
			}
		}
		if _, err := os.Lstat(h.Path("/etc/cron.d/herd-e2e")); err == nil {
			t.Errorf("%s: the emptied cron.d file is still there", name)
		}
	}
	rec, res = pushKinds(t, l, textKindsPolicy("absent"), false)
	if c := total(res); c.Changed != 0 {
		t.Errorf("absent twice: %+v\n%s", c, rec.dump())
	}
}

func mountPolicy(state string) string {
	if state == "absent" {
		return `
def main(host):
    mount("/mnt/herd-tmp", state = "absent")
    mount("/mnt/herd-bind", state = "absent")
role("mounts", hosts = inv.hosts, main = main)
`
	}
	return `
def main(host):
    directory("/srv/herd-src")
    mount("/mnt/herd-tmp", device = "tmpfs", fstype = "tmpfs", opts = "size=1m")
    mount("/mnt/herd-bind", device = "/srv/herd-src", fstype = "none", opts = "bind")
role("mounts", hosts = inv.hosts, main = main)
`
}

// hostMounts lists the mount points under /mnt inside host h.
func hostMounts(t *testing.T, h *lab.Host) []string {
	var out []string
	for _, line := range strings.Split(hostExec(t, h, "cat", "/proc/self/mountinfo"), "\n") {
		if f := strings.Fields(line); len(f) > 9 && strings.HasPrefix(f[4], "/mnt/") {
			out = append(out, f[4]+" "+f[len(f)-3])
		}
	}
	return out
}

// Each lab host has its own mount namespace with private propagation, so
// these mounts exist only inside host9 and host10.
func TestKindsMount(t *testing.T) {
	l := flatLab(t)
	rec, res := pushKinds(t, l, mountPolicy("mounted"), true)
	if c := total(res); c.Changed != 3*len(kindHosts) {
		t.Errorf("check: %+v\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		if m := hostMounts(t, l.Host(name)); len(m) != 0 {
			t.Errorf("%s: check mode mounted %v", name, m)
		}
		if typ, msg := msgOf(rec, name, "mount:/mnt/herd-tmp"); msg != "fstab line added, mount" {
			t.Errorf("%s: check says %s %q", name, typ, msg)
		}
	}

	rec, res = pushKinds(t, l, mountPolicy("mounted"), false)
	if c := total(res); c.Changed != 3*len(kindHosts) {
		t.Errorf("first run: %+v\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		h := l.Host(name)
		if m := strings.Join(hostMounts(t, h), ","); m != "/mnt/herd-tmp tmpfs,/mnt/herd-bind "+mountFSType(t, h) {
			t.Errorf("%s: mounts %q", name, m)
		}
		hostExec(t, h, "sh", "-c", "echo via-bind >/srv/herd-src/probe")
		if got := hostExec(t, h, "cat", "/mnt/herd-bind/probe"); got != "via-bind" {
			t.Errorf("%s: bind mount shows %q", name, got)
		}
		fstab := readHostFile(t, h, "/etc/fstab")
		for _, want := range []string{"tmpfs /mnt/herd-tmp tmpfs size=1m 0 0", "/srv/herd-src /mnt/herd-bind none bind 0 0"} {
			if !strings.Contains(fstab, want+"\n") {
				t.Errorf("%s: fstab lacks %q:\n%s", name, want, fstab)
			}
		}
	}
	if strings.Contains(readFileOrEmpty("/proc/self/mountinfo"), "/mnt/herd-") {
		t.Fatal("a lab mount leaked onto the machine")
	}

	rec, res = pushKinds(t, l, mountPolicy("mounted"), false)
	if c := total(res); c.Changed != 0 {
		t.Errorf("second run: %+v\n%s", c, rec.dump())
	}

	rec, res = pushKinds(t, l, mountPolicy("absent"), false)
	if c := total(res); c.Changed != 2*len(kindHosts) {
		t.Errorf("absent: %+v\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		h := l.Host(name)
		if m := hostMounts(t, h); len(m) != 0 {
			t.Errorf("%s: still mounted %v", name, m)
		}
		if fstab := readHostFile(t, h, "/etc/fstab"); strings.Contains(fstab, "herd-") {
			t.Errorf("%s: fstab still names herd mounts:\n%s", name, fstab)
		}
	}
	rec, res = pushKinds(t, l, mountPolicy("absent"), false)
	if c := total(res); c.Changed != 0 {
		t.Errorf("absent twice: %+v\n%s", c, rec.dump())
	}
}

// mountFSType is the type a bind mount of /srv shows in host h's mount
// table: that of the filesystem under it (the host's root overlay).
func mountFSType(t *testing.T, h *lab.Host) string {
	for _, line := range strings.Split(hostExec(t, h, "cat", "/proc/self/mountinfo"), "\n") {
		if f := strings.Fields(line); len(f) > 9 && f[4] == "/" {
			return f[len(f)-3]
		}
	}
	t.Fatalf("%s: no root mount", h.Name)
	return ""
}

// The git kind against a bare repository on each lab host (hosts have no
// network): clone, rerun, then a new commit on the branch moves the checkout.
func TestKindsGit(t *testing.T) {
	l := flatLab(t)
	setup := `set -e
rm -rf /srv/herd-repo.git /srv/herd-work /srv/herd-app
export HOME=/root GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
git init -q --bare -b main /srv/herd-repo.git
git init -q -b main /srv/herd-work
cd /srv/herd-work
echo "$1" >file
git add file
git commit -q -m "$1"
git push -q /srv/herd-repo.git main
git rev-parse HEAD`
	heads := map[string]string{}
	for _, name := range kindHosts {
		heads[name] = hostExec(t, l.Host(name), "sh", "-c", setup, "sh", "one")
	}
	const policy = `
def main(host):
    git("/srv/herd-app", repo = "/srv/herd-repo.git", version = "main")
role("git", hosts = inv.hosts, main = main)
`
	rec, res := pushKinds(t, l, policy, true)
	if c := total(res); c.Changed != len(kindHosts) {
		t.Errorf("check: %+v\n%s", c, rec.dump())
	}
	check := map[string]string{}
	for _, name := range kindHosts {
		_, check[name] = msgOf(rec, name, "git:/srv/herd-app")
		if _, err := os.Lstat(l.Host(name).Path("/srv/herd-app")); err == nil {
			t.Errorf("%s: check mode cloned", name)
		}
	}
	rec, _ = pushKinds(t, l, policy, false)
	for _, name := range kindHosts {
		h := l.Host(name)
		want := "clone /srv/herd-repo.git at " + heads[name][:12]
		if typ, msg := msgOf(rec, name, "git:/srv/herd-app"); typ != event.Changed || msg != want || check[name] != want {
			t.Errorf("%s: %s %q (check said %q), want %q", name, typ, msg, check[name], want)
		}
		if got := readHostFile(t, h, "/srv/herd-app/file"); got != "one\n" {
			t.Errorf("%s: checkout has %q", name, got)
		}
	}
	rec, res = pushKinds(t, l, policy, false)
	if c := total(res); c.Changed != 0 {
		t.Errorf("second run: %+v\n%s", c, rec.dump())
	}

	h := l.Host("host9")
	two := hostExec(t, h, "sh", "-c", `set -e; export HOME=/root GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
cd /srv/herd-work; echo two >file; git commit -q -am two; git push -q /srv/herd-repo.git main; git rev-parse HEAD`)
	rec, _ = pushKinds(t, l, policy, false)
	if typ, msg := msgOf(rec, "host9", "git:/srv/herd-app"); typ != event.Changed || msg != heads["host9"][:12]+"→"+two[:12] {
		t.Errorf("host9 update: %s %q", typ, msg)
	}
	if got := readHostFile(t, h, "/srv/herd-app/file"); got != "two\n" {
		t.Errorf("host9: after update %q", got)
	}
	if typ, _ := msgOf(rec, "host10", "git:/srv/herd-app"); typ != event.OK {
		t.Errorf("host10 changed without a new commit: %s", typ)
	}
}

// apt_repository with a flat repository on each lab host (hosts have no
// network): the source is written, apt-get update reads it alone, and the
// package after it installs from it in the same run.
func TestKindsAptRepository(t *testing.T) {
	l := flatLab(t)
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		t.Skip("not a dpkg system")
	}
	if _, err := exec.LookPath("dpkg-scanpackages"); err != nil {
		t.Skip("dpkg-scanpackages (dpkg-dev) not installed")
	}
	deb := buildNamedDeb(t, "herd-e2e-repo", "2.0")
	for _, name := range kindHosts {
		h := l.Host(name)
		hostExec(t, h, "mkdir", "-p", "/srv/herd-apt")
		copyToHost(t, h, deb, "/srv/herd-apt/herd-e2e-repo.deb")
		hostExec(t, h, "sh", "-c", "cd /srv/herd-apt && dpkg-scanpackages . /dev/null >Packages 2>/dev/null")
	}
	const policy = `
def main(host):
    apt_repository("herd-e2e", uri = "file:/srv/herd-apt", suite = "./", trusted = True)
    package("herd-e2e-repo")
role("apt", hosts = inv.hosts, main = main)
`
	rec, res := pushKinds(t, l, policy, true)
	if c := total(res); c.Changed != 2*len(kindHosts) {
		t.Errorf("check: %+v\n%s", c, rec.dump())
	}
	rec, res = pushKinds(t, l, policy, false)
	if c := total(res); c.Changed != 2*len(kindHosts) {
		t.Errorf("first run: %+v\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		h := l.Host(name)
		if st := dpkgStatus(t, h, "herd-e2e-repo"); st != "install ok installed 2.0" {
			t.Errorf("%s: herd-e2e-repo status %q", name, st)
		}
		if got := readHostFile(t, h, "/etc/apt/sources.list.d/herd-e2e.list"); got != "# managed by herd\ndeb [trusted=yes] file:/srv/herd-apt ./\n" {
			t.Errorf("%s: source %q", name, got)
		}
	}
	rec, res = pushKinds(t, l, policy, false)
	if c := total(res); c.Changed != 0 {
		t.Errorf("second run: %+v\n%s", c, rec.dump())
	}
	// The package stays (removing it costs seconds of dpkg and proves
	// nothing new here); the source goes.
	rec, _ = pushKinds(t, l, `
def main(host):
    apt_repository("herd-e2e", state = "absent")
role("apt", hosts = inv.hosts, main = main)
`, false)
	for _, name := range kindHosts {
		if _, err := l.Host(name).ReadFile("/etc/apt/sources.list.d/herd-e2e.list"); err == nil {
			t.Errorf("%s: source left", name)
		}
	}
}

// buildNamedDeb is buildDeb for another package name.
func buildNamedDeb(t *testing.T, name, version string) string {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for path, body := range map[string]string{
		"DEBIAN/control": "Package: " + name + "\nVersion: " + version + "\nArchitecture: all\n" +
			"Maintainer: herd tests <herd@example.org>\nDescription: herd end-to-end test package\n",
		"usr/share/" + name + "/hello": "hello\n",
	} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(dir, name+".deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v: %s", err, out)
	}
	return deb
}

// A compromised target user points ~/.ssh at root's: an exclusive
// authorized_key for that user must fail rather than replace root's keys
// (the lab logs in with them) or show them in a diff.
func TestAuthorizedKeySymlinkAttack(t *testing.T) {
	l := flatLab(t)
	h := l.Host("host9")
	hostExec(t, h, "sh", "-c", `id herd-evil >/dev/null 2>&1 || useradd -m -s /bin/sh herd-evil
rm -rf /home/herd-evil/.ssh && su herd-evil -c 'ln -s /root/.ssh /home/herd-evil/.ssh'`)
	before := readHostFile(t, h, "/root/.ssh/authorized_keys")
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"kinds": {"host9"}}),
		"site.star": `inv = inventory("inventory.toml")
def main(host):
    authorized_key("herd-evil", keys = ["` + e2eKey + `"], exclusive = True)
role("keys", hosts = inv.hosts, main = main)
`,
	})
	rec := &recorder{}
	res := run(t, load(t, dir), options(t, l, rec))
	if failed, _ := res.Failed(); !failed {
		t.Fatalf("the run followed the symlink:\n%s", rec.dump())
	}
	if typ, msg := msgOf(rec, "host9", "authorized_key:herd-evil"); typ != event.Failed || !strings.Contains(msg, "not a directory") {
		t.Errorf("event %s %q", typ, msg)
	}
	if after := readHostFile(t, h, "/root/.ssh/authorized_keys"); after != before {
		t.Fatalf("root's authorized_keys changed:\n%s", after)
	}
	if d := allEvents(t, rec); strings.Contains(d, strings.Fields(before)[1]) {
		t.Error("root's key is in an event")
	}
}
