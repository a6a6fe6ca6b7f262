package push_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/push"
)

// buildAgent builds cmd/herd-agent for goarch into out, without VCS
// stamping: the test binary that plays the controller has none either, and
// the identity check compares them. Not stripped: the test then reuses the
// packages go test compiled. The build for this machine is made once per
// test binary (nativeAgent) and copied.
func buildAgent(t *testing.T, goarch, out string) []byte {
	t.Helper()
	if goarch == runtime.GOARCH {
		_, raw := nativeAgent(t)
		if err := os.WriteFile(out, raw, 0o755); err != nil {
			t.Fatal(err)
		}
		return raw
	}
	raw, err := goBuildAgent(goarch, out)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func goBuildAgent(goarch, out string) ([]byte, error) {
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", out, "github.com/herd-project/herd/cmd/herd-agent")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build herd-agent for %s: %v\n%s", goarch, err, b)
	}
	return os.ReadFile(out)
}

// native is cmd/herd-agent built for this machine, shared by the tests
// that ship a lean agent (a link costs seconds); TestMain removes its dir.
var native struct {
	once sync.Once
	dir  string
	raw  []byte
	err  error
}

// nativeAgent returns the path and bytes of the shared herd-agent build.
func nativeAgent(t *testing.T) (path string, raw []byte) {
	t.Helper()
	native.once.Do(func() {
		if native.dir, native.err = os.MkdirTemp("", "herd-push-agent"); native.err == nil {
			native.raw, native.err = goBuildAgent(runtime.GOARCH, filepath.Join(native.dir, "herd-agent"))
		}
	})
	if native.err != nil {
		t.Fatal(native.err)
	}
	return filepath.Join(native.dir, "herd-agent"), native.raw
}

// agentDir writes an agent directory holding a herd-agent build as the
// build for arch, with its SHA256SUMS. The build is for buildArch: a test
// without an emulator passes the controller's own, with one byte more at
// the end (which ELF ignores) so its hash and cache differ.
func agentDir(t *testing.T, arch, buildArch string) (dir, hash string) {
	dir = t.TempDir()
	name := "herd-linux-" + arch
	raw := buildAgent(t, buildArch, filepath.Join(dir, name))
	if arch != buildArch {
		raw = append(raw, 0)
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256(raw)
	hash = hex.EncodeToString(sum[:])
	os.WriteFile(filepath.Join(dir, push.AgentSumsFile), []byte(hash+"  "+name+"\n"), 0o644)
	return dir, hash
}

// A host whose uname -m says aarch64 gets the arm64 build from the agent
// directory, cached under that build's hash; a host of an architecture
// nothing is built for fails by itself, naming its architecture, while
// the others run. uname is faked on the hosts' PATH, so the "arm64" build
// is a herd-agent for this machine with a distinct hash (the emulated
// arm64 host is TestEmulatedArm64HostRunsTheArm64Agent).
func TestTargetArchitecturePicksTheAgentBuild(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the fake arm64 build is the amd64 test binary")
	}
	l := flatLab(t)
	dir, armHash := agentDir(t, "arm64", runtime.GOARCH)
	more, err := push.LoadAgentDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fake := map[string]string{"host6": "aarch64", "host7": "mips"}
	for name, m := range fake {
		h := l.Host(name)
		p := h.Path("/usr/local/bin/uname")
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+m+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
	}
	proj := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"all": {"host5", "host6", "host7"}}),
		"site.star": `
inv = inventory("inventory.toml")
def main(host):
    file("/srv/herd-arch", content = "ok\n")
role("r", hosts = inv.hosts, main = main, max_fail = 1)
`,
	})
	rec := &recorder{}
	o := options(t, l, rec)
	o.MoreAgents = more
	res := run(t, load(t, proj), o)
	for _, name := range []string{"host5", "host6"} {
		if hr := res.Hosts[name]; hr.Failed || hr.Unreachable {
			t.Errorf("%s failed: %s\n%s", name, hr.Err, rec.dump())
		}
	}
	if _, err := os.Stat(l.Host("host6").Path("/root/.cache/herd/" + armHash + "/herd")); err != nil {
		t.Errorf("host6 (aarch64) does not run the arm64 build: %v", err)
	}
	if _, err := os.Stat(l.Host("host5").Path("/root/.cache/herd/" + armHash)); err == nil {
		t.Errorf("host5 (x86_64) got the arm64 build")
	}
	hr := res.Hosts["host7"]
	if !(hr.Failed || hr.Unreachable) || !strings.Contains(hr.Err, "no agent for architecture mips") || !strings.Contains(hr.Err, "amd64, arm64") {
		t.Errorf("host7 (mips): failed=%v unreachable=%v err=%q, want a failure naming mips and the builds there are", hr.Failed, hr.Unreachable, hr.Err)
	}
	if rec.count("host7", event.Changed) != 0 {
		t.Errorf("host7 changed something")
	}
}

func TestLoadAgentDirRefusesABinaryThatDoesNotMatchItsSum(t *testing.T) {
	dir, _ := agentDir(t, "arm64", runtime.GOARCH)
	f, _ := os.OpenFile(filepath.Join(dir, "herd-linux-arm64"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("tampered")
	f.Close()
	_, err := push.LoadAgentDir(dir)
	if err == nil || !strings.Contains(err.Error(), "SHA256SUMS:1") || !strings.Contains(err.Error(), "refusing to ship it") {
		t.Fatalf("err = %v, want a refusal naming SHA256SUMS:1", err)
	}
	// A binary that matches its sum but is not a herd agent of this
	// build (here: this test binary) is refused too.
	exe, _ := os.Executable()
	raw, _ := os.ReadFile(exe)
	os.WriteFile(filepath.Join(dir, "herd-linux-arm64"), raw, 0o755)
	sum := sha256.Sum256(raw)
	os.WriteFile(filepath.Join(dir, push.AgentSumsFile), []byte(hex.EncodeToString(sum[:])+"  herd-linux-arm64\n"), 0o644)
	_, err = push.LoadAgentDir(dir)
	if err == nil || !strings.Contains(err.Error(), "belongs to another herd build") || !strings.Contains(err.Error(), "not a herd agent build") {
		t.Fatalf("a foreign binary: err = %v, want a refusal", err)
	}
	os.WriteFile(filepath.Join(dir, push.AgentSumsFile), []byte(strings.Repeat("0", 64)+"  herd-linux-vax\n"), 0o644)
	if _, err := push.LoadAgentDir(dir); err == nil || !strings.Contains(err.Error(), "herd-linux-vax") {
		t.Fatalf("unknown arch: err = %v", err)
	}
}

// binfmtArm64 says whether this kernel runs arm64 ELF binaries through
// qemu-user (binfmt_misc), with the F flag that lets lab hosts in their
// own mount namespaces use it; else why not.
func binfmtArm64() (bool, string) {
	b, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-aarch64")
	if err != nil {
		return false, "no qemu-aarch64 binfmt_misc handler (apt-get install qemu-user-static, then register /usr/lib/binfmt.d/qemu-aarch64.conf in /proc/sys/fs/binfmt_misc/register)"
	}
	s := string(b)
	if !strings.HasPrefix(s, "enabled") {
		return false, "the qemu-aarch64 binfmt_misc handler is disabled"
	}
	for _, ln := range strings.Split(s, "\n") {
		if flags, ok := strings.CutPrefix(ln, "flags: "); ok && strings.Contains(flags, "F") {
			return true, ""
		}
	}
	return false, "the qemu-aarch64 binfmt_misc handler lacks the F flag, so lab hosts cannot reach the emulator"
}

// An amd64 controller configures an arm64 host: the host (its uname -m
// says aarch64; its tools stay this machine's) gets a real arm64
// herd-agent from the agent directory, which runs under qemu-user and
// reports arm64 in its facts, while an x86_64 host of the same run gets
// the controller's build.
func TestEmulatedArm64HostRunsTheArm64Agent(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the test emulates arm64 on amd64")
	}
	if ok, why := binfmtArm64(); !ok {
		t.Skip(why)
	}
	l := flatLab(t)
	dir, armHash := agentDir(t, "arm64", "arm64")
	more, err := push.LoadAgentDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := l.Host("host4")
	uname := h.Path("/usr/local/bin/uname")
	if err := os.WriteFile(uname, []byte("#!/bin/sh\necho aarch64\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(uname) })
	proj := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"all": {"host3", "host4"}}),
		"site.star": `
inv = inventory("inventory.toml")
def main(host):
    file("/srv/herd-arch", content = host.facts.arch + "\n")
    exec("arch-ran", command = "true")
role("r", hosts = inv.hosts, main = main)
`,
	})
	rec := &recorder{}
	o := options(t, l, rec)
	o.MoreAgents = more
	res := run(t, load(t, proj), o)
	for name, want := range map[string]string{"host3": "amd64\n", "host4": "arm64\n"} {
		if hr := res.Hosts[name]; hr.Failed || hr.Unreachable {
			t.Fatalf("%s failed: %s\n%s", name, hr.Err, rec.dump())
		}
		if got, _ := l.Host(name).ReadFile("/srv/herd-arch"); string(got) != want {
			t.Errorf("%s: the agent reports arch %q, want %q", name, got, want)
		}
	}
	if _, err := os.Stat(h.Path("/root/.cache/herd/" + armHash + "/herd")); err != nil {
		t.Errorf("host4 does not have the arm64 build cached: %v", err)
	}
}
