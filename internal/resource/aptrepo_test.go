package resource

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// The file part; apt-get update is tried on lab hosts (push's
// TestKindsAptRepository), never on this machine.
func TestAptRepositoryFile(t *testing.T) {
	old := aptSourcesDir
	aptSourcesDir = t.TempDir()
	t.Cleanup(func() { aptSourcesDir = old })
	path := filepath.Join(aptSourcesDir, "docker.list")
	env := testEnv(t)
	p := plan.Params{"uri": "https://download.docker.com/linux/debian", "suite": "bookworm", "components": []string{"stable"},
		"signed_by": "/etc/apt/keyrings/docker.asc", "arch": "amd64", "update": false}
	r := build(t, "apt_repository", "docker", p, nil)
	if c := mustCheck(t, r, env); c.Summary != "create "+path+", source written" {
		t.Errorf("Check %q", c.Summary)
	}
	applyIdempotent(t, r, env)
	want := "# managed by herd\ndeb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian bookworm stable\n"
	if got := readFile(t, path); got != want {
		t.Errorf("file %q", got)
	}
	// Hand edits are put back: herd owns the whole file.
	writeFile(t, path, want+"deb http://evil.example/ x main\n", 0o644)
	if c := mustCheck(t, r, env); c.Summary != "source written" {
		t.Errorf("after an edit: %q", c.Summary)
	}
	applyIdempotent(t, r, env)
	gone := build(t, "apt_repository", "docker", plan.Params{"state": "absent"}, nil)
	if c := mustCheck(t, gone, env); c.Summary != "source removed, file removed" {
		t.Errorf("absent: %q", c.Summary)
	}
	applyIdempotent(t, gone, env)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("file left")
	}
}

func TestAptRepositoryRejects(t *testing.T) {
	for _, tt := range []struct {
		name   string
		params plan.Params
		want   string
	}{
		{"../x", plan.Params{"uri": "u", "suite": "s", "components": []string{"main"}}, "the name becomes"},
		{"x", plan.Params{"uri": "u", "suite": "s"}, "any other needs them"},
		{"x", plan.Params{"uri": "u", "suite": "./", "components": []string{"main"}}, "takes no components"},
		{"x", plan.Params{"uri": "a b", "suite": "s", "components": []string{"main"}}, "one word"},
		{"x", plan.Params{"uri": "u", "suite": "s", "components": []string{"main"}, "signed_by": "k.asc"}, "absolute path"},
		{"x", plan.Params{"state": "absent", "uri": "u"}, "uri makes no sense"},
	} {
		_, err := New(plan.Resource{Kind: "apt_repository", Name: tt.name, Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
}
