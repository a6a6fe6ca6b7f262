package inventory

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// crossCheckLayouts are inventories whose resolution herd must share with
// Ansible itself: precedence across inventory vars, group_vars/host_vars,
// nested children, group priority, ranges, YAML inventories.
var crossCheckLayouts = []struct {
	name  string
	main  string
	files map[string]string
}{
	{"INI project with group_vars and host_vars", "inventory/production", map[string]string{
		"inventory/production": "[web]\nweb1 ansible_host=10.0.0.11 http_port=8080\nweb2 ansible_host=10.0.0.12\n\n" +
			"[db]\ndb1 ansible_host=10.0.1.10 ansible_port=2222\n\n[east:children]\nweb\ndb\n\n" +
			"[web:vars]\nhttp_port=80\ntier=frontend\n\n[east:vars]\ndc=east\ntier=unknown\nntp=ntp.east\n",
		"inventory/group_vars/all.yml": "---\nntp: pool.ntp.org\nansible_user: deploy\ntier: base\n",
		"inventory/group_vars/web.yml": "http_port: 81\npackages:\n  - nginx\n",
		"inventory/host_vars/web1.yml": "http_port: 9090\nansible_user: admin\n",
	}},
	{"INI ranges, typed values, deep children, group priority", "hosts", map[string]string{
		"hosts": "[app]\napp[01:03].example.com port=8000 debug=True name='x y'\n\n" +
			"[canary]\napp02.example.com\n\n[prod:children]\napp\n[world:children]\nprod\n\n" +
			"[app:vars]\nlevel=app\nansible_group_priority=5\n[canary:vars]\nlevel=canary\n" +
			"[prod:vars]\nlevel=prod\nregion=eu\n[world:vars]\nregion=world\nowner=ops\n",
		"group_vars/canary.yml": "weight: 10\n",
	}},
	{"YAML inventory", "inv.yml", map[string]string{
		"inv.yml": "all:\n  vars:\n    a: 1\n  children:\n    web:\n      hosts:\n        w1:\n          b: 2\n        w2:\n      vars:\n        a: 3\n" +
			"    db:\n      hosts:\n        d1:\n          ansible_port: 2200\n",
		"host_vars/w2.yml": "b: 5\nlist: [1, 2]\n",
	}},
	{"host at the top and later in a group leaves ungrouped; host:port only on first declaration", "hosts", map[string]string{
		"hosts": "top1\nweb1\n[web]\nweb1\n[db]\ndb-[a:c] ansible_port=2222\ndb-c:2200\ndb-d:2300\ndb-d:2400\n" +
			"db-e:2500 ansible_port=2600\n",
	}},
	{"YAML host:port declared twice", "inv.yaml", map[string]string{
		"inv.yaml": "all:\n  hosts:\n    a1:2200:\n  children:\n    g:\n      hosts:\n        a1:2300:\n        b1:\n          ansible_port: 10\n        b1:2400:\n",
	}},
	{"graph order: groups and hosts as the file lists them", "hosts", map[string]string{
		"hosts": "solo\n" + filterInventory + "[zeta]\nz2\nz1\n[alpha:children]\nzeta\n",
	}},
}

// TestResolvesLikeAnsibleInventory compares every host's vars with what
// the real ansible-inventory prints, when Ansible is installed (CI installs
// ansible-core for this; elsewhere the test skips).
func TestResolvesLikeAnsibleInventory(t *testing.T) {
	bin, err := exec.LookPath("ansible-inventory")
	if err != nil {
		t.Skip("ansible-inventory not installed (apt-get install ansible-core)")
	}
	for _, c := range crossCheckLayouts {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := project(t, c.files)
			path := filepath.Join(dir, c.main)
			cmd := exec.Command(bin, "-i", path, "--list")
			cmd.Env = append(cmd.Environ(), "ANSIBLE_LOCALHOST_WARNING=False", "ANSIBLE_INVENTORY_UNPARSED_WARNING=False")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ansible-inventory: %v", err)
			}
			var listed struct {
				Meta struct {
					HostVars map[string]map[string]any `json:"hostvars"`
				} `json:"_meta"`
			}
			if err := json.Unmarshal(out, &listed); err != nil {
				t.Fatalf("ansible-inventory output: %v", err)
			}
			var groups map[string]struct {
				Hosts    []string `json:"hosts"`
				Children []string `json:"children"`
			}
			json.Unmarshal(out, &groups)
			delete(groups, "_meta")
			inv, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			// herd inventory --list prints the same JSON document.
			var herdList strings.Builder
			if err := WriteList(inv, &herdList); err != nil {
				t.Fatal(err)
			}
			var a, h any
			json.Unmarshal(out, &a)
			json.Unmarshal([]byte(herdList.String()), &h)
			if !reflect.DeepEqual(a, h) {
				t.Errorf("--list differs:\n herd    %s\n ansible %s", herdList.String(), out)
			}
			if !strings.Contains(c.name, "graph") && !strings.Contains(c.name, "ungrouped") && !strings.Contains(c.name, "YAML inventory") {
				return // each ansible-inventory run costs seconds
			}
			graph := exec.Command(bin, "-i", path, "--graph")
			graph.Env = cmd.Env
			gout, err := graph.Output()
			if err != nil {
				t.Fatalf("ansible-inventory --graph: %v", err)
			}
			var herdGraph strings.Builder
			Graph(inv, &herdGraph)
			if herdGraph.String() != string(gout) {
				t.Errorf("--graph differs:\n herd\n%s\n ansible\n%s", herdGraph.String(), gout)
			}
			ansibleHosts := map[string]bool{}
			for _, g := range groups {
				for _, h := range g.Hosts {
					ansibleHosts[h] = true
				}
			}
			if got, want := len(inv.Hosts()), len(ansibleHosts); got != want {
				t.Fatalf("herd has %d hosts %v, Ansible %d", got, hostNames(inv.Hosts()), want)
			}
			for name, want := range groups {
				g := group(inv, name)
				if g == nil {
					t.Errorf("group %s: Ansible has it, herd not", name)
					continue
				}
				if name == "all" { // ansible-inventory never lists all's hosts
					g = &Group{Children: g.Children}
				}
				if !sameSet(g.Hosts, want.Hosts) || !sameSet(g.Children, want.Children) {
					t.Errorf("group %s:\n herd    hosts %v children %v\n ansible hosts %v children %v", name, g.Hosts, g.Children, want.Hosts, want.Children)
				}
			}
			for name, want := range listed.Meta.HostVars {
				h := mustHost(t, inv, name)
				got := jsonRoundTrip(t, h.Vars)
				if !reflect.DeepEqual(got, jsonRoundTrip(t, want)) {
					t.Errorf("%s:\n herd    %v\n ansible %v", name, got, want)
				}
			}
		})
	}
}

// jsonRoundTrip normalises numbers and containers the way JSON sees them.
func jsonRoundTrip(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

func sameSet(a, b []string) bool {
	x, y := slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(x, y)
}
