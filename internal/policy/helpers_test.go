package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/herd-project/herd/internal/facts"
)

// writeFiles unpacks a txtar archive into a fresh directory and returns it.
func writeFiles(t *testing.T, archive string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range txtar.Parse([]byte(archive)).Files {
		path := filepath.Join(dir, f.Name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// chdir makes positions in errors short ("site.star:3:5") and stable.
func chdir(t *testing.T, dir string) {
	t.Helper()
	t.Chdir(dir)
}

func mustLoad(t *testing.T, archive string, opts LoadOptions) *Policy {
	t.Helper()
	chdir(t, writeFiles(t, archive))
	p, err := Load("site.star", opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

var web1 = Host{
	Name: "web1",
	Vars: map[string]any{"env": "prod", "port": int64(8080), "admins": []any{"ann", "bob"}, "db": map[string]any{"host": "db1"}},
	Facts: facts.Facts{
		Hostname: "web1.example", OSFamily: "debian", Distro: "debian", Version: "12", Arch: "amd64",
		User: "root", UID: 0, Home: "/root", Env: map[string]string{"LANG": "C.UTF-8"}, Kernel: "6.1.0", CPUs: 4,
	},
}
