package policy

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Inputs lists every path that loading and planning read, wherever it
// lives: herd watch watches exactly these. The policy sits in policy/ and
// reads a module, a template, a served file, a served tree (with a link
// out of it), and an inventory from sibling directories.
func TestInputsListEveryPathRead(t *testing.T) {
	root := writeFiles(t, `-- policy/site.star --
load("../lib/common.star", "VALUE")
inv = inventory("../inv/hosts.ini")
def main(h):
    file("/etc/lib", content = VALUE)
    template("/etc/app.conf", src = "../shared/app.tmpl")
    file("/etc/motd", source = "../files/motd")
    copy("/srv/tree", source = "../files/tree")
role("web", hosts = inv.hosts, main = main, fileserving_paths = [".", "../shared", "../files"])
-- lib/common.star --
VALUE = "x\n"
-- shared/app.tmpl --
name={{ .host.name }}
-- files/motd --
hello
-- files/tree/a --
a
-- files/real --
r
-- inv/hosts.ini --
web1
-- inv/group_vars/all.yml --
x: 1
`)
	os.Symlink("../real", filepath.Join(root, "files/tree/link"))
	var mu sync.Mutex
	heard := map[string]bool{}
	p, err := Load(filepath.Join(root, "policy/site.star"), LoadOptions{OnInput: func(s string) { mu.Lock(); heard[s] = true; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Plan(p.Roles[0], web1); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, rel := range []string{"policy/site.star", "lib/common.star", "shared/app.tmpl", "files/motd",
		"files/tree", "files/real", "inv/hosts.ini", "inv/group_vars", "inv/host_vars",
		"policy/group_vars", "policy/host_vars"} {
		want = append(want, filepath.Join(root, rel))
	}
	sort.Strings(want)
	got := p.Inputs()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	for _, g := range got {
		delete(missing, g)
		if !strings.HasPrefix(g, root) {
			t.Errorf("input %s is outside the project", g)
		}
		if !heard[g] {
			t.Errorf("OnInput never heard %s", g)
		}
	}
	if len(missing) > 0 {
		t.Errorf("inputs lack %v; got %v", missing, got)
	}
}

// A load that fails still tells OnInput what it read, so herd watch sees
// the fix of a broken module outside the policy's directory.
func TestInputsOfAFailingLoad(t *testing.T) {
	root := writeFiles(t, `-- policy/site.star --
load("../lib/broken.star", "X")
-- lib/broken.star --
X = (
`)
	var heard []string
	_, err := Load(filepath.Join(root, "policy/site.star"), LoadOptions{OnInput: func(s string) { heard = append(heard, s) }})
	if err == nil {
		t.Fatal("a broken module loaded")
	}
	if want := filepath.Join(root, "lib/broken.star"); !strings.Contains(strings.Join(heard, " "), want) {
		t.Errorf("OnInput heard %v, want %s", heard, want)
	}
}
