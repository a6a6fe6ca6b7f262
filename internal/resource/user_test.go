package resource

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

const (
	testHash   = "$6$rounds=5000$salt$QWERTYqwerty1234"
	testPasswd = "root:x:0:0:root:/root:/bin/bash\n" +
		"alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
	testGroups = "root:x:0:\nalice:x:1000:\nsudo:x:27:alice\nadm:x:4:alice\nstaff:x:50:\nbob:x:1001:\n"
	testShadow = "root:*:19000:0:99999:7:::\nalice:" + testHash + ":19000:0:99999:7:::\n"
)

type userCase struct {
	name    string
	user    string
	params  plan.Params
	shadow  string // "" leaves /etc/shadow out (unreadable)
	summary string
	argv    [][]string
	stdin   []string
	wantErr string
}

func TestUserPlan(t *testing.T) {
	tests := []userCase{
		{name: "existing user, nothing managed", user: "alice", params: plan.Params{}},
		{name: "everything already as wanted", user: "alice", shadow: testShadow, params: plan.Params{
			"uid": 1000, "group": "alice", "groups": []string{"sudo", "adm", "sudo"},
			"home": "/home/alice", "shell": "/bin/sh", "password_hash": testHash,
		}},
		{name: "primary group by number", user: "alice", params: plan.Params{"group": "1000"}},
		{name: "shell and one more group", user: "alice", params: plan.Params{"shell": "/bin/bash", "groups": []string{"adm", "sudo", "staff"}},
			summary: "groups +staff, shell /bin/sh→/bin/bash",
			argv:    [][]string{{"usermod", "-G", "adm,staff,sudo", "-s", "/bin/bash", "alice"}}},
		{name: "groups is an exact set", user: "alice", params: plan.Params{"groups": []string{"staff"}},
			summary: "groups +staff -adm -sudo",
			argv:    [][]string{{"usermod", "-G", "staff", "alice"}}},
		{name: "empty groups removes all", user: "alice", params: plan.Params{"groups": []string{}},
			summary: "groups -adm -sudo",
			argv:    [][]string{{"usermod", "-G", "", "alice"}}},
		{name: "uid, primary group, home", user: "alice", params: plan.Params{"uid": 1200, "group": "staff", "home": "/srv/alice"},
			summary: "uid 1000→1200, group alice→staff, home /home/alice→/srv/alice",
			argv:    [][]string{{"usermod", "-u", "1200", "-g", "staff", "-d", "/srv/alice", "alice"}}},
		{name: "primary group not created yet is a change, not an error", user: "alice", params: plan.Params{"group": "later"},
			summary: "group alice→later", argv: [][]string{{"usermod", "-g", "later", "alice"}}},
		{name: "new password goes through chpasswd stdin", user: "alice", shadow: testShadow,
			params:  plan.Params{"password_hash": "$6$other$hash"},
			summary: "password changed",
			argv:    [][]string{{"chpasswd", "-e"}}, stdin: []string{"alice:$6$other$hash\n"}},
		{name: "unreadable shadow: password not compared", user: "alice", params: plan.Params{"password_hash": "$6$other$hash"}},
		{name: "create with everything", user: "carol", params: plan.Params{
			"uid": 1300, "group": "staff", "groups": []string{"sudo", "adm"}, "home": "/srv/carol",
			"shell": "/bin/bash", "system": true, "password_hash": testHash,
		}, summary: "create, password set", argv: [][]string{
			{"useradd", "-u", "1300", "-g", "staff", "-G", "adm,sudo", "-d", "/srv/carol", "-s", "/bin/bash", "-r", "-m", "carol"},
			{"chpasswd", "-e"},
		}, stdin: []string{"", "carol:" + testHash + "\n"}},
		{name: "create without home", user: "carol", params: plan.Params{"create_home": false},
			summary: "create", argv: [][]string{{"useradd", "-M", "carol"}}},
		{name: "create joins an existing group of the same name", user: "bob", params: plan.Params{},
			summary: "create", argv: [][]string{{"useradd", "-g", "bob", "-m", "bob"}}},
		{name: "remove", user: "alice", params: plan.Params{"state": "absent"},
			summary: "remove", argv: [][]string{{"userdel", "alice"}}},
		{name: "remove with home", user: "alice", params: plan.Params{"state": "absent", "remove_home": true},
			summary: "remove", argv: [][]string{{"userdel", "-r", "alice"}}},
		{name: "already absent", user: "carol", params: plan.Params{"state": "absent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := build(t, "user", tt.user, tt.params, nil).(*account)
			u.etc = etcFiles(t, testPasswd, testGroups, tt.shadow)
			c, tools, err := u.reconcile()
			if tt.wantErr != "" {
				wantErrContaining(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if check := mustCheck(t, u, nil); check != c {
				t.Errorf("Check = %+v, plan = %+v", check, c)
			}
			if c.Changed != (tt.summary != "") || c.Summary != tt.summary {
				t.Errorf("change = %+v, want summary %q", c, tt.summary)
			}
			var argv [][]string
			var stdin []string
			for _, tl := range tools {
				argv = append(argv, tl.argv)
				stdin = append(stdin, tl.stdin)
			}
			if !reflect.DeepEqual(argv, tt.argv) {
				t.Errorf("commands = %q\nwant       %q", argv, tt.argv)
			}
			if tt.stdin != nil && !reflect.DeepEqual(stdin, tt.stdin) {
				t.Errorf("stdin = %q, want %q", stdin, tt.stdin)
			}
			for _, a := range argv {
				for _, s := range a {
					if strings.Contains(s, "$6$") {
						t.Errorf("a password hash is in argv: %q", a)
					}
				}
			}
			if strings.Contains(c.Summary, "$6$") {
				t.Errorf("a password hash is in the summary %q", c.Summary)
			}
		})
	}
}

func TestUserRejectsBadParams(t *testing.T) {
	tests := []struct {
		user   string
		params plan.Params
		want   string
	}{
		{"a:b", plan.Params{}, "not a valid name"},
		{"u", plan.Params{"uid": -1}, "uid -1 is out of range"},
		{"u", plan.Params{"shell": "bash"}, "shell must be an absolute path"},
		{"u", plan.Params{"home": "/home/a:b"}, "home must be an absolute path without colons"},
		{"u", plan.Params{"groups": []string{"ok", "bad group"}}, "groups: group \"bad group\""},
		{"u", plan.Params{"group": "-g"}, "not a valid name"},
		{"u", plan.Params{"remove_home": true}, "remove_home only makes sense"},
		{"u", plan.Params{"state": "absent", "shell": "/bin/sh"}, "shell makes no sense"},
		{"u", plan.Params{"password_hash": ""}, "password_hash must be a non-empty"},
	}
	for _, tt := range tests {
		_, err := New(plan.Resource{Kind: "user", Name: tt.user, Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
	// A malformed hash is rejected without being echoed.
	const leaky = "$6$abc:injected\nroot::0:0"
	_, err := New(plan.Resource{Kind: "user", Name: "u", Params: plan.Params{"password_hash": leaky}}, nil)
	wantErrContaining(t, err, "value not shown")
	if err != nil && strings.Contains(err.Error(), "abc") {
		t.Errorf("error quotes the hash: %v", err)
	}
}

// A failing chpasswd's error and output never carry the hash, even if the
// tool echoes its input.
func TestChpasswdHidesHashFromErrors(t *testing.T) {
	u := build(t, "user", "alice", plan.Params{"password_hash": testHash}, nil).(*account)
	tl := u.chpasswd()
	tl.argv = []string{"/bin/sh", "-c", `read l; echo "chpasswd: line 1: bad $l" >&2; exit 1`}
	var c Change
	err := runAll(context.Background(), &c, tl)
	wantErrContaining(t, err, "alice:<hidden>")
	if strings.Contains(err.Error()+c.Stderr+c.Stdout, testHash) {
		t.Errorf("hash leaked: err=%v stderr=%q", err, c.Stderr)
	}
}
