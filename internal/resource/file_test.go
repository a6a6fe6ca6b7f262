package resource

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/plan"
)

func TestFileCheckApply(t *testing.T) {
	blob := []byte("from a template\n")
	blobs := map[string][]byte{plan.Hash(blob): blob}
	tests := []struct {
		name        string
		setup       func(t *testing.T, path string)
		params      plan.Params
		wantChanged bool
		wantSummary string
		wantDiff    string // substring
		wantContent string
		wantMode    os.FileMode
		wantUID     int // -1: don't care
		sameInode   bool
	}{
		{name: "missing file is created with content and default mode",
			params:      plan.Params{"content": "hello\n"},
			wantChanged: true, wantSummary: "create", wantDiff: "--- /dev/null\n+++ PATH\n@@ -0,0 +1 @@\n+hello\n",
			wantContent: "hello\n", wantMode: 0o644, wantUID: 0},
		{name: "equal file is left alone",
			setup:       func(t *testing.T, p string) { writeFile(t, p, "hello\n", 0o640) },
			params:      plan.Params{"content": "hello\n"},
			wantContent: "hello\n", wantMode: 0o640, wantUID: -1, sameInode: true},
		{name: "different content is replaced and diffed, mode kept",
			setup:       func(t *testing.T, p string) { writeFile(t, p, "a\nold\nc\n", 0o640) },
			params:      plan.Params{"content": "a\nnew\nc\n"},
			wantChanged: true, wantSummary: "content", wantDiff: "--- PATH\n+++ PATH\n@@ -1,3 +1,3 @@\n a\n-old\n+new\n c\n",
			wantContent: "a\nnew\nc\n", wantMode: 0o640, wantUID: -1},
		{name: "mode only changes metadata in place",
			setup:       func(t *testing.T, p string) { writeFile(t, p, "same\n", 0o644) },
			params:      plan.Params{"content": "same\n", "mode": int64(0o600)},
			wantChanged: true, wantSummary: "mode 0644→0600",
			wantContent: "same\n", wantMode: 0o600, wantUID: -1, sameInode: true},
		{name: "owner and group change in place",
			setup:       func(t *testing.T, p string) { writeFile(t, p, "same\n", 0o644) },
			params:      plan.Params{"owner": "nobody", "group": "65534"},
			wantChanged: true, wantSummary: "owner root→nobody, group root→nogroup",
			wantContent: "same\n", wantMode: 0o644, wantUID: 65534, sameInode: true},
		{name: "content and mode together",
			setup:       func(t *testing.T, p string) { writeFile(t, p, "x\n", 0o644) },
			params:      plan.Params{"content": "y\n", "mode": "0600", "owner": "65534"},
			wantChanged: true, wantSummary: "content, mode 0644→0600, owner root→nobody", wantDiff: "@@ -1 +1 @@\n-x\n+y\n",
			wantContent: "y\n", wantMode: 0o600, wantUID: 65534},
		{name: "setuid survives a chown",
			setup:       func(t *testing.T, p string) { writeFile(t, p, "x\n", 0o755) },
			params:      plan.Params{"mode": "4755", "owner": "nobody"},
			wantChanged: true, wantSummary: "mode 0755→4755, owner root→nobody",
			wantContent: "x\n", wantMode: 0o755 | os.ModeSetuid, wantUID: 65534, sameInode: true},
		{name: "JSON-decoded mode (float64)",
			setup:       func(t *testing.T, p string) { writeFile(t, p, "x\n", 0o644) },
			params:      plan.Params{"mode": float64(0o640)},
			wantChanged: true, wantSummary: "mode 0644→0640",
			wantContent: "x\n", wantMode: 0o640, wantUID: -1, sameInode: true},
		{name: "blob content",
			params:      plan.Params{"blob": plan.Hash(blob)},
			wantChanged: true, wantSummary: "create", wantDiff: "+from a template\n",
			wantContent: "from a template\n", wantMode: 0o644, wantUID: -1},
		{name: "ensure exists creates an empty file",
			params:      plan.Params{"mode": int64(0o600)},
			wantChanged: true, wantSummary: "create",
			wantContent: "", wantMode: 0o600, wantUID: -1},
		{name: "ensure exists leaves content of an existing file",
			setup:       func(t *testing.T, p string) { writeFile(t, p, "mine\n", 0o644) },
			params:      plan.Params{},
			wantContent: "mine\n", wantMode: 0o644, wantUID: -1, sameInode: true},
		{name: "binary content",
			setup:       func(t *testing.T, p string) { writeFile(t, p, "\x00\x01", 0o644) },
			params:      plan.Params{"content": "\x00\x02"},
			wantChanged: true, wantSummary: "content", wantDiff: "binary content differs",
			wantContent: "\x00\x02", wantMode: 0o644, wantUID: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if tt.setup != nil {
				tt.setup(t, path)
			}
			var inode uint64
			if tt.sameInode {
				inode = statT(t, path).Ino
			}
			env := testEnv(t)
			r := build(t, "file", path, tt.params, blobs)
			c := mustCheck(t, r, env)
			if c.Changed != tt.wantChanged || c.Summary != tt.wantSummary {
				t.Errorf("Check = changed %v %q, want %v %q", c.Changed, c.Summary, tt.wantChanged, tt.wantSummary)
			}
			wantDiff := strings.ReplaceAll(tt.wantDiff, "PATH", path)
			if !strings.Contains(c.Diff, wantDiff) || (wantDiff == "" && c.Diff != "") {
				t.Errorf("Diff = %q, want %q", c.Diff, wantDiff)
			}
			if tt.wantChanged {
				if _, err := os.Lstat(path); err == nil && tt.setup == nil {
					t.Fatal("Check created the file")
				}
				a := applyIdempotent(t, r, env)
				if a.Summary != c.Summary {
					t.Errorf("Apply summary %q differs from Check's %q", a.Summary, c.Summary)
				}
			}
			if got := readFile(t, path); got != tt.wantContent {
				t.Errorf("content = %q, want %q", got, tt.wantContent)
			}
			fi, _ := os.Lstat(path)
			if fi.Mode() != tt.wantMode {
				t.Errorf("mode = %v, want %v", fi.Mode(), tt.wantMode)
			}
			st := statT(t, path)
			if tt.wantUID >= 0 && int(st.Uid) != tt.wantUID {
				t.Errorf("uid = %d, want %d", st.Uid, tt.wantUID)
			}
			if tt.sameInode && st.Ino != inode {
				t.Errorf("file was rewritten (inode %d → %d), want metadata-only change", inode, st.Ino)
			}
		})
	}
}

func TestFileAbsent(t *testing.T) {
	dir := t.TempDir()
	env := testEnv(t)
	path := filepath.Join(dir, "f")
	writeFile(t, path, "bye\n", 0o644)
	r := build(t, "file", path, plan.Params{"state": "absent"}, nil)
	c := mustCheck(t, r, env)
	if !c.Changed || c.Summary != "remove" || !strings.Contains(c.Diff, "-bye") {
		t.Errorf("Check = %+v", c)
	}
	applyIdempotent(t, r, env)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("file still there: %v", err)
	}

	os.Mkdir(path, 0o755)
	_, err := r.Check(context.Background(), env)
	wantErrContaining(t, err, path, "is a directory")
}

func TestFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	env := testEnv(t)
	link := filepath.Join(dir, "l")
	os.Symlink("/etc/hostname", link)
	r := build(t, "file", link, plan.Params{"content": "x"}, nil)
	_, err := r.Check(context.Background(), env)
	wantErrContaining(t, err, link, "a symlink", "not a regular file")
	_, err = r.Apply(context.Background(), env)
	wantErrContaining(t, err, link, "a symlink")
	if target, _ := os.Readlink(link); target != "/etc/hostname" {
		t.Errorf("link was changed")
	}
}

func TestFileFactoryErrors(t *testing.T) {
	blobs := map[string][]byte{plan.Hash([]byte("b")): []byte("b")}
	tests := []struct {
		name   string
		path   string
		params plan.Params
		want   string
	}{
		{"content and blob", "/x", plan.Params{"content": "a", "blob": plan.Hash([]byte("b"))}, "exclusive"},
		{"mode 0999 is not octal", "/x", plan.Params{"mode": "0999"}, `"0999" is not an octal mode`},
		{"mode out of range", "/x", plan.Params{"mode": int64(0o10000)}, "out of range"},
		{"negative mode", "/x", plan.Params{"mode": int64(-1)}, "out of range"},
		{"mode of wrong type", "/x", plan.Params{"mode": true}, "mode"},
		{"relative path", "etc/x", plan.Params{}, "absolute"},
		{"unclean path", "/etc/../x", plan.Params{}, "not clean"},
		{"unknown blob", "/x", plan.Params{"blob": "abc"}, "blob abc is not in the plan"},
		{"absent with content", "/x", plan.Params{"state": "absent", "content": "a"}, "content makes no sense"},
		{"bad state", "/x", plan.Params{"state": "gone"}, `"gone" is neither`},
		{"unknown param", "/x", plan.Params{"contents": "a"}, `unknown argument "contents"`},
		{"content of wrong type", "/x", plan.Params{"content": int64(3)}, "want string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(plan.Resource{Kind: "file", Name: tt.path, Params: tt.params}, blobs)
			wantErrContaining(t, err, tt.want)
		})
	}
}

func TestFileUnknownOwnerIsAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	env := testEnv(t)
	r := build(t, "file", path, plan.Params{"content": "x", "owner": "no-such-user-herd"}, nil)
	_, err := r.Check(context.Background(), env)
	wantErrContaining(t, err, path, `owner "no-such-user-herd": no such user`)
	_, err = r.Apply(context.Background(), env)
	wantErrContaining(t, err, path, `owner "no-such-user-herd": no such user`)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Error("file created despite the bad owner")
	}
	r = build(t, "file", path, plan.Params{"group": "no-such-group-herd"}, nil)
	_, err = r.Apply(context.Background(), env)
	wantErrContaining(t, err, `group "no-such-group-herd": no such group`)
}

func TestFileApplyCleansStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	stale := filepath.Join(dir, ".herd-tmp-f-0123456789ab")
	writeFile(t, stale, "torn", 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(stale, old, old)
	mustApply(t, build(t, "file", path, plan.Params{"content": "x"}, nil), testEnv(t))
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file kept: %v", err)
	}
}
