package main

import (
	"bytes"
	"strings"
	"testing"
)

// Bad flags are refused before any lab is made, with a message naming the
// flag and what it accepts.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-scenarios", "lan3"}, `-scenarios: unknown scenario "lan3" (known: lan1, lan20, wan1, wan20)`},
		{[]string{"-tools", "puppet"}, `-tools: unknown tool "puppet" (known: herd, ansible, mitogen)`},
		{[]string{"-steps", "0"}, "-steps must be at least 1"},
		{[]string{"-scenarios", "s4", "-hosts", "0"}, "-hosts must be 1 to 4000"},
		{[]string{"-scenarios", "s4", "-subsets", "x"}, `-subsets: "x" is not a host count`},
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: stderr %q, want it to say %q", tc.args, errOut.String(), tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: printed %q on stdout", tc.args, out.String())
		}
	}
}
