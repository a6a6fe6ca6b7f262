package push

import (
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// meshPlan is one host's plan of role "r": exec:gen, a file using what
// host collects, and export "k". genCollects makes the command itself use
// the collected values (so the export depends on the collect); later marks
// the collected hosts as in a later serial batch.
func meshPlan(host string, from []string, genCollects, later bool) *plan.Plan {
	var xch []plan.Part
	for _, h := range from {
		xch = append(xch, plan.Part{Xch: &plan.Collected{Host: h, Name: "k", Role: "r", Later: later}})
	}
	gen := plan.Resource{ID: "exec:gen", Kind: "exec", Name: "gen", Pos: "site.star:3:9"}
	file := plan.Resource{ID: "file:/etc/peers", Kind: "file", Name: "/etc/peers", Pos: "site.star:6:9"}
	if genCollects {
		gen.Bind = []plan.Binding{{Param: "command", Parts: append([]plan.Part{{Lit: "echo "}}, xch...)}}
	} else {
		file.Bind = []plan.Binding{{Param: "content", Parts: xch}}
	}
	return &plan.Plan{Role: "r", Host: host, Resources: []plan.Resource{gen, file},
		Exports: []plan.Export{{Name: "k", Pos: "site.star:4:11", Parts: []plan.Part{{From: "exec:gen", Field: "stdout"}}}}}
}

func TestWaitCycle(t *testing.T) {
	both := []string{"a", "b"}
	for _, tc := range []struct {
		name  string
		plans map[string]*plan.Plan
		want  string // "" for no cycle
		hosts string
	}{
		{"keypair: export does not depend on the collect",
			map[string]*plan.Plan{"a": meshPlan("a", both, false, false), "b": meshPlan("b", both, false, false)}, "", ""},
		{"two hosts' exports depend on each other's",
			map[string]*plan.Plan{"a": meshPlan("a", []string{"b"}, true, false), "b": meshPlan("b", []string{"a"}, true, false)},
			"role r: hosts would wait for each other's exports until collect_timeout: a:exec:gen (site.star:3:9) → b:export k (site.star:4:11) → b:exec:gen (site.star:3:9) → a:export k (site.star:4:11) → a:exec:gen (site.star:3:9)",
			"a,b"},
		{"one host collects its own export before making it",
			map[string]*plan.Plan{"a": meshPlan("a", []string{"a"}, true, false)},
			"a:exec:gen (site.star:3:9) → a:export k (site.star:4:11) → a:exec:gen", "a"},
		{"the other host runs in a later batch: no wait, no cycle",
			map[string]*plan.Plan{"a": meshPlan("a", []string{"b"}, true, true), "b": meshPlan("b", []string{"a"}, true, false)}, "", ""},
		{"the other host's export is literal: nothing to wait for",
			map[string]*plan.Plan{"a": meshPlan("a", []string{"b"}, true, false),
				"b": {Role: "r", Host: "b", Exports: []plan.Export{{Name: "k", Parts: []plan.Part{{Lit: "v"}}}}}}, "", ""},
		{"through after= and notify",
			map[string]*plan.Plan{
				"a": {Role: "r", Host: "a", Resources: []plan.Resource{
					{ID: "file:x", Pos: "p:1:1", Bind: []plan.Binding{{Param: "content", Parts: []plan.Part{{Xch: &plan.Collected{Host: "b", Name: "k", Role: "r"}}}}}, Notify: []string{"exec:y"}},
					{ID: "exec:y", Pos: "p:2:1"},
					{ID: "exec:z", Pos: "p:3:1", After: []string{"exec:y"}}},
					Exports: []plan.Export{{Name: "k", Parts: []plan.Part{{From: "exec:z", Field: "stdout"}}}}},
				"b": meshPlan("b", []string{"a"}, true, false)},
			"a:file:x (p:1:1) → b:export k (site.star:4:11) → b:exec:gen (site.star:3:9) → a:export k → a:exec:z (p:3:1) → a:exec:y (p:2:1) → a:file:x (p:1:1)", "a,b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := waitCycle("r", tc.plans)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v\nwant one line with %s", err, tc.want)
			}
			if got := strings.Join(in, ","); got != tc.hosts {
				t.Fatalf("hosts %s, want %s", got, tc.hosts)
			}
		})
	}
}
