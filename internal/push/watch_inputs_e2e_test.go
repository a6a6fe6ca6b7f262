package push_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/filewatch"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/push"
)

// inputsPolicy lives in policy/ and reads every kind of input from
// sibling directories: a module, a template, served files, a served tree
// (host7 only), an inventory with group_vars (made during the watch) and
// host_vars (one vault-encrypted).
const inputsPolicy = `load("../lib/common.star", "LIB")
inv = inventory("../inv/hosts.toml")
def main(host):
    n = host.name
    v = host.vars
    directory("/root/inputs", mode = 0o755)
    file("/root/inputs/lib", content = LIB.get(n, "-") + "\n")
    template("/root/inputs/tmpl", src = "../shared/app.tmpl")
    file("/root/inputs/motd", source = "../files/" + n + ".motd")
    if n == "host7":
        copy("/root/inputs/tree", source = "../files/tree")
    file("/root/inputs/vars", no_log = True, content = "color=%s tier=%s owner=%s secret=%s\n" % (
        v.get("color", "-"), v.get("tier", "-"), v.get("owner", "-"), v.get("secret", "-")))
role("w", hosts = inv.hosts, main = main, fileserving_paths = [".", "../shared", "../files"])
`

// Every input of the plans is watched wherever it lives (here: none in
// the policy's directory but the policy): an edit of each kind re-plans
// exactly the hosts whose plans it changes, through the real file watch,
// and those re-apply only the resource the edit concerns.
func TestWatchReplansEveryInput(t *testing.T) {
	vaultBin, err := exec.LookPath("ansible-vault")
	if err != nil {
		t.Skip("ansible-vault not installed (apt-get install ansible-core)")
	}
	l := flatLab(t)
	names := []string{"host7", "host8", "host9"}
	invText := tomlInventory(l, map[string][]string{"g1": {"host7", "host8"}, "g2": {"host9"}})
	addr8 := fmt.Sprintf("herd_host=%s\"", l.Host("host8").Addr)
	invText = strings.Replace(invText, addr8, strings.TrimSuffix(addr8, `"`)+` color=blue"`, 1)
	root := project(t, map[string]string{
		"policy/site.star":        inputsPolicy,
		"lib/common.star":         `LIB = {"host7": "a"}` + "\n",
		"shared/app.tmpl":         "name={{ .host.name }}\n",
		"files/host7.motd":        "7\n",
		"files/host8.motd":        "8\n",
		"files/host9.motd":        "9\n",
		"files/tree/sub/f":        "f1\n",
		"inv/hosts.toml":          invText,
		"inv/host_vars/host8.yml": "secret: s1\n",
		"vault/pw":                "pw-watch\n",
		"vault/next.yml":          "secret: s2\n",
	})
	in := func(rel string) string { return filepath.Join(root, rel) }
	began := time.Now()
	if out, err := exec.Command(vaultBin, "encrypt", "--vault-password-file", in("vault/pw"),
		in("inv/host_vars/host8.yml"), in("vault/next.yml")).CombinedOutput(); err != nil {
		t.Fatalf("ansible-vault: %v\n%s", err, out)
	}
	t.Logf("ansible-vault: %v", time.Since(began).Round(time.Millisecond))
	fw, err := filewatch.New(in("policy"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	loadOpts := policy.LoadOptions{Vault: inventory.NewVault([]byte("pw-watch")), OnInput: func(p string) { fw.Add(p) }}
	reload := func() (*policy.Policy, *inventory.Inventory, error) {
		p, err := policy.Load(in("policy/site.star"), loadOpts)
		return p, nil, err
	}
	pol, _, err := reload()
	if err != nil {
		t.Fatal(err)
	}
	w := startWatchPolicy(t, pol, push.WatchOptions{Reload: reload, Changes: fw.Changes()})
	w.waitConverged(t, names...)
	t.Logf("vault, load and first watch converged: %v", time.Since(began).Round(time.Millisecond))

	write := func(rel, body string) func() {
		return func() {
			os.MkdirAll(filepath.Dir(in(rel)), 0o755)
			if err := os.WriteFile(in(rel), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, step := range []struct {
		input string
		edit  func()
		want  map[string]string // host → the one resource it re-applies
	}{
		{"load()ed module", write("lib/common.star", `LIB = {"host7": "b"}`+"\n"), map[string]string{"host7": "file:/root/inputs/lib"}},
		{"template", write("shared/app.tmpl", "name={{ .host.name }}\n{{ if eq .host.name \"host8\" }}extra\n{{ end }}"),
			map[string]string{"host8": "file:/root/inputs/tmpl"}},
		{"served file", write("files/host9.motd", "nine\n"), map[string]string{"host9": "file:/root/inputs/motd"}},
		{"file in a served tree", write("files/tree/sub/f", "f2\n"), map[string]string{"host7": "copy:/root/inputs/tree"}},
		{"inventory", func() { write("inv/hosts.toml", strings.Replace(invText, "color=blue", "color=green", 1))() },
			map[string]string{"host8": "file:/root/inputs/vars"}},
		{"group_vars made during the watch", write("inv/group_vars/g2.yml", "tier: b\n"), map[string]string{"host9": "file:/root/inputs/vars"}},
		{"new host_vars file", write("inv/host_vars/host7.yml", "owner: ann\n"), map[string]string{"host7": "file:/root/inputs/vars"}},
		{"vault-encrypted host_vars", func() {
			if err := os.Rename(in("vault/next.yml"), in("inv/host_vars/host8.yml")); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"host8": "file:/root/inputs/vars"}},
	} {
		mark := w.mark()
		w.mu.Lock()
		logMark := len(w.log)
		w.mu.Unlock()
		saved := time.Now()
		step.edit()
		w.waitReplanned(t, mark, logMark, step.input, step.want)
		took := time.Since(saved) - 100*time.Millisecond // waitReplanned's look for late plans
		t.Logf("%s: save to converged within %v", step.input, took.Round(time.Millisecond))
		if step.input == "template" && took > 2*time.Second {
			t.Errorf("template edit: host8 converged %v after the save (through the file watch), want within 2s", took)
		}
	}
	want := map[string]string{
		"host7": "color=- tier=- owner=ann secret=-\n",
		"host8": "color=green tier=- owner=- secret=s2\n",
		"host9": "color=- tier=b owner=- secret=-\n",
	}
	for n, body := range want {
		if b, err := l.Host(n).ReadFile("/root/inputs/vars"); string(b) != body {
			t.Errorf("%s vars = %q (%v), want %q", n, b, err, body)
		}
	}
	if b, _ := l.Host("host7").ReadFile("/root/inputs/tree/sub/f"); string(b) != "f2\n" {
		t.Errorf("host7 tree/sub/f = %q", b)
	}
}

// waitReplanned waits until the hosts of want got a new plan and
// converged again after it, then checks that no other host got one and
// that each re-applied only its resource.
func (w *watchRun) waitReplanned(t *testing.T, mark, logMark int, input string, want map[string]string) {
	t.Helper()
	planned := func() map[string]bool {
		got := map[string]bool{}
		for _, e := range w.since(mark) {
			if e.Type == event.Log && strings.Contains(e.Msg, "new plan after") {
				got[e.Host] = true
			}
		}
		return got
	}
	// reconverged: a converging state after the mark, then converged.
	reconverged := func() map[string]bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		moving, done := map[string]bool{}, map[string]bool{}
		for _, s := range w.log[logMark:] {
			switch s.State {
			case push.Converging:
				moving[s.Host], done[s.Host] = true, false
			case push.Converged:
				done[s.Host] = moving[s.Host]
			}
		}
		return done
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, done, all := planned(), reconverged(), true
		for h := range want {
			all = all && got[h] && done[h]
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s edited: re-planned %v, converged again %v, want %v:\n%s", input, got, done, want, w.rec.dump())
		}
	}
	var hosts []string
	for h := range want {
		hosts = append(hosts, h)
	}
	time.Sleep(100 * time.Millisecond) // a second, late re-plan would show here
	ran := map[string][]string{}
	for _, e := range w.since(mark) {
		if e.Type == event.OK || e.Type == event.Changed {
			ran[e.Host] = append(ran[e.Host], string(e.Type)+" "+e.Resource)
		}
	}
	for h := range planned() {
		if want[h] == "" {
			t.Errorf("%s edited: %s got a new plan, want only %v", input, h, hosts)
		}
	}
	for h, rs := range ran {
		sort.Strings(rs)
		if want[h] == "" || strings.Join(rs, ",") != "changed "+want[h] {
			t.Errorf("%s edited: %s ran %v, want only %q changed", input, h, rs, want[h])
		}
	}
	for h, r := range want {
		if len(ran[h]) == 0 {
			t.Errorf("%s edited: %s did not re-apply %s", input, h, r)
		}
	}
}
