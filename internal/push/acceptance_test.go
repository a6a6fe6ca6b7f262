package push_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/push"
)

func singleHostPolicy(t *testing.T, extra map[string]string, body string) string {
	files := map[string]string{"site.star": body}
	for k, v := range extra {
		files[k] = v
	}
	return project(t, files)
}

// An unknown host key is refused by default, and the error shows the
// fingerprint so the user can verify it.
func TestUnknownHostKeyIsRefusedWithFingerprint(t *testing.T) {
	l := flatLab(t)
	dir := singleHostPolicy(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host4"}}),
	}, `
inv = inventory("inventory.toml")
def main(host):
    file("/tmp/should-not-exist", content = "x")
role("r", hosts = inv.hosts, main = main)
`)
	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o600)
	rec := &recorder{}
	o := options(t, l, rec)
	o.Defaults.KnownHosts = []string{empty}
	res := run(t, load(t, dir), o)
	hr := res.Hosts["host4"]
	if hr == nil || !hr.Unreachable {
		t.Fatalf("host4 result %+v, want unreachable", hr)
	}
	if !strings.Contains(hr.Err, "unknown host key") || !strings.Contains(hr.Err, "SHA256:") {
		t.Fatalf("error does not name the unknown key and its fingerprint: %s", hr.Err)
	}
	if _, err := l.Host("host4").ReadFile("/tmp/should-not-exist"); err == nil {
		t.Fatal("resource applied on a host with an unknown key")
	}
}

// A cached agent that was modified on the target is detected and replaced,
// and the run succeeds.
func TestTamperedCachedAgentIsReplaced(t *testing.T) {
	l := flatLab(t)
	dir := singleHostPolicy(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host5"}}),
	}, `
inv = inventory("inventory.toml")
def main(host):
    file("/tmp/tamper-check", content = "ok\n")
role("r", hosts = inv.hosts, main = main)
`)
	pol := load(t, dir)
	rec := &recorder{}
	o := options(t, l, rec)
	if res := run(t, pol, o); res.Hosts["host5"].Failed || res.Hosts["host5"].Unreachable {
		t.Fatalf("first run: %+v\n%s", res.Hosts["host5"], rec.dump())
	}
	hash, _ := o.Agent.Hash()
	cached := l.Host("host5").Path("/root/.cache/herd/" + hash + "/herd")
	// The run does not wait for the agent to exit: wait for the file to be
	// writable (ETXTBSY while the agent still runs).
	var f *os.File
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		f, err = os.OpenFile(cached, os.O_APPEND|os.O_WRONLY, 0)
		if !errors.Is(err, syscall.ETXTBSY) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("cached agent not where expected: %v", err)
	}
	f.WriteString("tampered")
	f.Close()

	os.Remove(l.Host("host5").Path("/tmp/tamper-check"))
	rec2 := &recorder{}
	if res := run(t, pol, options(t, l, rec2)); res.Hosts["host5"].Failed || res.Hosts["host5"].Unreachable {
		t.Fatalf("run after tampering: %+v\n%s", res.Hosts["host5"], rec2.dump())
	}
	b, err := os.ReadFile(cached)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(string(b), "tampered") {
		t.Fatal("tampered agent still in the cache")
	}
	if got, _ := l.Host("host5").ReadFile("/tmp/tamper-check"); string(got) != "ok\n" {
		t.Fatalf("resource not applied after replacing the agent: %q", got)
	}
}

// An Ansible project layout (INI inventory, group_vars, host_vars) works
// unchanged, with Ansible's precedence and ansible_* connection vars.
func TestAnsibleINIProjectLayout(t *testing.T) {
	l := flatLab(t)
	h6, h7 := l.Host("host6"), l.Host("host7")
	dir := project(t, map[string]string{
		"inventory/production": `# production
[web]
www1 ansible_host=` + h6.Addr + ` ansible_user=root
www2 ansible_host=` + h7.Addr + ` ansible_user=root http_port=8081

[db]

[datacenter:children]
web
db
`,
		"inventory/group_vars/all.yml":        "ntp_server: ntp.example.com\nhttp_port: 80\n",
		"inventory/group_vars/web.yml":        "http_port: 8080\nrole_name: web\n",
		"inventory/host_vars/www1.yml":        "motd: hello from www1\n",
		"inventory/group_vars/datacenter.yml": "dc: east\n",
		"templates/app.conf.tmpl": `ntp={{ .vars.ntp_server }} port={{ .vars.http_port }} dc={{ .vars.dc }} motd={{ index .vars "motd" | default "-" }}
`,
		"site.star": `
inv = inventory("inventory/production")
def main(host):
    template("/tmp/app.conf", src = "templates/app.conf.tmpl")
role("web", hosts = inv.filter(groups = "web"), main = main)
`,
	})
	rec := &recorder{}
	o := options(t, l, rec)
	o.Defaults.SSHUser = "nobody-should-use-this" // ansible_user from the inventory wins
	res := run(t, load(t, dir), o)
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("run failed:\n%s", rec.dump())
	}
	for _, c := range []struct {
		host interface{ ReadFile(string) ([]byte, error) }
		want string
	}{
		{h6, "ntp=ntp.example.com port=8080 dc=east motd=hello from www1\n"},
		{h7, "ntp=ntp.example.com port=8081 dc=east motd=-\n"},
	} {
		got, err := c.host.ReadFile("/tmp/app.conf")
		if err != nil || string(got) != c.want {
			t.Errorf("app.conf = %q (%v), want %q", got, err, c.want)
		}
	}
}

// Check mode in push: a manual edit on a host is reported with a diff and
// left alone; the agent's event log on the target records the run.
func TestCheckModeShowsDiffAndChangesNothing(t *testing.T) {
	l := flatLab(t)
	h := l.Host("host8")
	dir := singleHostPolicy(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host8"}}),
	}, `
inv = inventory("inventory.toml")
def main(host):
    file("/etc/herd-check.conf", content = "managed line\n")
role("r", hosts = inv.hosts, main = main)
`)
	pol := load(t, dir)
	run(t, pol, options(t, l, &recorder{}))
	if err := os.WriteFile(h.Path("/etc/herd-check.conf"), []byte("edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	o := options(t, l, rec)
	o.Check = true
	run(t, pol, o)
	var changed *event.Event
	for i, e := range rec.events {
		if e.Type == event.Changed {
			changed = &rec.events[i]
		}
	}
	if changed == nil || !changed.Check || changed.Resource != "file:/etc/herd-check.conf" {
		t.Fatalf("no check-mode change event for the file:\n%s", rec.dump())
	}
	if !strings.Contains(changed.Diff, "-edited by hand") || !strings.Contains(changed.Diff, "+managed line") {
		t.Fatalf("diff = %q", changed.Diff)
	}
	if got, _ := h.ReadFile("/etc/herd-check.conf"); string(got) != "edited by hand\n" {
		t.Fatalf("check mode changed the file: %q", got)
	}
	log, err := h.ReadFile("/root/.herd/herd.log")
	if err != nil || !strings.Contains(string(log), `"resource":"file:/etc/herd-check.conf"`) || !strings.Contains(string(log), `"check":true`) {
		t.Fatalf("agent event log on the target: %v\n%s", err, log)
	}
}

// A host whose login shell hangs fails within the agent start bound, and
// the other hosts finish.
func TestStuckLoginShellFailsOnlyThatHost(t *testing.T) {
	l := flatLab(t)
	stuck := l.Host("host8")
	bashrc := stuck.Path("/root/.bashrc")
	old, err := os.ReadFile(bashrc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bashrc, []byte("sleep 90\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(bashrc, old, 0o644)

	dir := singleHostPolicy(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host7", "host8"}}),
	}, `
inv = inventory("inventory.toml")
def main(host):
    file("/tmp/stuck-check", content = "x")
role("r", hosts = inv.hosts, main = main)
`)
	rec := &recorder{}
	start := time.Now()
	o := options(t, l, rec)
	// The bound also covers host7's start, a cold agent upload on a loaded
	// machine: 8 s, far below the stuck shell's 90 s.
	push.SetAgentStartTimeout(&o, 8*time.Second)
	res := run(t, load(t, dir), o)
	if took := time.Since(start); took > 60*time.Second {
		t.Fatalf("run took %v: the stuck host was not bounded", took)
	}
	if hr := res.Hosts["host8"]; hr == nil || !hr.Unreachable || !strings.Contains(hr.Err, "did not start within 8s") {
		t.Fatalf("host8: %+v", hr)
	}
	if hr := res.Hosts["host7"]; hr == nil || hr.Failed || hr.Unreachable {
		t.Fatalf("host7: %+v\n%s", hr, rec.dump())
	}
}
