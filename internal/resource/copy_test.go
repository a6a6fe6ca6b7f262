package resource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// treeManifest builds a copy manifest and a store serving its contents.
func treeManifest(files map[string]string, dirs ...string) (map[string]string, *store) {
	m := map[string]string{}
	s := newStore()
	for rel, body := range files {
		h := plan.Hash([]byte(body))
		m[rel] = h + " " + strconv.Itoa(len(body))
		s.files[h] = []byte(body)
	}
	for _, d := range dirs {
		m[d] = "dir"
	}
	return m, s
}

// A tree is fetched file by file only where sha256 differs; extras go when
// delete_extra is set; metadata differences are fixed in place.
func TestCopyTreeFetchesOnlyWhatDiffers(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "site")
	files := map[string]string{}
	for i := range 300 {
		files[fmt.Sprintf("d%d/f%03d.txt", i%7, i)] = strings.Repeat(strconv.Itoa(i), i%50+1)
	}
	files["empty"] = ""
	dirs := []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6", "unused"}
	m, s := treeManifest(files, dirs...)
	env := s.env(t)
	params := plan.Params{"files": m, "mode": "0640", "dir_mode": "0750", "delete_extra": true}

	c := applyIdempotent(t, build(t, "copy", dest, params, nil), env)
	if !c.Changed || !strings.Contains(c.Summary, "301 files to write") {
		t.Fatalf("first apply: %+v", c)
	}
	if s.requests() != 301 {
		t.Errorf("requests = %d, want one per file", s.requests())
	}
	for rel, body := range files {
		b, err := os.ReadFile(filepath.Join(dest, rel))
		if err != nil || string(b) != body {
			t.Fatalf("%s: %q, %v", rel, b, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dest, "d3")); fi.Mode().Perm() != 0o750 {
		t.Errorf("dir mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(dest, "unused")); fi == nil || !fi.IsDir() {
		t.Error("empty directory not created")
	}

	before := s.requests()
	if c := mustCheck(t, build(t, "copy", dest, params, nil), env); c.Changed || s.requests() != before {
		t.Fatalf("re-run: %+v, %d new requests", c, s.requests()-before)
	}

	// One file edited, one chmodded, one extra file and one extra dir.
	writeFile(t, filepath.Join(dest, "d1/f001.txt"), "edited", 0o640)
	if err := os.Chmod(filepath.Join(dest, "d2/f002.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dest, "d4/extra"), "x", 0o644)
	if err := os.MkdirAll(filepath.Join(dest, "old/deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	c = applyIdempotent(t, build(t, "copy", dest, params, nil), env)
	if c.Summary != "1 file to write (2 bytes), 1 metadata change, 2 extra entries to remove" {
		t.Errorf("summary = %q", c.Summary)
	}
	if got := s.requests() - before; got != 1 {
		t.Errorf("fetched %d files, want 1", got)
	}
	for _, gone := range []string{"d4/extra", "old"} {
		if _, err := os.Lstat(filepath.Join(dest, gone)); err == nil {
			t.Errorf("%s not removed", gone)
		}
	}

	// Without delete_extra, extras stay.
	writeFile(t, filepath.Join(dest, "keep.me"), "x", 0o644)
	delete(params, "delete_extra")
	if c := mustCheck(t, build(t, "copy", dest, params, nil), env); c.Changed {
		t.Errorf("extra counted without delete_extra: %q", c.Summary)
	}
}

func TestCopyRejectsBadManifests(t *testing.T) {
	h := plan.Hash(nil)
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"dotdot", map[string]string{"../etc/passwd": h + " 0"}, "inside the tree"},
		{"absolute", map[string]string{"/etc/passwd": h + " 0"}, "inside the tree"},
		{"unclean", map[string]string{"a//b": h + " 0"}, "clean"},
		{"bad entry", map[string]string{"a": "nothash 3"}, "not \"<sha256> <size>\""},
		{"negative size", map[string]string{"a": h + " -1"}, "not \"<sha256> <size>\""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(plan.Resource{Kind: "copy", Name: "/srv/x", Params: plan.Params{"files": tt.files}}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// A failure to fetch one file of a tree fails the resource and leaves no
// temp files; what was already there is intact.
func TestCopyFetchFailureLeavesNoTemps(t *testing.T) {
	dest := t.TempDir()
	m, s := treeManifest(map[string]string{"a": "aaa", "b": "bbb", "c": "ccc"})
	delete(s.files, plan.Hash([]byte("bbb")))
	writeFile(t, filepath.Join(dest, "b"), "old", 0o644)
	_, err := build(t, "copy", dest, plan.Params{"files": m}, nil).Apply(context.Background(), s.env(t))
	if err == nil || !strings.Contains(err.Error(), "b: refused") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "b")); string(b) != "old" {
		t.Errorf("b = %q", b)
	}
	if l := leftovers(t, dest); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
}
