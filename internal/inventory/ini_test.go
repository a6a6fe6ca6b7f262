package inventory

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestINIInventory(t *testing.T) {
	inv := loadFiles(t, "hosts", map[string]string{"hosts": `
# a comment
; another comment
lonely.example.com

[web]
web[01:03].example.com http_port=8080
proxy:2222 ansible_host=10.0.0.9   # trailing comment
web01.example.com rack=7

[db]
db-[a:c] opts="--fast --safe" backup='True' list='[1, "two"]' dict="{'k': 'v'}"

[web:vars]
flag=True
lower=true
count=010
path=/srv/www # not a comment in :vars

[prod:children]
web
db

[all:vars]
ntp=pool.ntp.org
`})
	if got, want := hostNames(inv.Hosts()), []string{"lonely.example.com", "web01.example.com", "web02.example.com", "web03.example.com", "proxy", "db-a", "db-b", "db-c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hosts in order: %v, want %v", got, want)
	}
	assertVars(t, mustHost(t, inv, "web01.example.com"), map[string]any{
		"http_port": 8080, "rack": 7, "flag": true, "lower": "true", "count": "010",
		"path": "/srv/www # not a comment in :vars", "ntp": "pool.ntp.org",
	})
	proxy := mustHost(t, inv, "proxy")
	assertVars(t, proxy, map[string]any{"ansible_port": 2222, "ansible_host": "10.0.0.9"})
	if proxy.Conn.Port != 2222 || proxy.Conn.Address != "10.0.0.9" {
		t.Errorf("proxy conn = %+v", proxy.Conn)
	}
	assertVars(t, mustHost(t, inv, "db-b"), map[string]any{
		"opts": "--fast --safe", "backup": true, "list": []any{1, "two"}, "dict": map[string]any{"k": "v"},
	})
	if got, want := mustHost(t, inv, "db-a").Groups, []string{"all", "prod", "db"}; !reflect.DeepEqual(got, want) {
		t.Errorf("db-a groups = %v, want %v", got, want)
	}
	if got := mustHost(t, inv, "lonely.example.com").Groups; !reflect.DeepEqual(got, []string{"all", "ungrouped"}) {
		t.Errorf("a host outside sections is in %v, want [all ungrouped]", got)
	}
	if g := group(inv, "prod"); g == nil || !reflect.DeepEqual(g.Children, []string{"web", "db"}) || g.Depth != 1 {
		t.Errorf("group prod = %+v", g)
	}
	if g := group(inv, "web"); g == nil || g.Depth != 2 {
		t.Errorf("group web = %+v, want depth 2", g)
	}
}

func TestINIErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"unbalanced quote", "[web]\nweb1\nweb2 motd=\"hello\n", "hosts:3: host definition: unbalanced quote"},
		{"bad section suffix", "[web]\n\n[web:hosts]\n", "hosts:3: invalid section [web:hosts]"},
		{"malformed header", "[web\n", "hosts:1: invalid section header"},
		{"var without value", "[web]\nweb1 port\n", `hosts:2: expected key=value after host web1, got "port"`},
		{"vars line without =", "[web]\nw\n[web:vars]\nnonsense\n", `hosts:4: expected key=value in [web:vars]`},
		{"vars for undefined group", "[web]\nw\n[wbe:vars]\nx=1\n", "hosts:3: section [wbe:vars] is for a group that is never defined"},
		{"bad range", "[web]\nweb[3:1]\n", "hosts:2: host pattern \"web[3:1]\": range start 3 is after its end 1"},
		{"cycle", "[a:children]\nb\n[b:children]\na\n", "groups form a cycle: a → b → a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, map[string]string{"hosts": tt.content})
			_, err := Load(filepath.Join(dir, "hosts"))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestINIValueTyping(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"80", 80},
		{"-3", -3},
		{"0", 0},
		{"0x1F", 31},
		{"1.5", 1.5},
		{"010", "010"},
		{"True", true},
		{"False", false},
		{"None", nil},
		{"true", "true"},
		{"yes", "yes"},
		{"10.0.0.1", "10.0.0.1"},
		{"'quoted'", "quoted"},
		{`"a\tb"`, "a\tb"},
		{"[1, 'a', [True]]", []any{1, "a", []any{true}}},
		{"(1, 2)", []any{1, 2}},
		{"{'a': 1, 2: 'b'}", map[string]any{"a": 1, "2": "b"}},
		{"[1, 2", "[1, 2"},
		{"a b", "a b"},
		{"", ""},
		{"99999999999999999999", "99999999999999999999"},
	}
	for _, tt := range tests {
		if got := iniValue(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("iniValue(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestShellSplit(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{`web1 a=1 b="x y" c='p q'`, []string{"web1", "a=1", "b=x y", "c=p q"}, false},
		{`h a=b#c d=e`, []string{"h", "a=b"}, false},
		{`h a="b#c"`, []string{"h", "a=b#c"}, false},
		{`h a=b\ c`, []string{"h", "a=b c"}, false},
		{`h a="say \"hi\""`, []string{"h", `a=say "hi"`}, false},
		{`h a='it''s'`, []string{"h", "a=its"}, false},
		{`h a="open`, nil, true},
		{`h a='open`, nil, true},
		{`h a=\`, nil, true},
	}
	for _, tt := range tests {
		got, err := shellSplit(tt.in, true)
		if (err != nil) != tt.wantErr || !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("shellSplit(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestExpandHosts(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"web1", []string{"web1"}, ""},
		{"web[1:3]", []string{"web1", "web2", "web3"}, ""},
		{"web[01:03].example.com", []string{"web01.example.com", "web02.example.com", "web03.example.com"}, ""},
		{"web[08:10]", []string{"web08", "web09", "web10"}, ""},
		{"db-[a:c]", []string{"db-a", "db-b", "db-c"}, ""},
		{"n[0:6:3]", []string{"n0", "n3", "n6"}, ""},
		{"r[1:2]-[a:b]", []string{"r1-a", "r1-b", "r2-a", "r2-b"}, ""},
		{"[:2]x", []string{"0x", "1x", "2x"}, ""},
		{"odd[abc]", []string{"odd[abc]"}, ""},
		{"web[1:", nil, "missing ]"},
		{"web[a:3]", nil, "must be numbers or single letters"},
		{"web[1:3:0]", nil, "step"},
		{"web[1:99999999]", nil, "more than"},
	}
	for _, tt := range tests {
		got, err := expandHosts(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("expandHosts(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("expandHosts(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestSplitHostPort(t *testing.T) {
	tests := []struct {
		in      string
		host    string
		port    int
		hasPort bool
	}{
		{"web1:2222", "web1", 2222, true},
		{"web[1:3]:22", "web[1:3]", 22, true},
		{"web[1:3]", "web[1:3]", 0, false},
		{"fe80::1", "fe80::1", 0, false},
		{"web1:http", "web1:http", 0, false},
	}
	for _, tt := range tests {
		h, p, ok := splitHostPort(tt.in)
		if h != tt.host || p != tt.port || ok != tt.hasPort {
			t.Errorf("splitHostPort(%q) = %q, %d, %v", tt.in, h, p, ok)
		}
	}
}
