package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// project writes files (path → content) under a fresh directory; files
// ending in ".sh" are made executable.
func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadFiles writes files and loads the inventory named main among them.
func loadFiles(t *testing.T, main string, files map[string]string) *Inventory {
	t.Helper()
	dir := project(t, files)
	inv, err := Load(filepath.Join(dir, main))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return inv
}

func mustHost(t *testing.T, inv *Inventory, name string) *Host {
	t.Helper()
	h, ok := inv.Host(name)
	if !ok {
		t.Fatalf("host %s not in inventory (have %v)", name, hostNames(inv.Hosts()))
	}
	return h
}

func hostNames(hs []*Host) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

func group(inv *Inventory, name string) *Group {
	for _, g := range inv.Groups() {
		if g.Name == name {
			return g
		}
	}
	return nil
}

func assertVars(t *testing.T, h *Host, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if got, ok := h.Vars[k]; !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %s = %#v, want %#v", h.Name, k, got, w)
		}
	}
}
