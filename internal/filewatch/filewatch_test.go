package filewatch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The watch reports a change of any input, once per save, and ignores
// editor droppings: files under the policy's directory (also in a
// directory made after the watch began), and inputs elsewhere: a file, a
// hidden-named file, a directory tree, and paths that do not exist yet
// (a group_vars/ made later, a file two missing directories down).
func TestWatchReportsEveryInput(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	inv := filepath.Join(elsewhere, "hosts.toml")
	hidden := filepath.Join(elsewhere, ".env")
	tree := filepath.Join(elsewhere, "tree")
	groupVars := filepath.Join(elsewhere, "group_vars")
	deep := filepath.Join(elsewhere, "a", "b", "deep.yml")
	for _, f := range []string{inv, hidden, filepath.Join(elsewhere, "unrelated"), filepath.Join(tree, "sub", "f")} {
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, []byte("x"), 0o644)
	}
	defer func(d time.Duration) { Debounce = d }(Debounce)
	Debounce = 120 * time.Millisecond
	w, err := New(dir, []string{inv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	dotInv := filepath.Join(dir, ".private", "hosts.ini")
	os.MkdirAll(filepath.Dir(dotInv), 0o755)
	w.Add(hidden, tree, groupVars, deep, dotInv) // as planning reads them
	drain := func() {
		<-time.After(Debounce * 3 / 2)
		select {
		case <-w.Changes():
		default:
		}
	}
	write := func(p string) func() {
		return func() {
			os.MkdirAll(filepath.Dir(p), 0o755)
			time.Sleep(30 * time.Millisecond) // a new directory is added on its create event
			os.WriteFile(p, []byte(time.Now().String()), 0o644)
		}
	}
	for _, tc := range []struct {
		what  string
		write func()
		want  string
	}{
		{"policy", write(filepath.Join(dir, "site.star")), "site.star"},
		{"swap file", write(filepath.Join(dir, ".site.star.swp")), ""},
		{"backup", write(filepath.Join(dir, "site.star~")), ""},
		{"template in a new directory", write(filepath.Join(dir, "templates", "app.tmpl")), "app.tmpl|templates"},
		{"inventory elsewhere", write(inv), "hosts.toml"},
		{"hidden input elsewhere", write(hidden), ".env"},
		{"unrelated file next to the inventory", write(filepath.Join(elsewhere, "unrelated")), ""},
		{"input in a hidden directory of the policy's", write(dotInv), "hosts.ini"},
		{"other file in that hidden directory", write(filepath.Join(dir, ".private", "notes")), ""},
		{"file deep in a served tree", write(filepath.Join(tree, "sub", "f")), "f"},
		{"new file in a new directory of a served tree", write(filepath.Join(tree, "new", "g")), "g|new"},
		{"group_vars made after the watch began", write(filepath.Join(groupVars, "web.yml")), "web.yml|group_vars"},
		{"file under two directories made later", write(deep), "deep.yml|a|b"},
	} {
		tc.write()
		select {
		case got := <-w.Changes():
			if tc.want == "" {
				t.Fatalf("%s: reported %q, want nothing", tc.what, got)
			}
			// A new directory's own event may be the last one of the save
			// when the file in it was written before its watch was added;
			// the re-plan reads everything anew, so either name will do.
			if !slices.Contains(strings.Split(tc.want, "|"), got) {
				t.Fatalf("%s: reported %q, want %q", tc.what, got, tc.want)
			}
		case <-time.After(3 * Debounce):
			if tc.want != "" {
				t.Fatalf("%s: not reported", tc.what)
			}
		}
		drain()
	}
}
