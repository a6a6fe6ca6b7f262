package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/herd-project/herd/internal/examples"
)

// newDemoCmd is `herd demo [DIR]`.
func newDemoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "demo [DIR]",
		Short:             "apply the embedded demo policy twice under DIR (default: a new temp dir)",
		Args:              optionalDir,
		ValidArgsFunction: completeDirs,
		Run: func(cmd *cobra.Command, args []string) {
			in, end := watchInterrupts(a.stderr)
			defer end()
			a.code = runDemo(in, args, a.stdout, a.stderr)
		},
	}
}

// runDemo unpacks the embedded demo policy and applies it twice in local
// mode under one directory, so a new user sees a first run that changes
// things and a second that changes nothing, without touching anything else.
func runDemo(in *interrupts, args []string, stdout, stderr io.Writer) int {
	dir := ""
	if len(args) == 1 {
		dir = args[0]
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintf(stderr, "herd demo: %v\n", err)
			return exitUsage
		}
	} else {
		d, err := os.MkdirTemp("", "herd-demo-")
		if err != nil {
			fmt.Fprintf(stderr, "herd demo: %v\n", err)
			return exitUsage
		}
		dir = d
	}
	dir, _ = filepath.Abs(dir)
	polDir := filepath.Join(dir, "policy")
	sub, _ := fs.Sub(examples.Demo, "demo")
	if err := os.CopyFS(polDir, sub); err != nil && !os.IsExist(err) {
		fmt.Fprintf(stderr, "herd demo: unpack policy: %v\n", err)
		return exitUsage
	}
	site := filepath.Join(polDir, "site.star")
	f := policyFlags{vars: varsFlag{"root": filepath.Join(dir, "root")}, stateDir: filepath.Join(dir, "state"), parallel: 4, diff: true}
	for i, title := range []string{"first apply: creates everything", "second apply: nothing to change"} {
		fmt.Fprintf(stdout, "== %s\n", title)
		if code := runLocal(in, site, false, f, stdout, stderr); code != exitOK {
			return code
		}
		if i == 0 {
			fmt.Fprintln(stdout)
		}
	}
	fmt.Fprintf(stdout, "\nThe demo wrote only under %s.\nTry: edit %s/root/etc/app/app.conf, then\n  herd check %s --local --diff -e root=%s/root --state-dir %s/state\n",
		dir, dir, site, dir, dir)
	return exitOK
}
