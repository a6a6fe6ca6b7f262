package transport_test

import (
	"context"
	"errors"
	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/transport"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeTools puts, first on PATH, programs named after each kind's tool that
// record their argv in a log and then do what the tool would do here: the
// status queries answer "running", and the entering command runs its last
// argument with /bin/sh -c, which is what the real tools do inside their
// target. So the line transport.ConnLine makes is run by a real shell and the agent
// really starts through it: what is checked is the exact argv each tool
// would get, for the tools this machine cannot run (no container engine
// or cluster here).
const fakeTool = `#!/bin/sh
me=${0##*/}
case "$me $1" in
"docker inspect"|"podman inspect") echo "$me $*" >>"$CTN_LOG"; echo true; exit 0;;
"machinectl show") echo "$me $*" >>"$CTN_LOG"; echo 4242; exit 0;;
"lxc-info "*) echo "$me $*" >>"$CTN_LOG"; echo "State: RUNNING"; exit 0;;
esac
case " $* " in *" get pod "*) echo "$me $*" >>"$CTN_LOG"; echo Running; exit 0;; esac
line=$me; n=$#; i=0
for a; do i=$((i+1)); [ $i -lt $n ] && line="$line $a"; done
echo "$line <cmd>" >>"$CTN_LOG"
for last; do :; done
exec /bin/sh -c "$last"
`

func TestConnKindCommandLines(t *testing.T) {
	bin := t.TempDir()
	for _, tool := range []string{"docker", "podman", "kubectl", "lxc-attach", "lxc-info", "lxc", "machinectl", "nsenter", "chroot"} {
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(fakeTool), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		kind string
		spec transport.ConnSpec
		want []string // the log: checks, then the entering argv
	}{
		{"docker", transport.ConnSpec{Host: "app1", User: "app"}, []string{
			"docker inspect -f {{.State.Running}} app1",
			"docker exec -i -u app app1 /bin/sh -c <cmd>"}},
		{"podman", transport.ConnSpec{Host: "inv-name", Target: "app2"}, []string{
			"podman inspect -f {{.State.Running}} app2",
			"podman exec -i app2 /bin/sh -c <cmd>"}},
		{"kubectl", transport.ConnSpec{Host: "web-0", Vars: map[string]string{
			"herd_kubectl_context": "prod", "ansible_kubectl_namespace": "shop", "herd_kubectl_container": "app"}}, []string{
			"kubectl --context prod -n shop get pod web-0 -o jsonpath={.status.phase}",
			"kubectl --context prod -n shop exec -i web-0 -c app -- /bin/sh -c <cmd>"}},
		{"lxc", transport.ConnSpec{Host: "c1"}, []string{
			"lxc-info -s -n c1",
			"lxc-attach -n c1 -- /bin/sh -c <cmd>"}},
		{"lxd", transport.ConnSpec{Host: "c1", Vars: map[string]string{"herd_lxd_remote": "rack"}}, []string{
			"lxc exec rack:c1 -- /bin/sh -c <cmd>"}},
		{"machinectl", transport.ConnSpec{Host: "m1"}, []string{
			"machinectl show -p Leader --value m1",
			"nsenter -t 4242 -a -r -w /bin/sh -c <cmd>"}},
		{"setns", transport.ConnSpec{Host: "p", Target: pid}, []string{
			"nsenter -t " + pid + " -a -r -w /bin/sh -c <cmd>"}},
		{"nsenter", transport.ConnSpec{Host: "p", Vars: map[string]string{"herd_setns_pid": pid}}, []string{
			"nsenter -t " + pid + " -a -r -w /bin/sh -c <cmd>"}},
		{"chroot", transport.ConnSpec{Host: "img", Target: "/"}, []string{
			"chroot / /bin/sh -c <cmd>"}},
		{"docker", transport.ConnSpec{Host: "x", Vars: map[string]string{"herd_connection_tool": filepath.Join(bin, "podman")}}, []string{
			"podman inspect -f {{.State.Running}} x",
			"podman exec -i x /bin/sh -c <cmd>"}},
	}
	gz, raw, hash := fakeAgent(t)
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log")
			tc.spec.Where = "the controller"
			start := func(cmd string) (*transport.Session, error) {
				line, err := transport.ConnLine(tc.kind, tc.spec, cmd)
				if err != nil {
					return nil, err
				}
				env := "PATH=" + bin + ":$PATH CTN_LOG=" + log + "; export PATH CTN_LOG; "
				return transport.StartLocal(context.Background(), []string{"/bin/sh", "-c", env + line})
			}
			s, _, err := bootstrap.Start(context.Background(), start, hash, func() ([]byte, []byte, error) { return gz, raw, nil }, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			talk(t, s)
			b, _ := os.ReadFile(log)
			// A cold cache runs the tool once; the log has its checks and exec.
			if got := strings.TrimSpace(string(b)); got != strings.Join(tc.want, "\n") {
				t.Errorf("tool argv:\n%s\nwant:\n%s", got, strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestConnKindFailuresNameTheTool runs each failing line for real here.
func TestConnKindFailuresNameTheTool(t *testing.T) {
	tests := []struct {
		kind string
		spec transport.ConnSpec
		want string
	}{
		{"lxc", transport.ConnSpec{Host: "c1"}, "lxc-attach not installed on the controller"},
		{"docker", transport.ConnSpec{Host: "app1", Vars: map[string]string{"herd_connection_tool": "/nonexistent/docker"}}, "/nonexistent/docker not installed on the controller"},
		{"chroot", transport.ConnSpec{Host: "img", Target: "/nonexistent"}, "chroot: /nonexistent on the controller has no /bin/sh"},
		{"setns", transport.ConnSpec{Host: "p", Target: "999999999"}, "nsenter: no process 999999999 on the controller"},
		{"setns", transport.ConnSpec{Host: "n", Target: "ctn-no-such-netns"}, "ip netns: no network namespace ctn-no-such-netns on the controller"},
	}
	for _, tc := range tests {
		tc.spec.Where = "the controller"
		line, err := transport.ConnLine(tc.kind, tc.spec, "echo entered")
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "/bin/sh", "-c", line).CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != transport.ExitConnTool || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("%s %+v: %v %q, want exit %d %q", tc.kind, tc.spec, err, out, transport.ExitConnTool, tc.want)
		}
	}
}

func TestConnKindConfigErrors(t *testing.T) {
	tests := []struct {
		kind string
		spec transport.ConnSpec
		want string
	}{
		{"dockr", transport.ConnSpec{Host: "a"}, `a: herd_connection = "dockr": unknown; want one of chroot, docker, kubectl, local, lxc, lxd, machinectl, nsenter, podman, setns, ssh`},
		{"chroot", transport.ConnSpec{Host: "img"}, `img: herd_connection = chroot: set herd_host (or herd_chroot_dir) to the chroot directory, an absolute path (got "")`},
		{"docker", transport.ConnSpec{Host: "a", Target: "--privileged"}, `is not a container, pod or machine name`},
		{"setns", transport.ConnSpec{Host: "a", Vars: map[string]string{"herd_setns_pid": "12x"}}, `herd_setns_pid = "12x" is not a process id`},
		{"setns", transport.ConnSpec{Host: "a", Target: "../x"}, `herd_netns = "../x" is not a network namespace name`},
	}
	for _, tc := range tests {
		err := transport.CheckConn(tc.kind, tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: %v, want %q", tc.kind, tc.spec, err, tc.want)
		}
	}
	for _, ok := range []string{"", "ssh", "smart", "paramiko"} {
		if err := transport.CheckConn(ok, transport.ConnSpec{Host: "a"}); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestConnKindNetnsForReal enters a named network namespace made for the
// test with ip netns exec, and starts an agent in it.
func TestConnKindNetnsForReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ip netns needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip")
	}
	name := "ctn" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	gz, raw, hash := fakeAgent(t)
	spec := transport.ConnSpec{Host: "n1", Vars: map[string]string{"herd_netns": name}, Where: "the controller"}
	start := func(cmd string) (*transport.Session, error) {
		line, err := transport.ConnLine("setns", spec, cmd)
		if err != nil {
			return nil, err
		}
		return transport.StartLocal(context.Background(), []string{"/bin/sh", "-c", line})
	}
	s, installed, err := bootstrap.Start(context.Background(), start, hash, func() ([]byte, []byte, error) { return gz, raw, nil }, t.TempDir())
	if err != nil || !installed {
		t.Fatalf("installed=%v err=%v", installed, err)
	}
	talk(t, s)
	line, _ := transport.ConnLine("setns", spec, "readlink /proc/self/ns/net")
	out, err := exec.Command("/bin/sh", "-c", line).Output()
	mine, _ := os.Readlink("/proc/self/ns/net")
	if err != nil || strings.TrimSpace(string(out)) == mine || !strings.HasPrefix(string(out), "net:[") {
		t.Errorf("inside the netns: %q %v (controller's: %s)", out, err, mine)
	}
}

// TestConnKindSeedsTheAgentFromTheParentsCache: with transport.Seed, the tool's
// machine copies its own cached agent into the target, so the controller
// is never asked for the binary; a parent copy with the wrong hash is not
// used, and the controller sends the binary as usual.
func TestConnKindSeedsTheAgentFromTheParentsCache(t *testing.T) {
	gz, raw, hash := fakeAgent(t)
	for _, tc := range []struct {
		name     string
		parent   []byte
		wantSent bool
	}{
		{"parent has it", raw, false},
		{"parent copy corrupt", append([]byte("#!/bin/sh\nexit 1\n"), raw...), true},
		{"parent has none", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parentDir, target := t.TempDir(), t.TempDir()
			if tc.parent != nil {
				os.MkdirAll(filepath.Join(parentDir, hash), 0o700)
				if err := os.WriteFile(filepath.Join(parentDir, hash, "herd"), tc.parent, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			spec := transport.ConnSpec{Host: "c1", Where: "the controller", Vars: map[string]string{"herd_home": target},
				Seed: &transport.Seed{Hash: hash, ParentDir: parentDir}}
			start := func(cmd string) (*transport.Session, error) {
				line, err := transport.ConnLine("local", spec, cmd)
				if err != nil {
					return nil, err
				}
				return transport.StartLocal(context.Background(), []string{"/bin/sh", "-c", line})
			}
			s, sent, err := bootstrap.Start(context.Background(), start, hash, func() ([]byte, []byte, error) { return gz, raw, nil }, "")
			if err != nil {
				t.Fatal(err)
			}
			talk(t, s)
			if sent != tc.wantSent {
				t.Errorf("controller sent the binary: %v, want %v", sent, tc.wantSent)
			}
			got, err := os.ReadFile(filepath.Join(target, ".cache/herd", hash, "herd"))
			if err != nil || string(got) != string(raw) {
				t.Errorf("target's cached agent: %d bytes, %v", len(got), err)
			}
		})
	}
}
