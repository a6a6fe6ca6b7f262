package inventory

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const patternInventory = `solo
[web]
web1.east
web2.west
[db]
db1.east
db2
[prod:children]
web
db
[canary]
web2.west
[web3]
db2
`

// patternCases are host patterns with the hosts Ansible selects for them;
// TestPatternsLikeAnsible checks every want against the real Ansible.
var patternCases = []struct{ pattern, want string }{
	{"web:db", "web1.east web2.west db1.east db2"},
	{"web,db", "web1.east web2.west db1.east db2"},
	{"prod:&canary", "web2.west"},
	{"prod:!db1.east", "web1.east web2.west db2"},
	{"!canary", "solo web1.east db1.east db2"},
	{"all:!prod", "solo"},
	{"*.east", "web1.east db1.east"},
	{"web*", "web1.east web2.west db2"}, // the group web3 matches too
	{"~web\\d\\.", "web1.east web2.west"},
	{"~(db|solo)", "solo db1.east db2"},
	{"db2:solo", "solo db2"},
	{"web3", "db2"},
	{"db[12]*", "db1.east db2"},
	{"ungrouped", "solo"},
	{"nosuch", ""},
	{"web:&db", ""},
}

func TestPatterns(t *testing.T) {
	inv := loadFiles(t, "hosts", map[string]string{"hosts": patternInventory})
	for _, c := range patternCases {
		p, err := ParsePattern(c.pattern, nil)
		if err != nil {
			t.Errorf("%s: %v", c.pattern, err)
			continue
		}
		got := hostNames(inv.Select(p))
		want := strings.Fields(c.want)
		if !sameSet(got, want) {
			t.Errorf("%-14s selects %v, want %v", c.pattern, got, want)
		}
	}
}

// @file reads a file of patterns, one a line, through the caller's expand.
func TestPatternAtFile(t *testing.T) {
	inv := loadFiles(t, "hosts", map[string]string{"hosts": patternInventory})
	files := map[string][]string{"retry": {"db2", "web1.east", ""}, "empty": {}}
	expand := func(name string) ([]string, error) {
		if l, ok := files[name]; ok {
			return l, nil
		}
		return nil, fmt.Errorf("@%s: no such file", name)
	}
	for pattern, want := range map[string][]string{
		"@retry":     {"db2", "web1.east"},
		"@retry:!db": {"web1.east"},
		"@empty":     {},
	} {
		p, err := ParsePattern(pattern, expand)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostNames(inv.Select(p)); !sameSet(got, want) {
			t.Errorf("%s selects %v, want %v", pattern, got, want)
		}
	}
	if _, err := ParsePattern("@nope", expand); err == nil || !strings.Contains(err.Error(), "@nope") {
		t.Errorf("@nope: err = %v", err)
	}
	if _, err := ParsePattern("@retry", nil); err == nil {
		t.Error("@file accepted where no expand is given")
	}
	for _, bad := range []string{"", "!", "~("} {
		if _, err := ParsePattern(bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestPatternsLikeAnsible runs every pattern as a play of one playbook
// through ansible-playbook --list-hosts and compares with patternCases.
func TestPatternsLikeAnsible(t *testing.T) {
	bin, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("ansible-playbook not installed (apt-get install ansible-core)")
	}
	dir := project(t, map[string]string{"hosts": patternInventory})
	var pb strings.Builder
	for i, c := range patternCases {
		fmt.Fprintf(&pb, "- name: p%d\n  hosts: %s\n  gather_facts: false\n  tasks: []\n", i, strconv.Quote(c.pattern))
	}
	os.WriteFile(filepath.Join(dir, "pb.yml"), []byte(pb.String()), 0o644)
	cmd := exec.Command(bin, "-i", "hosts", "pb.yml", "--list-hosts")
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "ANSIBLE_LOCALHOST_WARNING=False")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	got := map[int][]string{}
	play, inHosts := -1, false
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "play #"):
			n, _ := strconv.Atoi(strings.Fields(line)[1][1:])
			play, inHosts = n-1, false
			got[play] = []string{}
		case strings.HasPrefix(line, "hosts ("):
			inHosts = true
		case inHosts && line != "":
			got[play] = append(got[play], line)
		}
	}
	for i, c := range patternCases {
		want := strings.Fields(c.want)
		if a, ok := got[i]; !ok || !sameSet(a, want) {
			t.Errorf("%-14s Ansible selects %v, the table says %v", c.pattern, a, want)
		}
	}
}
