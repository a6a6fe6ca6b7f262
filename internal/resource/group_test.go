package resource

import (
	"context"
	"reflect"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

const testGroupFile = "root:x:0:\nsudo:x:27:alice\nops:x:1500:\n"

// groupPlan builds a group resource reading testGroupFile and returns what
// it found and the commands it would run.
func groupPlan(t *testing.T, name string, p plan.Params) (Change, [][]string, error) {
	t.Helper()
	g := build(t, "group", name, p, nil).(*group)
	g.etc = etcFiles(t, "root:x:0:0::/root:/bin/sh\n", testGroupFile, "")
	c, tools, err := g.reconcile()
	if check, cerr := g.Check(context.Background(), nil); cerr == nil && check != c {
		t.Errorf("Check = %+v, plan = %+v", check, c)
	}
	var argvs [][]string
	for _, tl := range tools {
		argvs = append(argvs, tl.argv)
	}
	return c, argvs, err
}

func TestGroupPlan(t *testing.T) {
	tests := []struct {
		name    string
		group   string
		params  plan.Params
		summary string
		argv    [][]string
		wantErr string
	}{
		{name: "existing group, nothing managed", group: "ops", params: plan.Params{}},
		{name: "existing group with the wanted gid", group: "ops", params: plan.Params{"gid": 1500}},
		{name: "create with defaults", group: "web", params: plan.Params{},
			summary: "create", argv: [][]string{{"groupadd", "web"}}},
		{name: "create a system group with a gid", group: "web", params: plan.Params{"gid": 1600, "system": true},
			summary: "create", argv: [][]string{{"groupadd", "-g", "1600", "-r", "web"}}},
		{name: "system is ignored on an existing group", group: "ops", params: plan.Params{"system": true}},
		{name: "change gid", group: "ops", params: plan.Params{"gid": 1501},
			summary: "gid 1500→1501", argv: [][]string{{"groupmod", "-g", "1501", "ops"}}},
		{name: "gid taken by another group", group: "ops", params: plan.Params{"gid": 27},
			wantErr: "group ops: cannot change gid to 27: already used by group sudo"},
		{name: "create with a taken gid", group: "web", params: plan.Params{"gid": 0},
			wantErr: "gid 0 is already used by group root"},
		{name: "remove", group: "ops", params: plan.Params{"state": "absent"},
			summary: "remove", argv: [][]string{{"groupdel", "ops"}}},
		{name: "already absent", group: "web", params: plan.Params{"state": "absent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, argv, err := groupPlan(t, tt.group, tt.params)
			if tt.wantErr != "" {
				wantErrContaining(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Changed != (tt.summary != "") || c.Summary != tt.summary {
				t.Errorf("change = %+v, want summary %q", c, tt.summary)
			}
			if !reflect.DeepEqual(argv, tt.argv) {
				t.Errorf("commands = %q, want %q", argv, tt.argv)
			}
		})
	}
}

func TestGroupRejectsBadParams(t *testing.T) {
	tests := []struct {
		name   string
		params plan.Params
		want   string
	}{
		{"bad:name", plan.Params{}, "not a valid name"},
		{"g", plan.Params{"gid": -5}, "gid -5 is out of range"},
		{"g", plan.Params{"state": "gone"}, "neither"},
		{"g", plan.Params{"state": "absent", "gid": 5}, "gid makes no sense"},
		{"g", plan.Params{"members": []string{"a"}}, `unknown argument "members"`},
	}
	for _, tt := range tests {
		_, err := New(plan.Resource{Kind: "group", Name: tt.name, Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
}

func TestMissingToolIsNamed(t *testing.T) {
	_, _, err := tool{argv: []string{"herd-no-such-groupadd"}, hint: shadowHint}.run(context.Background())
	wantErrContaining(t, err, "herd-no-such-groupadd is not installed", "shadow tools")
}

func TestToolScrubsSecretAndQuotesStderr(t *testing.T) {
	const secret = "$6$verysecret"
	_, stderr, err := tool{
		argv:   []string{"/bin/sh", "-c", `read line; echo "bad line: $line" >&2; exit 3`},
		stdin:  "alice:" + secret + "\n",
		secret: secret,
	}.run(context.Background())
	wantErrContaining(t, err, "exited with code 3", "bad line: alice:<hidden>")
	if stderr != "bad line: alice:<hidden>\n" {
		t.Errorf("stderr = %q", stderr)
	}
}
