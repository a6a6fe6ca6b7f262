package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/resource"
)

// herd doc KIND prints every parameter of the kind's schema with a doc
// line: a parameter added to a kind without words fails here.
func TestDocPrintsEveryParameter(t *testing.T) {
	for _, kind := range resource.Kinds() {
		var out, errb bytes.Buffer
		if code := run([]string{"doc", kind}, &out, &errb); code != exitOK {
			t.Fatalf("herd doc %s: exit %d: %s", kind, code, errb.String())
		}
		s, _ := resource.Lookup(kind)
		lines := strings.Split(out.String(), "\n")
		for _, p := range s.Params {
			i := indexPrefix(lines, "  "+p.Name+" (")
			if i < 0 {
				t.Errorf("herd doc %s: no entry for parameter %q", kind, p.Name)
				continue
			}
			if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) == "" || !strings.HasPrefix(lines[i+1], "      ") {
				t.Errorf("herd doc %s: parameter %q has no doc", kind, p.Name)
			}
		}
	}
	// The index names every builtin.
	var out bytes.Buffer
	run([]string{"doc"}, &out, &out)
	for _, b := range policy.ResourceBuiltins() {
		if !strings.Contains(out.String(), "\n  "+b+" ") {
			t.Errorf("herd doc does not list %s", b)
		}
	}
}

func indexPrefix(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}
