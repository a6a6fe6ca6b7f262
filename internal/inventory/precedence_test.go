package inventory

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestPrecedence states Ansible's variable precedence one rule at a time;
// each case asks for the value of x on host h.
func TestPrecedence(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  any
	}{
		{"all is lowest", map[string]string{
			"hosts": "[web]\nh\n[all:vars]\nx=all\n[web:vars]\nx=web\n",
		}, "web"},
		{"child beats parent", map[string]string{
			"hosts": "[child]\nh\n[parent:children]\nchild\n[child:vars]\nx=child\n[parent:vars]\nx=parent\n",
		}, "child"},
		{"same depth: alphabetically later wins", map[string]string{
			"hosts": "[b]\nh\n[a]\nh\n[b:vars]\nx=b\n[a:vars]\nx=a\n",
		}, "b"},
		{"depth beats name", map[string]string{
			"hosts": "[z:children]\na\n[a]\nh\n[z:vars]\nx=z\n[a:vars]\nx=a\n",
		}, "a"},
		{"depth is the longest path from all", map[string]string{
			// c is at depth 1 under all and depth 3 under p1 → p2: its depth is 3,
			// deeper than d (depth 2), so c wins although d sorts later.
			"hosts": "[p1:children]\np2\n[p2:children]\nc\n[q:children]\nd\n[c]\nh\n[d]\nh\n[c:vars]\nx=c\n[d:vars]\nx=d\n",
		}, "c"},
		{"ansible_group_priority breaks ties before names", map[string]string{
			"hosts": "[a]\nh\n[b]\nh\n[a:vars]\nx=a\nansible_group_priority=10\n[b:vars]\nx=b\n",
		}, "a"},
		{"inline host var beats groups", map[string]string{
			"hosts": "[web]\nh x=host\n[web:vars]\nx=web\n",
		}, "host"},
		{"group_vars/all file beats inventory group vars", map[string]string{
			"hosts":              "[web]\nh\n[web:vars]\nx=web-inline\n",
			"group_vars/all.yml": "x: all-file\n",
		}, "all-file"},
		{"group_vars files apply by depth too", map[string]string{
			"hosts":                  "[parent:children]\nchild\n[child]\nh\n",
			"group_vars/child.yml":   "x: child\n",
			"group_vars/parent.yaml": "x: parent\n",
		}, "child"},
		{"inline host var beats group_vars files", map[string]string{
			"hosts":              "[web]\nh x=inline\n",
			"group_vars/web.yml": "x: file\n",
		}, "inline"},
		{"host_vars file beats inline host var", map[string]string{
			"hosts":           "[web]\nh x=inline\n",
			"host_vars/h.yml": "x: host-file\n",
		}, "host-file"},
		{"group_vars directory merges its files in order", map[string]string{
			"hosts":                     "[web]\nh\n",
			"group_vars/web/10-a.yml":   "x: first\n",
			"group_vars/web/20-b.yml":   "x: second\n",
			"group_vars/web/.hidden":    "x: hidden\n",
			"group_vars/web/notes.txt":  "x: text\n",
			"group_vars/web/30-c.yml~":  "x: backup\n",
			"group_vars/web/sub/40.yml": "x: nested\n",
		}, "nested"},
		{"bare and json vars files are read", map[string]string{
			"hosts":       "[web]\nh\n",
			"host_vars/h": "x: bare\n",
		}, "bare"},
		{"dicts replace, not merge", map[string]string{
			"hosts":              "[web]\nh\n",
			"group_vars/all.yml": "x: {a: 1, b: 2}\n",
			"group_vars/web.yml": "x: {a: 3}\n",
		}, map[string]any{"a": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := loadFiles(t, "hosts", tt.files)
			if got := mustHost(t, inv, "h").Vars["x"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("x = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestConnFromMagicVars(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  Conn
	}{
		{"ansible names", map[string]string{"hosts": "h ansible_host=10.0.0.1 ansible_port=2200 ansible_user=deploy " +
			"ansible_ssh_pass=s1 ansible_become_user=admin ansible_become_pass=s2 ansible_become_method=su " +
			"mitogen_via=jump ansible_ssh_private_key_file=~/.ssh/id_ed25519\n"},
			Conn{Address: "10.0.0.1", Port: 2200, User: "deploy", Password: "s1", SudoUser: "admin", SudoPassword: "s2",
				BecomeMethod: "su", Via: "jump", KeyFile: "~/.ssh/id_ed25519"}},
		{"herd names", map[string]string{"hosts": "h herd_host=h.example herd_port=22 herd_user=u herd_password=p " +
			"herd_sudo_user=root herd_sudo_password=q herd_become_method=doas herd_via=b herd_agent_dir=/opt/herd herd_ssh_key=/k\n"},
			Conn{Address: "h.example", Port: 22, User: "u", Password: "p", SudoUser: "root", SudoPassword: "q",
				BecomeMethod: "doas", Via: "b", AgentDir: "/opt/herd", KeyFile: "/k"}},
		{"older ansible aliases", map[string]string{"hosts": "h ansible_password=a ansible_sudo_pass=b\n"},
			Conn{Password: "a", SudoPassword: "b"}},
		{"herd beats ansible in the same layer", map[string]string{"hosts": "h ansible_user=a herd_user=b ansible_host=x herd_host=y\n"},
			Conn{User: "b", Address: "y"}},
		{"a higher layer's ansible name beats a lower layer's herd name", map[string]string{
			"hosts":              "[web]\nh ansible_user=inline\n",
			"group_vars/all.yml": "herd_user: from-group\nherd_port: '2022'\n",
		}, Conn{User: "inline", Port: 2022}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := loadFiles(t, "hosts", tt.files)
			if got := mustHost(t, inv, "h").Conn; got != tt.want {
				t.Errorf("Conn = %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestConnErrorsNameHostAndVariable(t *testing.T) {
	dir := project(t, map[string]string{"hosts": "[web]\nweb1 ansible_port=ssh\n"})
	_, err := Load(filepath.Join(dir, "hosts"))
	if err == nil || !strings.Contains(err.Error(), `host web1: ansible_port: "ssh" is not a port number`) {
		t.Errorf("error = %v", err)
	}
}

func TestVarsFileErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"YAML syntax error names file and line", map[string]string{
			"hosts":              "[web]\nh\n",
			"group_vars/web.yml": "a: 1\nb: 2\n  c: 3\n",
		}, "group_vars/web.yml:3: mapping values are not allowed in this context"},
		{"not a mapping", map[string]string{
			"hosts":           "[web]\nh\n",
			"host_vars/h.yml": "- a\n- b\n",
		}, "host_vars/h.yml:1: variables must be a mapping"},
		{"vault", map[string]string{
			"hosts":              "[web]\nh\n",
			"group_vars/all.yml": "$ANSIBLE_VAULT;1.1;AES256\n6162\n",
		}, "group_vars/all.yml:1: it is vault-encrypted and no vault password was given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, tt.files)
			_, err := Load(filepath.Join(dir, "hosts"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestAnsibleProjectLayout is a typical Ansible repository; the expected
// values are what `ansible-inventory -i inventory/production --host NAME`
// prints for it.
func TestAnsibleProjectLayout(t *testing.T) {
	inv := loadFiles(t, "inventory/production", map[string]string{
		"inventory/production": `# production
[web]
web1 ansible_host=10.0.0.11 http_port=8080
web2 ansible_host=10.0.0.12

[db]
db1 ansible_host=10.0.1.10 ansible_port=2222

[east:children]
web
db

[web:vars]
http_port=80
tier=frontend

[east:vars]
dc=east
tier=unknown
ntp=ntp.east
`,
		"inventory/group_vars/all.yml": "---\nntp: pool.ntp.org\nansible_user: deploy\ntier: base\n",
		"inventory/group_vars/web.yml": "http_port: 81\npackages:\n  - nginx\n",
		"inventory/host_vars/web1.yml": "http_port: 9090\nansible_user: admin\n",
	})
	tests := []struct {
		host   string
		vars   map[string]any
		groups []string
		conn   Conn
	}{
		{"web1", map[string]any{
			"ansible_host": "10.0.0.11", "http_port": 9090, "tier": "base", "dc": "east",
			"ntp": "pool.ntp.org", "ansible_user": "admin", "packages": []any{"nginx"},
		}, []string{"all", "east", "web"}, Conn{Address: "10.0.0.11", User: "admin"}},
		{"web2", map[string]any{
			"ansible_host": "10.0.0.12", "http_port": 81, "tier": "base", "dc": "east",
			"ntp": "pool.ntp.org", "ansible_user": "deploy", "packages": []any{"nginx"},
		}, []string{"all", "east", "web"}, Conn{Address: "10.0.0.12", User: "deploy"}},
		{"db1", map[string]any{
			"ansible_host": "10.0.1.10", "ansible_port": 2222, "tier": "base", "dc": "east",
			"ntp": "pool.ntp.org", "ansible_user": "deploy",
		}, []string{"all", "east", "db"}, Conn{Address: "10.0.1.10", Port: 2222, User: "deploy"}},
	}
	for _, tt := range tests {
		h := mustHost(t, inv, tt.host)
		if !reflect.DeepEqual(h.Vars, tt.vars) {
			t.Errorf("%s vars:\n got %#v\nwant %#v", tt.host, h.Vars, tt.vars)
		}
		if !reflect.DeepEqual(h.Groups, tt.groups) {
			t.Errorf("%s groups = %v, want %v", tt.host, h.Groups, tt.groups)
		}
		if h.Conn != tt.conn {
			t.Errorf("%s conn = %+v, want %+v", tt.host, h.Conn, tt.conn)
		}
	}
}
