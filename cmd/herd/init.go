package main

import (
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// starter is the project herd init writes: a policy, an inventory, a
// template and a commented defaults.toml. TestScripts/init proves that
// herd check --local accepts it as written.
//
//go:embed starter
var starter embed.FS

// newInitCmd is `herd init [DIR]`.
func newInitCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "init [DIR]",
		Short:             "write a starter project (site.star, inventory.toml, templates/, defaults.toml) into DIR (default .)",
		Args:              optionalDir,
		ValidArgsFunction: completeDirs,
		Run: func(cmd *cobra.Command, args []string) {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			a.code = runInit(dir, a.stdout, a.stderr)
		},
	}
}

// runInit writes the starter files under dir. It overwrites nothing: if
// any of them exists it names it and writes none.
func runInit(dir string, stdout, stderr io.Writer) int {
	sub, _ := fs.Sub(starter, "starter")
	var files []string
	fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	for _, f := range files {
		dest := filepath.Join(dir, f)
		if _, err := os.Lstat(dest); err == nil {
			fmt.Fprintf(stderr, "herd init: %s exists; not overwriting it (nothing was written)\n", dest)
			return exitUsage
		}
	}
	for _, f := range files {
		dest := filepath.Join(dir, f)
		data, _ := fs.ReadFile(sub, f)
		if err := writeNew(dest, data); err != nil {
			fmt.Fprintf(stderr, "herd init: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "wrote %s\n", dest)
	}
	fmt.Fprintf(stdout, "next: herd check %s --local --diff   (then herd doc for the resource kinds)\n", filepath.Join(dir, "site.star"))
	return exitOK
}

// writeNew creates path (and its directory) only if it does not exist yet,
// so a file that appeared since the check is still not overwritten.
func writeNew(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// optionalDir accepts the one optional DIR argument of demo and init.
func optionalDir(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("at most one directory")
	}
	return nil
}

// completeDirs completes DIR with directories only.
func completeDirs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}
