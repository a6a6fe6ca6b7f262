package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// TestCheckExecuted: the cached path may be the running file, or an
// identical copy a concurrent install renamed over it; anything else is a
// wrapper and is refused.
func TestCheckExecuted(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	want := plan.Hash(self)
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "herd")
	if err := os.WriteFile(copyPath, self, 0o700); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "wrapper")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec /elsewhere/herd \"$@\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		ok         bool
	}{
		{"the running file", exe, true},
		{"an identical copy installed over the path", copyPath, true},
		{"a wrapper at the path", wrapper, false},
		{"nothing at the path", filepath.Join(dir, "missing"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkExecuted(c.path, want)
			if (err == nil) != c.ok {
				t.Fatalf("checkExecuted(%s) = %v, want ok=%v", c.path, err, c.ok)
			}
		})
	}
}
