package push_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/push"
	"github.com/herd-project/herd/internal/transport"
)

// A host with ansible_connection=local (kolla's "localhost") runs on the
// controller through the local transport: no sshd listens for it, and the
// file appears on this machine. ansible_become=false on the host overrides
// the role's sudo=True, as a host var overrides a play in Ansible.
func TestAnsibleConnectionLocalRunsOnController(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	dir := project(t, map[string]string{
		"hosts": "[control]\nlocalhost ansible_connection=local ansible_become=false ansible_port=1\n",
		"site.star": `
inv = inventory("hosts")
def main(host):
    file("` + out + `", content = "local " + host.name + "\n")
role("local", hosts = inv.hosts, main = main, sudo = True)
`,
	})
	pol := load(t, dir)
	rec := &recorder{}
	o := push.Options{
		Sink:      rec.sink,
		Agent:     agentBinary(t),
		Defaults:  push.Defaults{SSHUser: "nobody-here"},
		Transport: transport.Config{SSHConfigFile: "none", NoAgent: true, ConnectTimeout: 2 * time.Second},
	}
	o.Defaults.LockWait = new(time.Duration)
	*o.Defaults.LockWait = 5 * time.Second
	res := run(t, pol, o)
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("run failed:\n%s", rec.dump())
	}
	got, err := os.ReadFile(out)
	if err != nil || string(got) != "local localhost\n" {
		t.Fatalf("file on the controller: %q, %v\n%s", got, err, rec.dump())
	}
}

// Connection plugins herd has no equivalent for are refused when the
// inventory loads, naming the host and variable, instead of being tried
// over SSH.
func TestUnsupportedConnectionIsRefused(t *testing.T) {
	dir := project(t, map[string]string{"hosts": "c1 ansible_connection=winrm\n"})
	_, err := inventory.LoadWith(filepath.Join(dir, "hosts"), inventory.Options{})
	if err == nil {
		t.Fatal("ansible_connection=winrm loaded")
	}
	for _, want := range []string{"c1", "ansible_connection", "winrm"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}
