package resource

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// gitRepo makes a bare repository with a branch "main" and a tag "v1",
// and returns it, the commit of v1 and a function adding a commit to main.
func gitRepo(t *testing.T) (bare, v1 string, commit func(msg string) string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	bare, work := filepath.Join(dir, "repo.git"), filepath.Join(dir, "work")
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(dir, "init", "-q", "--bare", "-b", "main", bare)
	run(dir, "init", "-q", "-b", "main", work)
	commit = func(msg string) string {
		os.WriteFile(filepath.Join(work, "file"), []byte(msg+"\n"), 0o644)
		run(work, "add", "file")
		run(work, "commit", "-q", "-m", msg)
		run(work, "push", "-q", bare, "main")
		return run(work, "rev-parse", "HEAD")
	}
	v1 = commit("one")
	run(work, "tag", "-a", "-m", "v1", "v1")
	run(work, "push", "-q", bare, "v1")
	return bare, v1, commit
}

func TestGit(t *testing.T) {
	bare, v1, commit := gitRepo(t)
	dest := filepath.Join(t.TempDir(), "app")
	env := testEnv(t)
	head := func() string {
		b, _ := exec.Command("git", "-C", dest, "rev-parse", "HEAD").Output()
		return strings.TrimSpace(string(b))
	}

	r := build(t, "git", dest, plan.Params{"repo": bare, "version": "main"}, nil)
	if c := mustCheck(t, r, env); c.Summary != "clone "+bare+" at "+v1[:12] {
		t.Errorf("first check %q", c.Summary)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatal("check cloned")
	}
	applyIdempotent(t, r, env)
	if head() != v1 || readFile(t, filepath.Join(dest, "file")) != "one\n" {
		t.Fatalf("after clone HEAD %s", head())
	}

	two := commit("two")
	if c := mustCheck(t, r, env); c.Summary != v1[:12]+"→"+two[:12] {
		t.Errorf("moved branch: %q", c.Summary)
	}
	applyIdempotent(t, r, env)
	if head() != two {
		t.Fatalf("HEAD %s, want %s", head(), two)
	}

	// A tag resolves to its commit, not the tag object.
	tag := build(t, "git", dest, plan.Params{"repo": bare, "version": "v1"}, nil)
	applyIdempotent(t, tag, env)
	if head() != v1 {
		t.Fatalf("tag: HEAD %s", head())
	}

	// Local changes stop the resource, unless force.
	os.WriteFile(filepath.Join(dest, "file"), []byte("edited\n"), 0o644)
	_, err := r.Check(t.Context(), env)
	wantErrContaining(t, err, "local changes", "force=True")
	forced := build(t, "git", dest, plan.Params{"repo": bare, "version": "main", "force": true}, nil)
	if c := mustCheck(t, forced, env); c.Summary != v1[:12]+"→"+two[:12]+", local changes discarded" {
		t.Errorf("forced: %q", c.Summary)
	}
	applyIdempotent(t, forced, env)
	if readFile(t, filepath.Join(dest, "file")) != "two\n" {
		t.Error("force did not discard the edit")
	}

	_, err = build(t, "git", filepath.Join(t.TempDir(), "x"), plan.Params{"repo": bare, "version": "nope"}, nil).Check(t.Context(), env)
	wantErrContaining(t, err, `has no ref "nope"`)
}

func TestGitRejects(t *testing.T) {
	for _, p := range []plan.Params{{"repo": "--upload-pack=evil"}, {"repo": "/r", "version": "-x"}, {"repo": ""}} {
		_, err := New(plan.Resource{Kind: "git", Name: "/srv/x", Params: p}, nil)
		wantErrContaining(t, err, "not start with '-'")
	}
}
