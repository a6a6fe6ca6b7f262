package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/lab"
)

func TestUpStatusDown(t *testing.T) {
	if ok, why := lab.Available(); !ok {
		t.Skip("lab: " + why)
	}
	name := fmt.Sprintf("cli%d", os.Getpid())
	steps := []struct {
		args []string
		want []string // substrings of the output, in any order
	}{
		{[]string{"up", "-name", name, "-flat", "1", "-bastion", "-rack", "1"}, []string{"host1", "bastion", "rack1", "ssh -i ", "passwords:", "herd-lab down -name " + name}},
		{[]string{"status", "-name", name}, []string{"lab " + name + ": up", "rack1 "}},
		{[]string{"down", "-name", name}, []string{"lab " + name + ": down"}},
		{[]string{"down", "-name", name}, []string{"lab " + name + ": not up"}},
	}
	defer run([]string{"down", "-name", name}, &bytes.Buffer{})
	for _, s := range steps {
		var out bytes.Buffer
		if err := run(s.args, &out); err != nil {
			t.Fatalf("herd-lab %s: %v\n%s", strings.Join(s.args, " "), err, out.String())
		}
		for _, w := range s.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("herd-lab %s: output lacks %q:\n%s", strings.Join(s.args, " "), w, out.String())
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frob"}, {"up", "1", "2"}, {"up", "many"}} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("herd-lab %q: no error", args)
		}
	}
}
