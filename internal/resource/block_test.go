package resource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

func TestBlock(t *testing.T) {
	const missing = "\x00missing"
	const B, E = "# BEGIN HERD MANAGED BLOCK", "# END HERD MANAGED BLOCK"
	tests := []struct {
		name        string
		before      string
		params      plan.Params
		wantSummary string // "": no change
		wantDiff    string
		after       string
	}{
		{name: "appended at the end",
			before: "a\nb\n", params: plan.Params{"block": "x=1\ny=2\n"},
			wantSummary: "block inserted (2 lines)", wantDiff: "+" + B + "\n+x=1\n+y=2\n+" + E + "\n",
			after: "a\nb\n" + B + "\nx=1\ny=2\n" + E + "\n"},
		{name: "already there",
			before: "a\n" + B + "\nx=1\n" + E + "\nz\n", params: plan.Params{"block": "x=1"},
			after: "a\n" + B + "\nx=1\n" + E + "\nz\n"},
		{name: "replaced in place, around lines kept",
			before: "a\n" + B + "\nold\nold2\n" + E + "\nz", params: plan.Params{"block": "new"},
			wantSummary: "block replaced (2 → 1 lines)", wantDiff: "-old\n-old2\n+new\n",
			after: "a\n" + B + "\nnew\n" + E + "\nz"},
		{name: "insert_after the last match",
			before: "[a]\nk\n[b]\nk\n", params: plan.Params{"block": "x", "insert_after": `^\[a\]`},
			wantSummary: "block inserted (1 lines)", after: "[a]\n" + B + "\nx\n" + E + "\nk\n[b]\nk\n"},
		{name: "insert_before BOF",
			before: "a\n", params: plan.Params{"block": "x", "insert_before": "BOF"},
			wantSummary: "block inserted (1 lines)", after: B + "\nx\n" + E + "\na\n"},
		{name: "insert_before without a match goes to the end",
			before: "a", params: plan.Params{"block": "x", "insert_before": "^nomatch"},
			wantSummary: "block inserted (1 lines)", after: "a\n" + B + "\nx\n" + E + "\n"},
		{name: "own markers keep two blocks apart",
			before: "# {A} start\n1\n# {A} stop\n", params: plan.Params{"block": "2", "marker": "# {{mark}} {B}", "marker_begin": "start", "marker_end": "stop"},
			wantSummary: "block inserted (1 lines)", after: "# {A} start\n1\n# {A} stop\n# {start} {B}\n2\n# {stop} {B}\n"},
		{name: "absent removes block and markers",
			before: "a\n" + B + "\nx\n" + E + "\nb\n", params: plan.Params{"state": "absent"},
			wantSummary: "block removed (3 lines)", after: "a\nb\n"},
		{name: "empty block removes",
			before: B + "\nx\n" + E + "\n", params: plan.Params{"block": ""},
			wantSummary: "block removed (3 lines)", after: ""},
		{name: "a lone begin marker is not a block",
			before: B + "\nkeep\n", params: plan.Params{"state": "absent"}, after: B + "\nkeep\n"},
		{name: "create a missing file",
			before: missing, params: plan.Params{"block": "x", "create": true},
			wantSummary: "create ", wantDiff: "--- /dev/null", after: B + "\nx\n" + E + "\n"},
		{name: "absent on a missing file is fine",
			before: missing, params: plan.Params{"state": "absent"}, after: missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "conf")
			if tt.before != missing {
				writeFile(t, path, tt.before, 0o640)
			}
			env := testEnv(t)
			r := build(t, "block", path, tt.params, nil)
			c := mustCheck(t, r, env)
			if c.Changed != (tt.wantSummary != "") || !strings.HasPrefix(c.Summary, tt.wantSummary) {
				t.Errorf("Check = %v %q, want %q", c.Changed, c.Summary, tt.wantSummary)
			}
			if !strings.Contains(c.Diff, tt.wantDiff) {
				t.Errorf("Diff = %q, want it to contain %q", c.Diff, tt.wantDiff)
			}
			if c.Changed {
				applyIdempotent(t, r, env)
			}
			if tt.after == missing {
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("file exists: %v", err)
				}
				return
			}
			if got := readFile(t, path); got != tt.after {
				t.Errorf("content = %q, want %q", got, tt.after)
			}
			if tt.before != missing {
				if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
					t.Errorf("mode changed to %v", fi.Mode())
				}
			}
		})
	}
}

func TestBlockRejects(t *testing.T) {
	for _, tt := range []struct {
		name   string
		params plan.Params
		want   string
	}{
		{"/etc/x", plan.Params{"block": "a", "marker": "# managed"}, "must contain {mark}"},
		{"/etc/x", plan.Params{"block": "a", "insert_after": "(", "insert_before": "x"}, "not both"},
		{"/etc/x", plan.Params{"block": "a", "insert_after": "("}, "insert_after"},
		{"/etc/x", plan.Params{"block": "# BEGIN HERD MANAGED BLOCK"}, "its own marker"},
		{"/etc/x", plan.Params{"block": "a", "state": "absent"}, "block makes no sense"},
		{"relative", plan.Params{"block": "a"}, "must be absolute"},
		{"any-name", plan.Params{"block": "a", "path": "rel/x"}, "must be absolute"},
	} {
		_, err := New(plan.Resource{Kind: "block", Name: tt.name, Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
	// A missing file without create is an error at check time.
	r := build(t, "block", filepath.Join(t.TempDir(), "nope"), plan.Params{"block": "a"}, nil)
	_, err := r.Check(t.Context(), testEnv(t))
	wantErrContaining(t, err, "does not exist", "create=True")
}

// The file is read with Lstat first: a symlink planted at the path is
// refused, so its target's content never shows in a diff or gets rewritten.
func TestBlockRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	writeFile(t, secret, "TOPSECRET\n", 0o600)
	link := filepath.Join(dir, "conf")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	r := build(t, "block", link, plan.Params{"block": "x"}, nil)
	c, err := r.Check(t.Context(), testEnv(t))
	wantErrContaining(t, err, "symlink")
	if strings.Contains(c.Diff, "TOPSECRET") {
		t.Error("diff shows the symlink target's content")
	}
	if _, err := r.Apply(t.Context(), testEnv(t)); err == nil {
		t.Error("Apply through a symlink succeeded")
	}
	if got := readFile(t, secret); got != "TOPSECRET\n" {
		t.Errorf("target rewritten: %q", got)
	}
}
