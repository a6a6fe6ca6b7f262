package inventory

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const subscriptINI = `solo
[web]
w1
w2
w3
w4
[webext]
x1
[web:children]
webext
[db]
d1
d2
`

// What ansible 2.14 prints with --list-hosts for each pattern on
// subscriptINI (sorted: herd selects in inventory order, Ansible in
// pattern order); TestSubscriptsLikeAnsible re-asks the real ansible when
// it is installed.
var subscriptCases = []struct {
	pattern string
	want    []string
}{
	{"web[0]", []string{"w1"}},
	{"web[1:3]", []string{"w2", "w3", "w4"}},
	{"web[-1]", []string{"x1"}}, // a child group's hosts come after the group's own
	{"web[2:]", []string{"w3", "w4", "x1"}},
	{"web[0:0]", []string{"w1"}},
	{"web[1-2]", []string{"w2", "w3"}},
	{"web[9]", nil}, // out of range (ansible-playbook refuses it)
	{"db[-3]", nil},
	{"web*[0]", []string{"w1"}},
	{"d*[1]", []string{"d2"}},
	{"web:db[1]", []string{"d2", "w1", "w2", "w3", "w4", "x1"}},
	{"web:!web[0]", []string{"w2", "w3", "w4", "x1"}},
	{"web[0]:&db", nil},
	{"all[0]", []string{"solo"}},
	{"all[-1]", []string{"x1"}},
	{"~w[0-9][1]", nil}, // a regex has no subscript: it matches no name
	{"w[1-2]", nil},     // a subscript of "w", which names nothing
}

func TestSubscripts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts.ini")
	if err := os.WriteFile(path, []byte(subscriptINI), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range subscriptCases {
		p, err := ParsePattern(c.pattern, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		var got []string
		for _, h := range inv.Select(p) {
			got = append(got, h.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s selects %v, want %v", c.pattern, got, c.want)
		}
	}
	// Unbound (Match without Bind), a subscript selects nothing rather
	// than everything.
	p, _ := ParsePattern("web[0]", nil)
	for _, h := range inv.Hosts() {
		if p.Match(h, inv.IsGroup) {
			t.Errorf("unbound web[0] matched %s", h.Name)
		}
	}
}

// The expectations above are what the real Ansible selects: one
// ansible-playbook --list-hosts run with a play per pattern (one process:
// Ansible starts slowly), and ansible --list-hosts for the out-of-range
// subscripts, which ansible-playbook refuses.
func TestSubscriptsLikeAnsible(t *testing.T) {
	playbook, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("ansible-playbook not installed (apt-get install ansible-core)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts.ini")
	var plays strings.Builder
	var inPlays []int
	for i, c := range subscriptCases {
		if c.pattern == "web[9]" || c.pattern == "db[-3]" {
			continue
		}
		fmt.Fprintf(&plays, "- name: p%d\n  hosts: %q\n  gather_facts: false\n  tasks: []\n", i, c.pattern)
		inPlays = append(inPlays, i)
	}
	os.WriteFile(path, []byte(subscriptINI), 0o644)
	os.WriteFile(filepath.Join(dir, "pb.yml"), []byte(plays.String()), 0o644)
	cmd := exec.Command(playbook, "-i", path, filepath.Join(dir, "pb.yml"), "--list-hosts")
	cmd.Env = append(cmd.Environ(), "ANSIBLE_LOCALHOST_WARNING=False")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-playbook: %v", err)
	}
	// "  play #N (pattern): pN ..." then "      host" lines.
	got := map[int][]string{}
	play := -1
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "  play #") {
			fmt.Sscanf(l[len("  play #"):], "%d", &play)
			play--
			continue
		}
		if play >= 0 && strings.HasPrefix(l, "      ") {
			got[inPlays[play]] = append(got[inPlays[play]], strings.TrimSpace(l))
		}
	}
	if len(got) == 0 {
		t.Fatalf("no hosts in ansible-playbook's output:\n%s", out)
	}
	for j, i := range inPlays {
		c := subscriptCases[i]
		g := got[i]
		slices.Sort(g)
		if !slices.Equal(g, c.want) {
			t.Errorf("ansible play %d %s: %v, herd's expectation %v", j+1, c.pattern, g, c.want)
		}
	}
	// Out of range: no host (ansible warns and selects nothing).
	bin, _ := exec.LookPath("ansible")
	out, _ = exec.Command(bin, "-i", path, "web[9]", "--list-hosts").Output()
	if !strings.Contains(string(out), "hosts (0)") {
		t.Errorf("ansible web[9] --list-hosts: %s", out)
	}
}
