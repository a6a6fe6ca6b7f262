package resource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

const (
	keyA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIHxxhTVxVBJyrkCX1TEf13/vRGqXKXUqnJYJdJHAc2N alice@a"
	keyB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBc8kt0/qNtyxTdfh8cG9GgF0fzrgyRb+Ch0mHo3CQkq bob@b"
	keyC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDWJ0tkUdUwuEzCBD0hZj7tMmXeXxiLzqfyjM9/9KYF1 carol@c"
)

func TestAuthorizedKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "authorized_keys")
	env := testEnv(t)
	steps := []struct {
		name   string
		params plan.Params
		want   string
		after  string
	}{
		{"first key creates the file", plan.Params{"keys": []string{keyA}},
			"create " + path + ", 1 key added", keyA + "\n"},
		{"rerun", plan.Params{"keys": []string{keyA}}, "", keyA + "\n"},
		{"additive keeps other lines", plan.Params{"keys": []string{keyB}},
			"1 key added", keyA + "\n" + keyB + "\n"},
		{"options are a change and are kept", plan.Params{"keys": []string{`from="10.0.0.0/8",no-pty ` + keyA}},
			"1 key changed", `from="10.0.0.0/8",no-pty ` + keyA + "\n" + keyB + "\n"},
		{"the same key with options stays", plan.Params{"keys": []string{`from="10.0.0.0/8",no-pty ` + keyA}},
			"", `from="10.0.0.0/8",no-pty ` + keyA + "\n" + keyB + "\n"},
		{"exclusive drops others", plan.Params{"keys": []string{keyC, keyB}, "exclusive": true},
			"1 key added, 1 key removed", keyB + "\n" + keyC + "\n"},
		{"absent removes by key, whatever the comment", plan.Params{"keys": []string{strings.TrimSuffix(keyB, " bob@b") + " other"}, "state": "absent"},
			"1 key removed", keyC + "\n"},
	}
	for _, s := range steps {
		s.params["path"] = path
		s.params["user"] = "root"
		r := build(t, "authorized_key", "root-keys", s.params, nil)
		c := mustCheck(t, r, env)
		if c.Changed != (s.want != "") || c.Summary != s.want {
			t.Errorf("%s: Check = %v %q, want %q", s.name, c.Changed, c.Summary, s.want)
		}
		if strings.Contains(c.Diff, "/proc/self/fd") || strings.Contains(c.Summary, "/proc/self/fd") {
			t.Errorf("%s: internal path shown: %q %q", s.name, c.Summary, c.Diff)
		}
		if c.Changed {
			applyIdempotent(t, r, env)
		}
		if got := readFile(t, path); got != s.after {
			t.Errorf("%s: file = %q, want %q", s.name, got, s.after)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", s.name, fi.Mode())
		}
	}
}

// A target user who points ~/.ssh or authorized_keys at a file of root's
// (a symlink) gets an error: root neither reads (into a diff) nor rewrites
// the target.
func TestAuthorizedKeyRefusesSymlinks(t *testing.T) {
	base := t.TempDir()
	victimDir := filepath.Join(base, "rootssh")
	if err := os.Mkdir(victimDir, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(victimDir, "authorized_keys")
	writeFile(t, victim, keyC+" SECRET-ROOT-LINE\n", 0o600)

	// ~/.ssh is a symlink to root's directory.
	home := filepath.Join(base, "home")
	os.Mkdir(home, 0o755)
	if err := os.Symlink(victimDir, filepath.Join(home, ".ssh")); err != nil {
		t.Fatal(err)
	}
	r := build(t, "authorized_key", "u", plan.Params{"user": "root", "keys": []string{keyA}, "path": filepath.Join(home, ".ssh", "authorized_keys")}, nil)
	_, err := r.Apply(t.Context(), testEnv(t))
	wantErrContaining(t, err, "not a directory")

	// authorized_keys is a symlink to root's file.
	home2 := filepath.Join(base, "home2")
	os.MkdirAll(filepath.Join(home2, ".ssh"), 0o700)
	if err := os.Symlink(victim, filepath.Join(home2, ".ssh", "authorized_keys")); err != nil {
		t.Fatal(err)
	}
	r = build(t, "authorized_key", "u", plan.Params{"user": "root", "keys": []string{keyA}, "exclusive": true, "path": filepath.Join(home2, ".ssh", "authorized_keys")}, nil)
	c, err := r.Check(t.Context(), testEnv(t))
	wantErrContaining(t, err, "symlink")
	if strings.Contains(c.Diff, "SECRET") {
		t.Error("the symlink target's content is in the diff")
	}
	if _, err := r.Apply(t.Context(), testEnv(t)); err == nil {
		t.Error("Apply through the symlink succeeded")
	}
	if got := readFile(t, victim); got != keyC+" SECRET-ROOT-LINE\n" {
		t.Errorf("root's file changed: %q", got)
	}
}

func TestAuthorizedKeyRejects(t *testing.T) {
	for _, tt := range []struct {
		params plan.Params
		want   string
	}{
		{plan.Params{"keys": []string{"not a key"}}, "keys[0] is not an authorized_keys line"},
		{plan.Params{"keys": []string{keyA, "no-pty " + keyA}}, "keys[1] repeats"},
		{plan.Params{"keys": []string{keyA}, "exclusive": true, "state": "absent"}, "exclusive makes no sense"},
		{plan.Params{"keys": []string{keyA}, "path": "rel"}, "must be absolute"},
		{plan.Params{}, "missing required argument \"keys\""},
	} {
		_, err := New(plan.Resource{Kind: "authorized_key", Name: "alice", Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
}
