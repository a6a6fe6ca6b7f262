package push

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-project/herd/policy"
)

func TestCheckHosts(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"inv.toml": "[groups.web.hosts]\n\"web1\" = \"\"\n\"web2\" = \"\"\n[groups.db.hosts]\n\"db1\" = \"\"\n",
		"site.star": `inv = inventory("inv.toml")
def main(host): noop("x")
role("web", hosts = inv.filter(groups = "web"), main = main)
role("none", hosts = inv.filter(groups = "cache"), main = main)
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pol, err := policy.Load(filepath.Join(dir, "site.star"), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		lim     Limit
		wantErr string
	}{
		{"no limit", Limit{}, ""},
		{"host pattern matching", Limit{Hosts: []string{"web*"}}, ""},
		{"every host pattern must match", Limit{Hosts: []string{"web1", "wbe2"}}, `--limit-hosts "wbe2" matches no host of any role`},
		{"db1 is in the inventory but in no role", Limit{Hosts: []string{"db1"}}, `--limit-hosts "db1" matches no host`},
		{"group pattern matching", Limit{Groups: []string{"w?b"}}, ""},
		{"group pattern not matching", Limit{Groups: []string{"dbs"}}, `--limit-groups "dbs" matches no group`},
		{"bad pattern", Limit{Hosts: []string{"web[1"}}, `--limit pattern "web[1": syntax error in pattern`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warnings, err := CheckHosts(pol, nil, tt.lim)
			if len(warnings) != 1 || !strings.Contains(warnings[0], `role "none" selects no hosts`) {
				t.Errorf("warnings %q, want one for role none", warnings)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
