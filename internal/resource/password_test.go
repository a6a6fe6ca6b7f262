package resource

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

func TestPasswordGeneratedOnceAndKept(t *testing.T) {
	env := testEnv(t)
	r := build(t, "password", "db", plan.Params{"length": int64(32)}, nil)
	if _, ok := r.(Secret); !ok || !r.(Secret).SecretOutputs() {
		t.Fatal("password must mark its outputs secret")
	}
	c := mustCheck(t, r, env)
	if !c.Changed || c.Summary != "would generate" {
		t.Errorf("Check = %+v", c)
	}
	if v := r.(Sender).Outputs()["value"]; v != PasswordPlaceholder {
		t.Errorf("check-mode value = %q, want the placeholder", v)
	}
	file := filepath.Join(env.StateDir, "passwords", "db")
	if _, err := os.Lstat(file); !os.IsNotExist(err) {
		t.Fatal("Check wrote the password")
	}

	applyIdempotent(t, r, env)
	v := r.(Sender).Outputs()["value"]
	if !regexp.MustCompile(`^[A-Za-z0-9]{32}$`).MatchString(v) {
		t.Errorf("value %q is not 32 alphanumerics", v)
	}
	if got := strings.TrimSpace(readFile(t, file)); got != v {
		t.Errorf("kept %q, outputs %q", got, v)
	}
	for p, want := range map[string]os.FileMode{file: 0o600, filepath.Dir(file): os.ModeDir | 0o700} {
		if fi, _ := os.Lstat(p); fi.Mode() != want {
			t.Errorf("%s mode = %v, want %v", p, fi.Mode(), want)
		}
	}

	// A new run (new resource, same name) reads it back and never regenerates.
	r2 := build(t, "password", "db", plan.Params{"length": int64(32)}, nil)
	if c := mustCheck(t, r2, env); c.Changed {
		t.Errorf("second run wants to change: %q", c.Summary)
	}
	if c := mustApply(t, r2, env); c.Changed {
		t.Errorf("second Apply regenerated")
	}
	if got := r2.(Sender).Outputs()["value"]; got != v {
		t.Errorf("second run value %q, want %q", got, v)
	}
}

func TestPasswordCustomPathAndDistinctValues(t *testing.T) {
	dir := t.TempDir()
	env := testEnv(t)
	seen := map[string]bool{}
	for _, name := range []string{"a", "b", "c"} {
		r := build(t, "password", name, plan.Params{"path": filepath.Join(dir, "sub", name)}, nil)
		mustApply(t, r, env)
		v := r.(Sender).Outputs()["value"]
		if len(v) != defaultPasswordLength || seen[v] {
			t.Errorf("value %q: wrong length or repeated", v)
		}
		seen[v] = true
	}
}

func TestPasswordErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		params plan.Params
		want   string
	}{
		{"x", plan.Params{"length": int64(0)}, "out of range"},
		{"../etc/shadow", plan.Params{}, "plain name"},
		{"x", plan.Params{"path": "rel/x"}, "absolute"},
	} {
		_, err := New(plan.Resource{Kind: "password", Name: tt.name, Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
	env := testEnv(t)
	empty := filepath.Join(t.TempDir(), "empty")
	writeFile(t, empty, "", 0o600)
	r := build(t, "password", "e", plan.Params{"path": empty}, nil)
	_, err := r.Check(t.Context(), env)
	wantErrContaining(t, err, empty, "is empty")
}

func TestNoop(t *testing.T) {
	var logged []string
	env := &Env{Log: func(m string) { logged = append(logged, m) }}
	for _, tt := range []struct {
		params plan.Params
		want   string
	}{
		{plan.Params{}, "refreshed hub"},
		{plan.Params{"message": "config changed"}, "config changed"},
	} {
		logged = nil
		r := build(t, "noop", "hub", tt.params, nil)
		if c := mustCheck(t, r, env); c.Changed {
			t.Error("noop Check reports a change")
		}
		c, err := r.(Refresher).Refresh(t.Context(), env)
		if err != nil || !c.Changed || len(logged) != 1 || logged[0] != tt.want {
			t.Errorf("Refresh = %+v %v, logged %q, want %q", c, err, logged, tt.want)
		}
	}
}
