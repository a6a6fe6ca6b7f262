package fileserver_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/plan"
)

// tree makes a policy directory with servable files, denied files and
// symlinks in and out, plus a directory outside it.
func tree(t *testing.T) (base, outside string) {
	t.Helper()
	top := t.TempDir()
	base, outside = filepath.Join(top, "policy"), filepath.Join(top, "outside")
	files := map[string]string{
		"policy/site.star":          "role()",
		"policy/files/app.conf":     "listen 80\n",
		"policy/files/app.conf.bak": "old",
		"policy/files/notes.txt~":   "draft",
		"policy/files/.app.swp":     "swap",
		"policy/.git/config":        "[core]",
		"policy/files/x.key":        "secret",
		"outside/secret":            "shh",
		"opt/files/tool.sh":         "#!/bin/sh\n",
	}
	for name, body := range files {
		p := filepath.Join(top, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(body), 0o644))
	}
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(base, "files", "escape")))
	must(t, os.Symlink("../../outside", filepath.Join(base, "files", "escape-dir")))
	must(t, os.Symlink("app.conf", filepath.Join(base, "files", "alias.conf")))
	must(t, os.Symlink("../.git/config", filepath.Join(base, "files", "laundered.conf")))
	return base, outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRulesServeOnlyAllowedPaths(t *testing.T) {
	base, _ := tree(t)
	opt := filepath.Join(filepath.Dir(base), "opt", "files")
	tests := []struct {
		name         string
		roots, allow []string
		deny         []string
		path         string
		refused      string // substring of the refusal, "" when served
	}{
		{name: "file under the policy dir", path: "files/app.conf"},
		{name: "symlink staying inside", path: "files/alias.conf"},
		{name: "dotdot out of the policy dir", path: "files/../../outside/secret", refused: "outside the served directories"},
		{name: "absolute path elsewhere", path: "/etc/passwd", refused: "outside the served directories"},
		{name: "symlink escape", path: "files/escape", refused: "resolves through a symlink"},
		{name: "symlinked directory escape", path: "files/escape-dir/secret", refused: "resolves through a symlink"},
		{name: "policy code", path: "site.star", refused: `"*.star"`},
		{name: "git metadata", path: ".git/config", refused: `".git"`},
		{name: "symlink laundering a denied target", path: "files/laundered.conf", refused: `".git"`},
		{name: "backup", path: "files/app.conf.bak", refused: `"*.bak"`},
		{name: "editor backup", path: "files/notes.txt~", refused: `"*~"`},
		{name: "swap file", path: "files/.app.swp", refused: `"*.swp"`},
		{name: "policy deny pattern", deny: []string{"*.key"}, path: "files/x.key", refused: `"*.key"`},
		{name: "allow pattern admits", allow: []string{"*.conf"}, path: "files/app.conf"},
		{name: "allow pattern excludes others", allow: []string{"*.conf"}, path: "files/x.key", refused: "allow=*.conf"},
		{name: "extra root by absolute path", roots: []string{".", opt}, path: opt + "/tool.sh"},
		{name: "extra root not given", path: opt + "/tool.sh", refused: "outside"},
		{name: "root narrowed to files/", roots: []string{"files"}, path: "site.star", refused: "outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := fileserver.NewRules(base, tt.roots, tt.allow, tt.deny)
			must(t, err)
			p := tt.path
			if !filepath.IsAbs(p) {
				p = filepath.Join(base, p)
			}
			_, err = r.Check(p)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var re *fileserver.RefusedError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.refused) {
				t.Fatalf("err = %v, want a refusal containing %q", err, tt.refused)
			}
		})
	}
}

func TestNewRulesRejectsBadPatternsAndRoots(t *testing.T) {
	base, _ := tree(t)
	for _, tt := range []struct {
		roots, allow []string
		want         string
	}{
		{allow: []string{"[a-"}, want: "not a valid name pattern"},
		{allow: []string{"dir/*.conf"}, want: "no '/'"},
		{roots: []string{"missing"}, want: "no such file or directory"},
	} {
		if _, err := fileserver.NewRules(base, tt.roots, tt.allow, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewRules(%q, %q) err = %v, want %q", tt.roots, tt.allow, err, tt.want)
		}
	}
}

// planWith is what planning a plan that references the given controller
// files by hash leaves the controller to serve.
func planWith(t *testing.T, paths ...string) (fileserver.Sources, []string) {
	p := fileserver.Sources{}
	var hashes []string
	for _, path := range paths {
		b, err := os.ReadFile(path)
		must(t, err)
		h := plan.Hash(b)
		p.Add(h, path, int64(len(b)))
		hashes = append(hashes, h)
	}
	return p, hashes
}

func readAll(t *testing.T, s *fileserver.Stream, chunk int) ([]byte, error) {
	var out []byte
	buf := make([]byte, chunk)
	for {
		n, eof, err := s.Next(buf)
		out = append(out, buf[:n]...)
		if err != nil || eof {
			return out, err
		}
	}
}

func TestIndexServesOnlyItsPlanByHash(t *testing.T) {
	base, outside := tree(t)
	rules, err := fileserver.NewRules(base, nil, nil, nil)
	must(t, err)
	app := filepath.Join(base, "files", "app.conf")
	web, webHashes := planWith(t, app)
	// Another role's plan references a file this one does not.
	_, dbHashes := planWith(t, filepath.Join(outside, "secret"))
	ix := fileserver.NewIndex(web, rules)

	s, err := ix.Open(webHashes[0], 0)
	must(t, err)
	got, err := readAll(t, s, 3)
	s.Close()
	if err != nil || string(got) != "listen 80\n" {
		t.Fatalf("served %q, %v", got, err)
	}
	s, err = ix.Open(webHashes[0], 7)
	must(t, err)
	got, err = readAll(t, s, 64)
	s.Close()
	if err != nil || string(got) != "80\n" {
		t.Fatalf("resumed at 7: %q, %v", got, err)
	}

	for _, tt := range []struct {
		name   string
		hash   string
		offset int64
	}{
		{"dotdot instead of a hash", "../../outside/secret", 0},
		{"absolute path instead of a hash", "/etc/shadow", 0},
		{"unknown hash", plan.Hash([]byte("anything")), 0},
		{"another role's file", dbHashes[0], 0},
		{"uppercase hash", strings.ToUpper(webHashes[0]), 0},
		{"offset past the end", webHashes[0], 11},
		{"negative offset", webHashes[0], -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ix.Open(tt.hash, tt.offset)
			var re *fileserver.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("Open = %v, want a refusal", err)
			}
		})
	}
}

func TestIndexRechecksAtTransferTime(t *testing.T) {
	base, outside := tree(t)
	rules, err := fileserver.NewRules(base, nil, nil, nil)
	must(t, err)
	alias := filepath.Join(base, "files", "alias.conf")
	p, hashes := planWith(t, alias)
	ix := fileserver.NewIndex(p, rules)

	// The symlink is swapped after planning to point outside: refused.
	must(t, os.Remove(alias))
	must(t, os.Symlink(filepath.Join(outside, "secret"), alias))
	if _, err := ix.Open(hashes[0], 0); err == nil || !strings.Contains(err.Error(), "no longer servable") {
		t.Fatalf("swapped symlink: err = %v", err)
	}

	// The file is edited (same size) after planning: the stream fails at
	// the end instead of vouching for content that is not the planned one.
	app := filepath.Join(base, "files", "app.conf")
	p, hashes = planWith(t, app)
	ix = fileserver.NewIndex(p, rules)
	must(t, os.WriteFile(app, []byte("listen 81\n"), 0o644))
	s, err := ix.Open(hashes[0], 0)
	must(t, err)
	defer s.Close()
	if _, err := readAll(t, s, 4); err == nil || !strings.Contains(err.Error(), "changed on the controller") {
		t.Fatalf("edited file: err = %v", err)
	}
	must(t, os.WriteFile(app, []byte("longer content\n"), 0o644))
	if _, err := ix.Open(hashes[0], 0); err == nil || !strings.Contains(err.Error(), "changed on the controller") {
		t.Fatalf("resized file: err = %v", err)
	}
}

// Local runs fetch through the index too, with the same refusals.
func TestIndexFetchForLocalRuns(t *testing.T) {
	base, _ := tree(t)
	rules, err := fileserver.NewRules(base, nil, nil, nil)
	must(t, err)
	p, hashes := planWith(t, filepath.Join(base, "files", "app.conf"))
	ix := fileserver.NewIndex(p, rules)
	var b strings.Builder
	if err := ix.Fetch(context.Background(), hashes[0], 0, &b); err != nil || b.String() != "listen 80\n" {
		t.Fatalf("Fetch = %q, %v", b.String(), err)
	}
	var re *fileserver.RefusedError
	if err := ix.Fetch(context.Background(), plan.Hash([]byte("x")), 0, &b); !errors.As(err, &re) {
		t.Fatalf("unknown hash: %v", err)
	}
}
