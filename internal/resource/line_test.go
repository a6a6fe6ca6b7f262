package resource

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

func TestLine(t *testing.T) {
	const missing = "\x00missing"
	tests := []struct {
		name        string
		before      string
		params      plan.Params
		wantSummary string // "": no change
		wantDiff    string
		after       string
	}{
		{name: "regexp replaces the last matching line",
			before: "a=1\nport=80\nb=2\nport=81\nc=3\n", params: plan.Params{"regexp": `^port=`, "line": "port=8080"},
			wantSummary: "line 4 replaced", wantDiff: "-port=81\n+port=8080\n",
			after: "a=1\nport=80\nb=2\nport=8080\nc=3\n"},
		{name: "regexp already satisfied",
			before: "port=8080\n", params: plan.Params{"regexp": `^port=`, "line": "port=8080"},
			after: "port=8080\n"},
		{name: "no match appends",
			before: "a\n", params: plan.Params{"regexp": `^port=`, "line": "port=1"},
			wantSummary: "line appended", after: "a\nport=1\n"},
		{name: "no match but the line is there (regexp not matching line) is stable",
			before: "x\n", params: plan.Params{"regexp": `^nomatch`, "line": "x"},
			after: "x\n"},
		{name: "append without regexp",
			before: "a\nb\n", params: plan.Params{"line": "c"},
			wantSummary: "line appended", wantDiff: "@@ -1,2 +1,3 @@\n a\n b\n+c\n", after: "a\nb\nc\n"},
		{name: "append to a file without final newline",
			before: "a", params: plan.Params{"line": "c"},
			wantSummary: "line appended", after: "a\nc\n"},
		{name: "present exactly is stable",
			before: "a\nc\nb", params: plan.Params{"line": "c"}, after: "a\nc\nb"},
		{name: "replace keeps a missing final newline",
			before: "k=1", params: plan.Params{"line": "k=2", "regexp": "^k="},
			wantSummary: "line 1 replaced", after: "k=2"},
		{name: "absent removes equal lines",
			before: "a\nx\nb\nx\n", params: plan.Params{"line": "x", "state": "absent"},
			wantSummary: "2 lines removed", after: "a\nb\n"},
		{name: "absent removes matching lines",
			before: "# c\na\n#d\n", params: plan.Params{"regexp": "^#", "state": "absent"},
			wantSummary: "2 lines removed", after: "a\n"},
		{name: "absent with nothing to remove",
			before: "a\n", params: plan.Params{"line": "x", "state": "absent"}, after: "a\n"},
		{name: "create a missing file",
			before: missing, params: plan.Params{"line": "x", "create": true},
			wantSummary: "create, line appended", wantDiff: "--- /dev/null", after: "x\n"},
		{name: "absent on a missing file is fine",
			before: missing, params: plan.Params{"line": "x", "state": "absent"}, after: missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "conf")
			if tt.before != missing {
				writeFile(t, path, tt.before, 0o640)
				os.Chown(path, 65534, 65534)
			}
			env := testEnv(t)
			r := build(t, "line", path, tt.params, nil)
			c := mustCheck(t, r, env)
			if c.Changed != (tt.wantSummary != "") || c.Summary != tt.wantSummary {
				t.Errorf("Check = %v %q, want %q", c.Changed, c.Summary, tt.wantSummary)
			}
			if !strings.Contains(c.Diff, tt.wantDiff) {
				t.Errorf("Diff = %q, want it to contain %q", c.Diff, tt.wantDiff)
			}
			if c.Changed {
				applyIdempotent(t, r, env)
			}
			if tt.after == missing {
				if _, err := os.Lstat(path); !os.IsNotExist(err) {
					t.Error("file was created")
				}
				return
			}
			if got := readFile(t, path); got != tt.after {
				t.Errorf("after = %q, want %q", got, tt.after)
			}
			if tt.before != missing {
				fi, _ := os.Lstat(path)
				st := statT(t, path)
				if fi.Mode() != 0o640 || st.Uid != 65534 || st.Gid != 65534 {
					t.Errorf("mode/owner not preserved: %v %d:%d", fi.Mode(), st.Uid, st.Gid)
				}
			}
		})
	}
}

func TestLineErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nofile")
	r := build(t, "line", path, plan.Params{"line": "x"}, nil)
	_, err := r.Check(context.Background(), testEnv(t))
	wantErrContaining(t, err, path, "does not exist; set create=True")

	for _, tt := range []struct {
		params plan.Params
		want   string
	}{
		{plan.Params{"regexp": "a"}, "line is required"},
		{plan.Params{"state": "absent"}, "give line or regexp"},
		{plan.Params{"line": "a\nb"}, "single line"},
		{plan.Params{"line": "a", "regexp": "(unclosed"}, "regexp: error parsing"},
	} {
		_, err := New(plan.Resource{Kind: "line", Name: "/etc/x", Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
}
