package resource

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

func TestDirectory(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(t *testing.T, path string)
		params      plan.Params
		wantChanged bool
		wantSummary string
		wantErr     string
		wantMode    os.FileMode // 0: must not exist
	}{
		{name: "created with parents", params: plan.Params{},
			wantChanged: true, wantSummary: "create", wantMode: os.ModeDir | 0o755},
		{name: "created with mode and owner", params: plan.Params{"mode": "0750", "owner": "nobody"},
			wantChanged: true, wantSummary: "create", wantMode: os.ModeDir | 0o750},
		{name: "existing is left alone",
			setup:  func(t *testing.T, p string) { os.MkdirAll(p, 0o700) },
			params: plan.Params{}, wantMode: os.ModeDir | 0o700},
		{name: "mode fixed",
			setup:  func(t *testing.T, p string) { os.MkdirAll(p, 0o700) },
			params: plan.Params{"mode": int64(0o1777)}, wantChanged: true, wantSummary: "mode 0700→1777",
			wantMode: os.ModeDir | os.ModeSticky | 0o777},
		{name: "a file in the way is an error",
			setup:   func(t *testing.T, p string) { os.MkdirAll(filepath.Dir(p), 0o755); writeFile(t, p, "", 0o644) },
			params:  plan.Params{},
			wantErr: "is a regular file, not a directory"},
		{name: "absent removes an empty directory",
			setup:  func(t *testing.T, p string) { os.MkdirAll(p, 0o755) },
			params: plan.Params{"state": "absent"}, wantChanged: true, wantSummary: "remove"},
		{name: "absent refuses a non-empty directory without force",
			setup: func(t *testing.T, p string) {
				os.MkdirAll(p, 0o755)
				writeFile(t, filepath.Join(p, "x"), "", 0o644)
			},
			params: plan.Params{"state": "absent"}, wantErr: "not empty; set force=True"},
		{name: "absent with force removes recursively",
			setup: func(t *testing.T, p string) {
				os.MkdirAll(filepath.Join(p, "sub"), 0o755)
				writeFile(t, filepath.Join(p, "sub", "x"), "", 0o644)
			},
			params: plan.Params{"state": "absent", "force": true}, wantChanged: true, wantSummary: "remove recursively"},
		{name: "absent and missing is fine", params: plan.Params{"state": "absent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a", "b", "d")
			if tt.setup != nil {
				tt.setup(t, path)
			}
			env := testEnv(t)
			r := build(t, "directory", path, tt.params, nil)
			c, err := r.Check(context.Background(), env)
			if tt.wantErr != "" {
				wantErrContaining(t, err, path, tt.wantErr)
				_, err = r.Apply(context.Background(), env)
				wantErrContaining(t, err, path, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Changed != tt.wantChanged || c.Summary != tt.wantSummary {
				t.Errorf("Check = %v %q, want %v %q", c.Changed, c.Summary, tt.wantChanged, tt.wantSummary)
			}
			applyIdempotent(t, r, env)
			fi, err := os.Lstat(path)
			if tt.wantMode == 0 {
				if !os.IsNotExist(err) {
					t.Errorf("directory still exists: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != tt.wantMode {
				t.Errorf("mode = %v, want %v", fi.Mode(), tt.wantMode)
			}
			if tt.params["owner"] == "nobody" && statT(t, path).Uid != 65534 {
				t.Errorf("owner not set")
			}
			if parent, _ := os.Lstat(filepath.Dir(path)); tt.setup == nil && parent.Mode().Perm() != 0o755 {
				t.Errorf("parent mode = %v, want 0755", parent.Mode())
			}
		})
	}
}

func TestDirectoryParentsIgnoreUmask(t *testing.T) {
	old := syscallUmask(0o077)
	defer syscallUmask(old)
	path := filepath.Join(t.TempDir(), "p", "q")
	mustApply(t, build(t, "directory", path, plan.Params{}, nil), testEnv(t))
	for _, p := range []string{path, filepath.Dir(path)} {
		if fi, _ := os.Lstat(p); fi.Mode().Perm() != 0o755 {
			t.Errorf("%s mode = %v, want 0755", p, fi.Mode())
		}
	}
}

func TestDirectoryFactoryErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		params plan.Params
		want   string
	}{
		{"/", plan.Params{"state": "absent", "force": true}, "refusing to remove the root"},
		{"/x", plan.Params{"state": "absent", "mode": "0755"}, "mode makes no sense"},
		{"/x", plan.Params{"force": "yes"}, "want bool"},
		{"rel", plan.Params{}, "absolute"},
	} {
		_, err := New(plan.Resource{Kind: "directory", Name: tt.name, Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
}
