package resource

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// build makes a resource through the same path the engine uses.
func build(t *testing.T, kind, name string, p plan.Params, blobs map[string][]byte) Resource {
	t.Helper()
	r, err := New(plan.Resource{Kind: kind, Name: name, Params: p}, blobs)
	if err != nil {
		t.Fatalf("New(%s %s): %v", kind, name, err)
	}
	return r
}

func testEnv(t *testing.T) *Env {
	return &Env{StateDir: t.TempDir(), Log: func(msg string) { t.Log(msg) }}
}

func mustCheck(t *testing.T, r Resource, env *Env) Change {
	t.Helper()
	c, err := r.Check(context.Background(), env)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return c
}

func mustApply(t *testing.T, r Resource, env *Env) Change {
	t.Helper()
	c, err := r.Apply(context.Background(), env)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return c
}

// applyIdempotent applies r and checks that a second Check finds nothing
// left to do, which is the promise every kind makes.
func applyIdempotent(t *testing.T, r Resource, env *Env) Change {
	t.Helper()
	c := mustApply(t, r, env)
	if again := mustCheck(t, r, env); again.Changed {
		t.Errorf("Check after Apply still reports a change: %q", again.Summary)
	}
	return c
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func statT(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func wantErrContaining(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func syscallUmask(m int) int { return syscall.Umask(m) }
