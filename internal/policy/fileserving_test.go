package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// Serving rules are checked when the policy is evaluated, so a path that
// may not be sent is an error at the call site, before any host is touched.
func TestFileServingRulesFailAtTheCallSite(t *testing.T) {
	role := "role(\"web\", main = web)\n"
	cases := []struct {
		name, files, pos, phrase string
		setup                    func(t *testing.T, dir string)
	}{
		{name: "dotdot out of the policy dir",
			files: "-- site.star --\ndef web(host):\n    file(\"/etc/x\", source = \"../outside.conf\")\n" + role,
			setup: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "..", "outside.conf"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			pos: "site.star:2:9:", phrase: "outside the served directories"},
		{name: "absolute path elsewhere",
			files: "-- site.star --\ndef web(host):\n    file(\"/etc/x\", source = \"/etc/hostname\")\n" + role,
			pos:   "site.star:2:9:", phrase: "fileserving_paths"},
		{name: "policy code is never served",
			files: "-- site.star --\ndef web(host):\n    file(\"/etc/x\", source = \"site.star\")\n" + role,
			pos:   "site.star:2:9:", phrase: `"*.star"`},
		{name: "git metadata",
			files: "-- site.star --\ndef web(host):\n    file(\"/etc/x\", source = \".git/config\")\n" + role + "-- .git/config --\n[core]\n",
			pos:   "site.star:2:9:", phrase: `".git"`},
		{name: "symlink escape",
			files: "-- site.star --\ndef web(host):\n    file(\"/etc/x\", source = \"files/link\")\n" + role + "-- files/ok --\n",
			setup: func(t *testing.T, dir string) {
				if err := os.Symlink("/etc/hostname", filepath.Join(dir, "files", "link")); err != nil {
					t.Fatal(err)
				}
			},
			pos: "site.star:2:9:", phrase: "resolves through a symlink to /etc/hostname"},
		{name: "template outside",
			files: "-- site.star --\ndef web(host):\n    template(\"/etc/x\", src = \"/etc/hostname\")\n" + role,
			pos:   "site.star:2:13:", phrase: "outside the served directories"},
		{name: "policy deny pattern",
			files: "-- site.star --\nfileserving(deny = [\"*.key\"])\ndef web(host):\n    file(\"/etc/x\", source = \"tls.key\")\n" + role + "-- tls.key --\nsecret\n",
			pos:   "site.star:3:9:", phrase: `"*.key"`},
		{name: "allow pattern",
			files: "-- site.star --\nfileserving(allow = [\"*.conf\"])\ndef web(host):\n    file(\"/etc/x\", source = \"notes.txt\")\n" + role + "-- notes.txt --\nhi\n",
			pos:   "site.star:3:9:", phrase: "allow=*.conf"},
		{name: "bad pattern",
			files: "-- site.star --\nfileserving(deny = [\"a/b\"])\n" + "def web(host):\n    pass\n" + role,
			pos:   "site.star:1:12:", phrase: "not a valid name pattern"},
		{name: "fileserving twice",
			files: "-- site.star --\nfileserving()\nfileserving()\n" + "def web(host):\n    pass\n" + role,
			pos:   "site.star:2:12:", phrase: "already set at site.star:1:12"},
		{name: "role narrows roots",
			files: "-- site.star --\ndef web(host):\n    file(\"/etc/x\", source = \"app.conf\")\nrole(\"web\", main = web, fileserving_paths = [\"files\"])\n" + "-- app.conf --\nx\n-- files/ok --\n",
			pos:   "site.star:2:9:", phrase: "outside"},
		{name: "copy of a file",
			files: "-- site.star --\ndef web(host):\n    copy(\"/srv/x\", source = \"app.conf\")\n" + role + "-- app.conf --\nx\n",
			pos:   "site.star:2:9:", phrase: "not a directory"},
		{name: "copy tree with a symlink escape",
			files: "-- site.star --\ndef web(host):\n    copy(\"/srv/x\", source = \"tree\")\n" + role + "-- tree/a --\na\n",
			setup: func(t *testing.T, dir string) {
				if err := os.Symlink("/etc/hostname", filepath.Join(dir, "tree", "b")); err != nil {
					t.Fatal(err)
				}
			},
			pos: "site.star:2:9:", phrase: "resolves through a symlink"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, c.files)
			if c.setup != nil {
				c.setup(t, dir)
			}
			chdir(t, dir)
			p, err := Load("site.star", LoadOptions{})
			if err == nil {
				_, err = p.Plan(p.Roles[0], web1)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want a policy error", err, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, c.pos) || !strings.Contains(msg, c.phrase) {
				t.Fatalf("error %q\nwant prefix %q and phrase %q", msg, c.pos, c.phrase)
			}
		})
	}
}

// Small files travel in the plan; large ones become references the agent
// fetches by hash, with the controller path kept out of the plan's JSON.
func TestSourceInlineOrByReference(t *testing.T) {
	dir := writeFiles(t, "-- site.star --\n"+
		"def web(host):\n"+
		"    file(\"/etc/small\", source = \"small\")\n"+
		"    file(\"/etc/big\", source = \"/opt/big\")\n"+
		"    copy(\"/srv/tree\", source = \"tree\", delete_extra = True)\n"+
		"role(\"web\", main = web, fileserving_paths = [\".\", \"opt\"])\n"+
		"-- small --\nsmall\n-- tree/a.conf --\na\n-- tree/sub/b.conf --\nb\n-- tree/.git/HEAD --\nref\n-- tree/c.swp --\nswap\n")
	if err := os.MkdirAll(filepath.Join(dir, "opt"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, InlineLimit)
	if err := os.WriteFile(filepath.Join(dir, "opt", "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	chdir(t, dir)
	// "/opt/big" is outside the roots: fileserving_paths are relative to
	// the policy, so an absolute path must lie in one of them.
	p, err := Load("site.star", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Plan(p.Roles[0], web1); err == nil || !strings.Contains(err.Error(), "site.star:3:9:") {
		t.Fatalf("absolute /opt/big: err = %v", err)
	}

	src := strings.Replace(string(must1(os.ReadFile("site.star"))), "\"/opt/big\"", "\"opt/big\"", 1)
	if err := os.WriteFile("site.star", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err = Load("site.star", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pl, sources, err := p.PlanWithSources(p.Roles[0], web1)
	if err != nil {
		t.Fatal(err)
	}
	small, bigRes, tree := pl.Resources[0], pl.Resources[1], pl.Resources[2]
	if _, inline := pl.Blobs[small.Params["blob"].(string)]; !inline {
		t.Errorf("small file not inline: %+v", small.Params)
	}
	bh := bigRes.Params["blob"].(string)
	if _, inline := pl.Blobs[bh]; inline || pl.Files[bh].Size != InlineLimit || bigRes.Params["size"] != int64(InlineLimit) {
		t.Errorf("big file: inline=%v files=%v params=%v", inline, pl.Files, bigRes.Params)
	}
	if sources[bh].Path != filepath.Join(must1(filepath.EvalSymlinks(dir)), "opt", "big") {
		t.Errorf("source of big = %q", sources[bh].Path)
	}
	want := map[string]string{
		"a.conf":     plan.Hash([]byte("a\n")) + " 2",
		"sub":        "dir",
		"sub/b.conf": plan.Hash([]byte("b\n")) + " 2",
	}
	got := tree.Params["files"].(map[string]string)
	if len(got) != len(want) {
		t.Errorf("manifest = %v, want %v (.git and *.swp skipped)", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("manifest[%s] = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := sources[plan.Hash([]byte("b\n"))]; !ok {
		t.Error("tree file not servable")
	}
	j := string(must1(json.Marshal(pl)))
	if strings.Contains(j, dir) || strings.Contains(j, "opt/big") {
		t.Error("controller paths leak into the plan sent to the agent")
	}
}

// must1 keeps table setup short; a setup failure is a broken test.
func must1[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
