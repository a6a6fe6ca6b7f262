package inventory

import (
	"reflect"
	"strings"
	"testing"
)

const filterInventory = `
[web]
web1.east
web2.west
[db]
db1.east
[canary]
web2.west
[lb]
lb1.east
[frontend:children]
web
lb
`

func TestFilter(t *testing.T) {
	inv := loadFiles(t, "hosts", map[string]string{"hosts": filterInventory})
	tests := []struct {
		name          string
		groups, hosts []string
		want          []string
	}{
		{"no patterns selects everything", nil, nil, []string{"web1.east", "web2.west", "db1.east", "lb1.east"}},
		{"star selects everything", []string{"*"}, nil, []string{"web1.east", "web2.west", "db1.east", "lb1.east"}},
		{"all is a group every host is in", []string{"all"}, nil, []string{"web1.east", "web2.west", "db1.east", "lb1.east"}},
		{"one group", []string{"db"}, nil, []string{"db1.east"}},
		{"parent group includes children's hosts", []string{"frontend"}, nil, []string{"web1.east", "web2.west", "lb1.east"}},
		{"group patterns are a union", []string{"db", "canary"}, nil, []string{"web2.west", "db1.east"}},
		{"group glob", []string{"[wl]*"}, nil, []string{"web1.east", "web2.west", "lb1.east"}},
		{"host patterns alone", nil, []string{"*.east"}, []string{"web1.east", "db1.east", "lb1.east"}},
		{"groups and hosts intersect", []string{"web"}, []string{"*.east"}, []string{"web1.east"}},
		{"host patterns are a union", nil, []string{"db?.east", "web2.*"}, []string{"web2.west", "db1.east"}},
		{"no match", []string{"nosuch"}, nil, nil},
		{"malformed pattern matches only itself", nil, []string{"web[1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hostNames(inv.Filter(tt.groups, tt.hosts))
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Filter(%q, %q) = %v, want %v", tt.groups, tt.hosts, got, tt.want)
			}
		})
	}
	if err := CheckPattern("web[1"); err == nil {
		t.Error("CheckPattern accepted web[1")
	}
	if err := CheckPattern("web[12]*"); err != nil {
		t.Error(err)
	}
}

// The tree in file order, as ansible-inventory 2.14 prints it for the same
// file (TestResolvesLikeAnsibleInventory compares with the real tool).
func TestGraphMatchesAnsibleInventoryGraph(t *testing.T) {
	inv := loadFiles(t, "hosts", map[string]string{"hosts": "solo\n" + filterInventory})
	var b strings.Builder
	Graph(inv, &b)
	want := `@all:
  |--@ungrouped:
  |  |--solo
  |--@db:
  |  |--db1.east
  |--@canary:
  |  |--web2.west
  |--@frontend:
  |  |--@web:
  |  |  |--web1.east
  |  |  |--web2.west
  |  |--@lb:
  |  |  |--lb1.east
`
	if b.String() != want {
		t.Errorf("Graph:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestMasked(t *testing.T) {
	vars := map[string]any{
		"ansible_ssh_pass":     "s1",
		"ansible_become_pass":  "s2",
		"herd_sudo_password":   "s3",
		"db_Password":          "s4",
		"api_token":            "s5",
		"client_secret":        "s6",
		"passphrase":           "s7",
		"ansible_host":         "10.0.0.1",
		"http_port":            80,
		"nested":               map[string]any{"admin_password": "s8", "user": "bob"},
		"list":                 []any{map[string]any{"token": "s9"}},
		"ansible_ssh_pass_old": nil,
	}
	got := Masked(vars)
	want := map[string]any{
		"ansible_ssh_pass":     Mask,
		"ansible_become_pass":  Mask,
		"herd_sudo_password":   Mask,
		"db_Password":          Mask,
		"api_token":            Mask,
		"client_secret":        Mask,
		"passphrase":           Mask,
		"ansible_host":         "10.0.0.1",
		"http_port":            80,
		"nested":               map[string]any{"admin_password": Mask, "user": "bob"},
		"list":                 []any{map[string]any{"token": Mask}},
		"ansible_ssh_pass_old": Mask,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Masked:\n got %#v\nwant %#v", got, want)
	}
	if vars["api_token"] != "s5" || vars["nested"].(map[string]any)["admin_password"] != "s8" {
		t.Error("Masked modified its input")
	}
}

// A directory is an inventory source (see sources_test.go), but one with
// no inventory file in it is refused, like a missing file.
func TestLoadRefusesEmptyDirectoriesAndMissingFiles(t *testing.T) {
	dir := project(t, map[string]string{"README.md": "not an inventory\n", "group_vars/all.yml": "a: 1\n"})
	for _, p := range []string{dir, dir + "/missing"} {
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Load(%s) error = %v, want one naming the path", p, err)
		}
	}
}
