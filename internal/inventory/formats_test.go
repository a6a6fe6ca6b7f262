package inventory

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestYAMLInventory(t *testing.T) {
	inv := loadFiles(t, "inventory.yml", map[string]string{"inventory.yml": `
all:
  hosts:
    bastion.example.com:
      ansible_host: 192.0.2.1
  vars:
    ntp: pool.ntp.org
  children:
    web:
      hosts:
        web[1:2]:
          http_port: 8080
        web3:2201:
      vars:
        tier: frontend
        nested: {a: [1, 2]}
    east:
      children:
        web:
        db:
          hosts:
            db1:
`})
	if got, want := hostNames(inv.Hosts()), []string{"bastion.example.com", "web1", "web2", "web3", "db1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hosts = %v, want %v", got, want)
	}
	assertVars(t, mustHost(t, inv, "web2"), map[string]any{
		"http_port": 8080, "tier": "frontend", "ntp": "pool.ntp.org", "nested": map[string]any{"a": []any{1, 2}},
	})
	if c := mustHost(t, inv, "web3").Conn; c.Port != 2201 {
		t.Errorf("web3 port = %d, want 2201 from the name", c.Port)
	}
	if got, want := mustHost(t, inv, "web1").Groups, []string{"all", "east", "web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("web1 groups = %v, want %v", got, want)
	}
	if got := mustHost(t, inv, "bastion.example.com").Groups; !reflect.DeepEqual(got, []string{"all", "ungrouped"}) {
		t.Errorf("a host declared only under all is in %v, want [all ungrouped]", got)
	}
	if mustHost(t, inv, "bastion.example.com").Conn.Address != "192.0.2.1" {
		t.Error("bastion address not read")
	}
}

func TestYAMLInventoryWithoutExtension(t *testing.T) {
	inv := loadFiles(t, "production", map[string]string{"production": "# yaml, no extension\nall:\n  hosts:\n    a:\n"})
	if _, ok := inv.Host("a"); !ok {
		t.Fatalf("YAML content in a file without extension was not read as YAML: %v", hostNames(inv.Hosts()))
	}
}

func TestTOMLInventory(t *testing.T) {
	inv := loadFiles(t, "inventory.toml", map[string]string{"inventory.toml": `
[groups.webservers.hosts]
"web2.example.com" = ""
"web1.example.com" = "herd_host=10.0.0.1 dc=east motd='hello world' weight=3 enabled=true zip=007"
"web3.example.com" = { herd_port = 2222, tags = ["a", "b"] }

[groups.webservers.vars]
nginx_port = 80

[groups.dbservers.hosts]
"db1" = "herd_port=2222 herd_via=bastion"

[groups.backends]
children = ["webservers", "dbservers"]

[groups.backends.vars]
nginx_port = 8080
role = "backend"

[groups.all.vars]
ntp = "pool.ntp.org"

[hosts."web1.example.com"]
rack = 4
`})
	if got, want := hostNames(inv.Hosts()), []string{"web2.example.com", "web1.example.com", "web3.example.com", "db1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hosts in file order = %v, want %v", got, want)
	}
	web1 := mustHost(t, inv, "web1.example.com")
	assertVars(t, web1, map[string]any{
		"dc": "east", "motd": "hello world", "weight": 3, "enabled": true, "zip": "007",
		"nginx_port": 80, "role": "backend", "ntp": "pool.ntp.org", "rack": 4,
	})
	if web1.Conn.Address != "10.0.0.1" {
		t.Errorf("web1 address = %q", web1.Conn.Address)
	}
	if got, want := web1.Groups, []string{"all", "backends", "webservers"}; !reflect.DeepEqual(got, want) {
		t.Errorf("web1 groups = %v, want %v", got, want)
	}
	assertVars(t, mustHost(t, inv, "web3.example.com"), map[string]any{"tags": []any{"a", "b"}})
	if c := mustHost(t, inv, "db1").Conn; c.Port != 2222 || c.Via != "bastion" {
		t.Errorf("db1 conn = %+v", c)
	}
}

func TestTOMLErrors(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"syntax", "[groups.web.hosts]\n\"a\" = \"x\"\n\"b\" = = 1\n", "inventory.toml:3:"},
		{"unbalanced quote in host string", "[groups.web.hosts]\n\"a\" = \"k='v\"\n", `inventory.toml: groups."web".hosts."a": unbalanced quote`},
		{"unknown group key", "[groups.web]\nhost = [\"a\"]\n", `groups."web".host: unexpected key`},
		{"children not a list", "[groups.web]\nchildren = \"db\"\n", "must be a list of group names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, map[string]string{"inventory.toml": tt.content})
			_, err := Load(filepath.Join(dir, "inventory.toml"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDynamicInventory(t *testing.T) {
	inv := loadFiles(t, "inventory.sh", map[string]string{"inventory.sh": `#!/bin/sh
[ "$1" = "--list" ] || exit 2
cat <<'JSON'
{
  "web": {"hosts": ["w2", "w1"], "vars": {"port": 80, "ratio": 0.5}, "children": ["canary"]},
  "canary": ["w3"],
  "db": {"hosts": ["d1"]},
  "_meta": {"hostvars": {"w1": {"ansible_host": "10.1.0.1", "port": 8080}, "d1": {"herd_user": "pg"}}}
}
JSON
`})
	if got, want := hostNames(inv.Hosts()), []string{"w3", "d1", "w2", "w1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hosts = %v, want %v (groups by name, hosts in list order)", got, want)
	}
	assertVars(t, mustHost(t, inv, "w1"), map[string]any{"port": 8080, "ratio": 0.5})
	assertVars(t, mustHost(t, inv, "w3"), map[string]any{"port": 80})
	if got := mustHost(t, inv, "w1").Conn.Address; got != "10.1.0.1" {
		t.Errorf("w1 address %q", got)
	}
	if got := mustHost(t, inv, "d1").Conn.User; got != "pg" {
		t.Errorf("d1 user %q", got)
	}
	if got, want := mustHost(t, inv, "w3").Groups, []string{"all", "web", "canary"}; !reflect.DeepEqual(got, want) {
		t.Errorf("w3 groups = %v, want %v", got, want)
	}
}

func TestDynamicInventoryWithoutMetaAsksPerHost(t *testing.T) {
	inv := loadFiles(t, "inv.sh", map[string]string{"inv.sh": `#!/bin/sh
case "$1" in
--list) echo '{"web": ["a", "b"]}' ;;
--host) echo "{\"who\": \"$2\"}" ;;
esac
`})
	assertVars(t, mustHost(t, inv, "b"), map[string]any{"who": "b"})
}

func TestDynamicInventoryFailures(t *testing.T) {
	tests := []struct {
		name, script string
		want         []string
	}{
		{"exit status with stderr", "#!/bin/sh\necho 'AWS credentials not found' >&2\nexit 3\n",
			[]string{"inv.sh --list failed: exit status 3", "stderr:\nAWS credentials not found"}},
		{"not JSON", "#!/bin/sh\necho 'web1 web2'\n", []string{"inv.sh --list: output is not a JSON object"}},
		{"bad group", "#!/bin/sh\necho '{\"web\": 42}'\n", []string{"group web"}},
		{"timeout", "#!/bin/sh\necho starting >&2\nsleep 30\n", []string{"timed out after", "stderr:\nstarting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, map[string]string{"inv.sh": tt.script})
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := LoadContext(ctx, filepath.Join(dir, "inv.sh"))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("a timed-out script held Load for %s", time.Since(start))
			}
		})
	}
}

func TestExecutableDataFileIsNotRun(t *testing.T) {
	// An executable bit without a #! line is an accident of the file system,
	// not a dynamic inventory.
	inv := loadFiles(t, "hosts.sh", map[string]string{"hosts.sh": "[web]\nweb1\n"})
	if _, ok := inv.Host("web1"); !ok {
		t.Errorf("executable INI file without #! was not read as INI: %v", hostNames(inv.Hosts()))
	}
}

func TestYAMLInventoryErrors(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"syntax", "all:\n  hosts:\n    a: 1\n  b: 2\n c: 3\n", "inventory.yml:4: did not find expected key"},
		{"unknown key", "all:\n  children:\n    web:\n      host:\n        a:\n", `inventory.yml:4: group web: unexpected key "host"`},
		{"hosts as list", "web:\n  hosts:\n    - a\n", "inventory.yml:3: group web: hosts must be a mapping"},
		{"host vars not a mapping", "web:\n  hosts:\n    a: 5\n", "inventory.yml:3: variables must be a mapping"},
		{"top level list", "- all\n", "inventory.yml:1: an inventory must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, map[string]string{"inventory.yml": tt.content})
			_, err := Load(filepath.Join(dir, "inventory.yml"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
