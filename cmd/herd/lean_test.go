package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/lab"
)

// herdRun runs a built herd with HOME in a fresh directory.
func herdRun(t *testing.T, dir, home string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "herd"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("herd %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// A herd-agent built with herd sits beside it: herd agents lists it as what
// this architecture gets, apply installs it (not herd) on the targets, and
// a herd-agent that is not this build's is refused with one line naming
// the file, exit 2, before any host is contacted.
func TestLeanAgentBesideHerdIsShippedAndAForeignOneRefused(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/herd", "./cmd/herd-agent")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lean := filepath.Join(dir, "herd-agent")
	raw, err := os.ReadFile(lean)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	home := t.TempDir()

	out, errOut, code := herdRun(t, dir, home, "agents")
	row := regexp.MustCompile(`(?m)^` + runtime.GOARCH + ` .* lean +` + hash + ` +\d+ +\d+  ` + regexp.QuoteMeta(lean) + `$`)
	if code != 0 || !row.MatchString(out) {
		t.Fatalf("herd agents: exit %d, stdout:\n%s\nstderr: %s\nwant a lean row for %s", code, out, errOut, lean)
	}

	var l *lab.Lab
	if ok, why := lab.Available(); ok {
		if l, err = getLab(); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "site.star"), []byte(`
inv = inventory("inventory.toml")
def main(host):
    file("/etc/herd-lean-test", content = "lean\n")
role("lean", hosts = inv.hosts, main = main)
`), 0o644)
		os.WriteFile(filepath.Join(dir, "inventory.toml"), []byte("[groups.lean.hosts]\n\"host1\" = \"\"\n"), 0o644)
		out, errOut, code = herdRun(t, dir, home, "apply", "site.star", "--ssh-config", l.SSHConfig)
		if code != 0 {
			t.Fatalf("apply with the lean agent: exit %d\n%s\n%s", code, out, errOut)
		}
		got, err := l.Host("host1").ReadFile("/root/.cache/herd/" + hash + "/herd")
		if err != nil || string(got) != string(raw) {
			t.Fatalf("host1 does not run the lean agent from its cache (%v)", err)
		}
		os.Remove(l.Host("host1").Path("/etc/herd-lean-test"))
	} else {
		t.Logf("apply part skipped: %s", why)
	}

	herd, _ := os.ReadFile(filepath.Join(dir, "herd"))
	for _, tc := range []struct {
		name  string
		bytes []byte
		want  string
	}{
		{"herd itself, not herd-agent", herd, "not a herd agent build"},
		{"not a Go binary", []byte("#!/bin/sh\nexec herd \"$@\"\n"), "not a Go binary"},
	} {
		os.Remove(lean)
		if err := os.WriteFile(lean, tc.bytes, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"agents"}, {"apply", "site.star", "--ssh-config", "none"}} {
			if l != nil && args[0] == "apply" {
				args[3] = l.SSHConfig
			}
			out, errOut, code := herdRun(t, dir, home, args...)
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], lean+": belongs to another herd build") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("%s: herd %s: exit %d, stderr %q, want exit 2 and one line naming %s (%s)\n%s", tc.name, args[0], code, errOut, lean, tc.want, out)
			}
		}
		if l != nil {
			if _, err := l.Host("host1").ReadFile("/etc/herd-lean-test"); err == nil {
				t.Errorf("%s: host1 was changed by a refused run", tc.name)
			}
		}
	}
}
