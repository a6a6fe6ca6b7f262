package fileserver_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/herd-project/herd/internal/engine"
	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/policy"
)

// In local mode the plan never crosses a wire: large files and trees are
// fetched straight from their controller paths, and a re-run changes
// nothing.
func TestLocalRunFetchesFromSources(t *testing.T) {
	dir := t.TempDir()
	dest := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 20<<10) // 320 KiB: fetched, not inline
	files := map[string][]byte{
		"files/big.bin":    big,
		"tree/a.conf":      []byte("a\n"),
		"tree/sub/b.conf":  []byte("b\n"),
		"tree/sub/big.bin": big,
		"site.star": []byte(fmt.Sprintf(`
def main(host):
    file(%q, source = "files/big.bin")
    copy(%q, source = "tree")
role("local", main = main)
`, filepath.Join(dest, "big.bin"), filepath.Join(dest, "tree"))),
	}
	for name, b := range files {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	pol, err := policy.Load(filepath.Join(dir, "site.star"), policy.LoadOptions{})
	must(t, err)
	for round, wantChanged := range []int{2, 0} {
		p, sources, err := pol.PlanWithSources(pol.Roles[0], policy.Host{Name: "localhost"})
		must(t, err)
		if len(p.Files) != 1 {
			t.Fatalf("plan files = %v, want the big file by reference", p.Files)
		}
		res, err := engine.Run(context.Background(), p, engine.Options{StateDir: t.TempDir(), Fetch: fileserver.NewIndex(sources, nil).Fetch})
		must(t, err)
		if res.Failed || res.Counts.Changed != wantChanged {
			t.Fatalf("round %d: %+v, want changed=%d", round, res, wantChanged)
		}
	}
	for name, want := range map[string][]byte{"big.bin": big, "tree/a.conf": []byte("a\n"), "tree/sub/big.bin": big} {
		got, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v", name, len(got), err)
		}
	}
}
