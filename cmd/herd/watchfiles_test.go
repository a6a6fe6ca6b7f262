package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The controller's file watch reports a change of any file the policy may
// read (also in a directory made after the watch began, and an inventory
// outside the policy's directory), once per save, and ignores editor
// droppings.
func TestFileWatchReportsPolicyFiles(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	inv := filepath.Join(elsewhere, "hosts.toml")
	os.WriteFile(inv, []byte("x"), 0o644)
	os.WriteFile(filepath.Join(elsewhere, "unrelated"), []byte("x"), 0o644)
	w, err := newFileWatch(dir, []string{inv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	expect := func(what string, write func(), want string) {
		t.Helper()
		write()
		select {
		case got := <-w.out:
			if want == "" {
				t.Fatalf("%s: reported %q, want nothing", what, got)
			}
			if got != want {
				t.Fatalf("%s: reported %q, want %q", what, got, want)
			}
		case <-time.After(3 * watchDebounce):
			if want != "" {
				t.Fatalf("%s: not reported", what)
			}
		}
	}
	write := func(p string) func() { return func() { os.WriteFile(p, []byte(time.Now().String()), 0o644) } }
	expect("policy", write(filepath.Join(dir, "site.star")), "site.star")
	expect("swap file", write(filepath.Join(dir, ".site.star.swp")), "")
	expect("backup", write(filepath.Join(dir, "site.star~")), "")
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	time.Sleep(50 * time.Millisecond) // the new directory is added on its create event
	<-time.After(2 * watchDebounce)
	select { // the mkdir itself may have been reported
	case <-w.out:
	default:
	}
	expect("template in a new directory", write(filepath.Join(dir, "templates", "app.tmpl")), "app.tmpl")
	expect("inventory elsewhere", write(inv), "hosts.toml")
	expect("unrelated file next to the inventory", write(filepath.Join(elsewhere, "unrelated")), "")
}
