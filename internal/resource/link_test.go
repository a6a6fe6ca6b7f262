package resource

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

func TestLink(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(t *testing.T, path string)
		params      plan.Params
		wantChanged bool
		wantSummary string
		wantErr     string
		wantTarget  string // "": must not exist
		wantKept    bool   // the existing non-link must be untouched
	}{
		{name: "created", params: plan.Params{"target": "/etc/hostname"},
			wantChanged: true, wantSummary: "create → /etc/hostname", wantTarget: "/etc/hostname"},
		{name: "relative target kept as given", params: plan.Params{"target": "../x"},
			wantChanged: true, wantSummary: "create → ../x", wantTarget: "../x"},
		{name: "correct link is left alone",
			setup:  func(t *testing.T, p string) { os.Symlink("/a", p) },
			params: plan.Params{"target": "/a"}, wantTarget: "/a"},
		{name: "wrong target is replaced",
			setup:  func(t *testing.T, p string) { os.Symlink("/a", p) },
			params: plan.Params{"target": "/b"}, wantChanged: true, wantSummary: "target /a→/b", wantTarget: "/b"},
		{name: "regular file is refused without force",
			setup:  func(t *testing.T, p string) { writeFile(t, p, "data", 0o644) },
			params: plan.Params{"target": "/b"}, wantErr: "set force=True", wantKept: true},
		{name: "regular file is replaced with force",
			setup:  func(t *testing.T, p string) { writeFile(t, p, "data", 0o644) },
			params: plan.Params{"target": "/b", "force": true}, wantChanged: true,
			wantSummary: "replace a regular file with link → /b", wantTarget: "/b"},
		{name: "directory is refused even with force",
			setup:  func(t *testing.T, p string) { os.Mkdir(p, 0o755) },
			params: plan.Params{"target": "/b", "force": true}, wantErr: "will not replace a directory"},
		{name: "absent removes a link",
			setup:  func(t *testing.T, p string) { os.Symlink("/a", p) },
			params: plan.Params{"target": "/a", "state": "absent"}, wantChanged: true, wantSummary: "remove"},
		{name: "absent refuses a regular file",
			setup:  func(t *testing.T, p string) { writeFile(t, p, "data", 0o644) },
			params: plan.Params{"target": "/a", "state": "absent"}, wantErr: "not a link", wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "l")
			if tt.setup != nil {
				tt.setup(t, path)
			}
			env := testEnv(t)
			r := build(t, "link", path, tt.params, nil)
			c, err := r.Check(context.Background(), env)
			if tt.wantErr != "" {
				wantErrContaining(t, err, path, tt.wantErr)
				_, err = r.Apply(context.Background(), env)
				wantErrContaining(t, err, tt.wantErr)
				if tt.wantKept && readFile(t, path) != "data" {
					t.Error("existing file was changed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Changed != tt.wantChanged || c.Summary != tt.wantSummary {
				t.Errorf("Check = %v %q, want %v %q", c.Changed, c.Summary, tt.wantChanged, tt.wantSummary)
			}
			applyIdempotent(t, r, env)
			got, err := os.Readlink(path)
			if tt.wantTarget == "" {
				if _, err := os.Lstat(path); !os.IsNotExist(err) {
					t.Errorf("link still exists")
				}
				return
			}
			if err != nil || got != tt.wantTarget {
				t.Errorf("link → %q (%v), want %q", got, err, tt.wantTarget)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".herd-tmp-*")); len(left) > 0 {
				t.Errorf("temp links left: %v", left)
			}
		})
	}
}

func TestLinkRequiresTarget(t *testing.T) {
	_, err := New(plan.Resource{Kind: "link", Name: "/x", Params: plan.Params{}}, nil)
	wantErrContaining(t, err, `missing required argument "target"`)
	_, err = New(plan.Resource{Kind: "link", Name: "/x", Params: plan.Params{"target": ""}}, nil)
	wantErrContaining(t, err, "target must not be empty")
}
