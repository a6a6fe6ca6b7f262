package push_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/push"
	"golang.org/x/sys/unix"
)

// ctn is the lab of the connection-kind tests: host1 and host3 carry chroots
// reached through them (herd_via), host2 is entered by its namespaces.
var ctn = &lazyLab{spec: lab.Spec{Name: "ctn", Flat: 3}}

// buildRootfs makes a minimal root filesystem at dir, as an image build
// would: /bin/sh and the few tools the bootstrap needs, with their shared
// libraries, and the libraries of the agent binary (this test binary).
func buildRootfs(t *testing.T, dir string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"bin", "tmp", "root", "etc", "proc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	os.Chmod(filepath.Join(dir, "root"), 0o700)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "dev"), 0o755)
	if err := unix.Mknod(filepath.Join(dir, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("rootfs: mknod /dev/null: %v", err)
	}
	libs := map[string]bool{}
	addLibs := func(bin string) {
		out, _ := exec.Command("ldd", bin).Output() // a static binary has none
		for _, l := range regexp.MustCompile(`/\S+`).FindAllString(string(out), -1) {
			libs[l] = true
		}
	}
	for _, tool := range []string{"sh", "id", "find", "mkdir", "head", "chmod", "mv", "rm", "gzip", "cat"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("rootfs: %v", err)
		}
		real, _ := filepath.EvalSymlinks(p)
		copyFile(t, real, filepath.Join(dir, "bin", tool))
		addLibs(real)
	}
	addLibs(exe)
	for l := range libs {
		copyFile(t, l, filepath.Join(dir, l))
	}
}

// mountProc mounts proc at root/proc, on h (nil: here), until the test ends.
func mountProc(t *testing.T, h *lab.Host, root string) {
	t.Helper()
	ctx := context.Background()
	do := func(argv ...string) ([]byte, error) {
		if h == nil {
			return exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		}
		return h.Exec(ctx, argv...)
	}
	if out, err := do("mkdir", "-p", root+"/proc"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := do("mount", "-t", "proc", "proc", root+"/proc"); err != nil {
		t.Skipf("mount proc: %v: %s", err, out)
	}
	t.Cleanup(func() { do("umount", "-l", root+"/proc") })
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

const ctnPolicy = `
inv = inventory("inventory.toml")
def main(host):
    directory("/etc/ctn", mode = 0o755)
    file("/etc/ctn/who", content = "managed as " + host.name + "\n", mode = 0o644)
role("ctn", hosts = inv.filter(groups = "ctn"), main = main)
`

// TestConnectionKindsChrootSetnsAndVia configures, for real, a chroot on
// the controller, a lab host entered by its namespaces (nsenter), a chroot
// on host1 reached through host1's SSH connection, and a chroot inside the
// namespaced host (herd_via a non-SSH host); then reruns (changed=0) and
// checks (nothing would change).
func TestConnectionKindsChrootSetnsAndVia(t *testing.T) {
	l := ctn.get(t)
	local := t.TempDir()
	buildRootfs(t, local)
	// The chroot on host1 is the same image, installed inside host1.
	remote := "/srv/ctnroot"
	buildRootfs(t, l.Host("host1").Path(remote))
	// An image build mounts /proc in its chroot (the agent needs
	// /proc/self/exe); host1 mounts it in its own namespace.
	mountProc(t, nil, local)
	mountProc(t, l.Host("host1"), remote)
	h2 := l.Host("host2")
	// A chroot inside host2, entered through host2's namespaces: two tools,
	// each wrapping the command once.
	buildRootfs(t, h2.Path(remote))
	mountProc(t, h2, remote)

	inv := `[groups.ctn.hosts]
"img1" = "herd_connection=chroot herd_host=` + local + `"
"ns2" = "ansible_connection=nsenter herd_host=` + strconv.Itoa(h2.Pid()) + `"
"img-on-host1" = "herd_connection=chroot herd_host=` + remote + ` herd_via=host1"
"img-in-ns2" = "herd_connection=chroot herd_host=` + remote + ` herd_via=ns2"
[groups.parents.hosts]
"host1" = "herd_host=` + l.Host("host1").Addr + `"
`
	dir := project(t, map[string]string{"inventory.toml": inv, "site.star": ctnPolicy})
	pol := load(t, dir)
	files := map[string]string{ // where each target's file lands, seen from here
		"img1":         filepath.Join(local, "etc/ctn/who"),
		"ns2":          h2.Path("/etc/ctn/who"),
		"img-on-host1": l.Host("host1").Path(remote + "/etc/ctn/who"),
		"img-in-ns2":   h2.Path(remote + "/etc/ctn/who"),
	}

	rec := &recorder{}
	o := options(t, l, rec)
	o.Check = true
	start := time.Now()
	res := run(t, pol, o)
	if c := total(res); c.Changed != 8 || c.Failed != 0 {
		t.Fatalf("check before apply: %+v, want 2 would-change per target\n%s", c, rec.dump())
	}
	for host, p := range files {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s: check mode wrote %s", host, p)
		}
	}

	rec = &recorder{}
	o = options(t, l, rec)
	res = run(t, pol, o)
	t.Logf("first apply (agent in 4 targets): %v", time.Since(start).Round(time.Millisecond))
	if c := total(res); c.Changed != 8 || c.Failed != 0 {
		t.Fatalf("first apply: %+v\n%s", c, rec.dump())
	}
	for host, p := range files {
		b, err := os.ReadFile(p)
		if err != nil || string(b) != "managed as "+host+"\n" {
			t.Errorf("%s: %s = %q, %v", host, p, b, err)
		}
	}
	// The agent is cached inside each target, as on a host.
	hash, err := agentBinary(t).Hash()
	if err != nil {
		t.Fatal(err)
	}
	for host, root := range map[string]string{"img1": local, "ns2": h2.Path("/"), "img-on-host1": l.Host("host1").Path(remote), "img-in-ns2": h2.Path(remote)} {
		if _, err := os.Stat(filepath.Join(root, "root/.cache/herd", hash, "herd")); err != nil {
			t.Errorf("%s: agent cache inside the target: %v", host, err)
		}
	}
	// The chroot on host1 was seeded from host1's own cache: its agent
	// started first and cached the binary there.
	if _, err := l.Host("host1").ReadFile("/root/.cache/herd/" + hash + "/herd"); err != nil {
		t.Errorf("host1's cache, which seeds its chroot: %v", err)
	}
	// herd_via really ran the tool on host1: the host's own root has no
	// /etc/ctn, the chroot inside it has.
	if _, err := l.Host("host1").ReadFile("/etc/ctn/who"); err == nil {
		t.Errorf("host1 itself got the chroot's file")
	}

	for _, check := range []bool{false, true} {
		rec = &recorder{}
		o = options(t, l, rec)
		o.Check = check
		start = time.Now()
		res = run(t, pol, o)
		if c := total(res); c.Changed != 0 || c.Failed != 0 || c.OK != 8 {
			t.Errorf("rerun (check=%v): %+v, want ok=8 changed=0\n%s", check, c, rec.dump())
		}
		t.Logf("rerun check=%v over warm caches: %v", check, time.Since(start).Round(time.Millisecond))
	}
}

// TestConnectionKindErrorsNameTheTool: a target that is not there, or a
// tool that is not installed, fails its host with the tool's name and the
// machine it ran on. (This machine and its lab hosts have the docker and
// kubectl clients but no daemon or cluster, and no lxc or machinectl.)
func TestConnectionKindErrorsNameTheTool(t *testing.T) {
	l := ctn.get(t)
	inv := `[groups.ctn.hosts]
"gone" = "herd_connection=chroot herd_host=/nonexistent/ctn"
"deadpid" = "herd_connection=setns herd_setns_pid=999999999"
"app1" = "herd_connection=docker herd_via=host1"
"pod1" = "herd_connection=kubectl herd_via=host1 herd_kubectl_namespace=shop"
"lxd1" = "herd_connection=lxd herd_via=host1"
"vm1" = "herd_connection=machinectl"
[groups.parents.hosts]
"host1" = "herd_host=` + l.Host("host1").Addr + `"
`
	dir := project(t, map[string]string{"inventory.toml": inv, "site.star": ctnPolicy})
	rec := &recorder{}
	o := options(t, l, rec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := push.Run(ctx, load(t, dir), o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"gone":    "chroot: /nonexistent/ctn on the controller has no /bin/sh",
		"deadpid": "nsenter: no process 999999999 on the controller",
		"app1":    "docker: container app1 is not running on host1",
		"pod1":    "kubectl: pod pod1 (-n shop) is not running, seen from host1",
		"lxd1":    "lxc not installed on host1",
		"vm1":     "machinectl not installed on the controller",
	}
	for name, h := range res.Hosts {
		w, ok := want[name]
		if !ok {
			continue
		}
		delete(want, name)
		if !strings.Contains(h.Err, w) {
			t.Errorf("%s: error %q, want it to say %q", name, h.Err, w)
		}
	}
	for h := range want {
		t.Errorf("%s: not in the result\n%s", h, rec.dump())
	}
}

// TestConnectionKindReadOnlyTarget: a chroot whose filesystem is read-only
// (as a read-only container) fails with what to do; with herd_home on its
// tmpfs the agent's cache, state and run lock go there and the run works.
func TestConnectionKindReadOnlyTarget(t *testing.T) {
	l := ctn.get(t)
	src, ro := t.TempDir(), t.TempDir()
	buildRootfs(t, src)
	mounts := [][]string{
		{"mount", "--bind", src, ro},
		{"mount", "-o", "remount,bind,ro", ro},
		{"mount", "-t", "tmpfs", "-o", "size=64m,mode=1777", "tmpfs", ro + "/tmp"},
		{"mount", "-t", "proc", "proc", ro + "/proc"},
	}
	t.Cleanup(func() {
		for _, d := range []string{ro + "/proc", ro + "/tmp", ro} {
			exec.Command("umount", "-l", d).Run()
		}
	})
	for _, m := range mounts {
		if out, err := exec.Command(m[0], m[1:]...).CombinedOutput(); err != nil {
			t.Skipf("%v: %v %s", m, err, out)
		}
	}
	inv := `[groups.ctn.hosts]
"ro-default" = "herd_connection=chroot herd_host=` + ro + `"
"ro-tmpfs" = "herd_connection=chroot herd_host=` + ro + ` herd_home=/tmp/herd"
`
	pol := `
inv = inventory("inventory.toml")
def main(host):
    file("/tmp/ctn-" + host.name, content = "managed\n", mode = 0o644)
role("ctn", hosts = inv.filter(groups = "ctn"), main = main)
`
	dir := project(t, map[string]string{"inventory.toml": inv, "site.star": pol})
	for i, wantChanged := range []int{1, 0} {
		rec := &recorder{}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := push.Run(ctx, load(t, dir), options(t, l, rec))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		bad := res.Hosts["ro-default"]
		if bad == nil || !strings.Contains(bad.Err, "read-only filesystem") || !strings.Contains(bad.Err, "set herd_home") {
			t.Errorf("run %d: ro-default: %+v, want the read-only advice", i, bad)
		}
		good := res.Hosts["ro-tmpfs"]
		if good == nil || good.Err != "" || good.Counts.Changed != wantChanged || good.Counts.OK != 1-wantChanged {
			t.Errorf("run %d: ro-tmpfs: %+v, want changed=%d\n%s", i, good, wantChanged, rec.dump())
		}
	}
	if b, err := os.ReadFile(ro + "/tmp/ctn-ro-tmpfs"); err != nil || string(b) != "managed\n" {
		t.Errorf("file in the read-only target's tmpfs: %q %v", b, err)
	}
	for _, p := range []string{"/tmp/herd/.cache/herd", "/tmp/herd/.herd/state"} {
		if fi, err := os.Stat(ro + p); err != nil || !fi.IsDir() {
			t.Errorf("%s inside the target: %v", p, err)
		}
	}
}

// TestConnectionKindViaSendsTheBinaryOncePerParent: three chroots on host3,
// cold: the agent binary crosses the controller's link to host3 once (for
// host3's own agent, whose cache then seeds the chroots), not four times.
// Measured on host3's network interface.
func TestConnectionKindViaSendsTheBinaryOncePerParent(t *testing.T) {
	l := ctn.get(t)
	h3 := l.Host("host3")
	var inv strings.Builder
	inv.WriteString("[groups.ctn.hosts]\n")
	for i := 1; i <= 3; i++ {
		root := "/srv/img" + strconv.Itoa(i)
		buildRootfs(t, h3.Path(root))
		mountProc(t, h3, root)
		inv.WriteString(`"img` + strconv.Itoa(i) + `" = "herd_connection=chroot herd_host=` + root + ` herd_via=host3"` + "\n")
	}
	inv.WriteString("[groups.parents.hosts]\n\"host3\" = \"herd_host=" + h3.Addr + "\"\n")
	dir := project(t, map[string]string{"inventory.toml": inv.String(), "site.star": ctnPolicy})
	rx := func() int64 {
		out, err := h3.Exec(context.Background(), "sh", "-c", "cat /sys/class/net/*/statistics/rx_bytes")
		if err != nil {
			t.Fatalf("rx_bytes: %v %s", err, out)
		}
		var n int64
		for _, f := range strings.Fields(string(out)) {
			v, _ := strconv.ParseInt(f, 10, 64)
			n += v
		}
		return n
	}
	gz, _, err := agentBinary(t).Payload()
	if err != nil {
		t.Fatal(err)
	}
	// Cold: earlier tests on this lab may have cached the agent on host3.
	if out, err := h3.Exec(context.Background(), "rm", "-rf", "/root/.cache/herd"); err != nil {
		t.Fatalf("clearing host3's agent cache: %v %s", err, out)
	}
	before := rx()
	rec := &recorder{}
	res := run(t, load(t, dir), options(t, l, rec))
	if c := total(res); c.Changed != 6 || c.Failed+c.Unreachable != 0 {
		t.Fatalf("%+v\n%s", c, rec.dump())
	}
	got := rx() - before
	t.Logf("cold run, 3 chroots via host3: %d bytes to host3 (agent gzipped: %d bytes): %.2f binaries", got, len(gz), float64(got)/float64(len(gz)))
	if got > len64(gz)*3/2 || got < len64(gz)/2 {
		t.Errorf("%d bytes to host3 for 3 chroots: want about one binary (%d)", got, len(gz))
	}
}
