package inventory

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Options change how LoadSources reads inventories.
type Options struct {
	// PlaybookDir is the policy file's directory: its group_vars/ and
	// host_vars/ apply on top of the inventory's, as Ansible applies a
	// playbook directory's.
	PlaybookDir string
	// Vault decrypts !vault values and vault-encrypted vars files; nil
	// makes either an error naming the file and line.
	Vault *Vault
}

// ignoredInDir are the directory entries Ansible skips when an inventory
// source is a directory: hidden files, vars directories, and the
// extensions of INVENTORY_IGNORE_EXTS.
var ignoredInDir = regexp.MustCompile(`^\.|^host_vars$|^group_vars$|^vars_plugins$|` +
	`(\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.ini|\.cfg|\.retry)$`)

// LoadSources reads several inventory sources into one inventory, as
// repeated `ansible -i` options do: sources in order, a directory's entries
// sorted by name (recursively, skipping what Ansible skips), and the
// group_vars/ and host_vars/ beside each source (inside it, for a
// directory) with later sources winning. Then o.PlaybookDir's vars apply.
func LoadSources(ctx context.Context, paths []string, o Options) (*Inventory, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("inventory: no source given")
	}
	b := newBuilder()
	b.vault = o.Vault
	var varsDirs []string
	for _, path := range paths {
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		if st.IsDir() {
			varsDirs = append(varsDirs, path)
			n, err := b.parseDir(ctx, path)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, fmt.Errorf("inventory: %s is a directory with no inventory file in it (as Ansible, herd skips *.ini, *.cfg, *.md, *.txt, … there: name such a file with -i)", path)
			}
			continue
		}
		varsDirs = append(varsDirs, filepath.Dir(path))
		if err := b.parseFile(ctx, path, st); err != nil {
			return nil, err
		}
	}
	inv, err := b.resolve(varsDirs, o.PlaybookDir)
	if err != nil {
		return nil, err
	}
	src := strings.Join(paths, ",")
	if err := CheckVia(inv.hosts, inv.Host, true); err != nil {
		return nil, fmt.Errorf("inventory %s: %w", src, err)
	}
	inv.Source = src
	inv.Inputs = inputs(paths, varsDirs, o.PlaybookDir)
	inv.vault = o.Vault
	inv.warnings = varWarnings(src, inv.hosts)
	return inv, nil
}

// parseDir parses every inventory file under dir in name order, and
// counts them.
func (b *builder) parseDir(ctx context.Context, dir string) (n int, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("inventory: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if ignoredInDir.MatchString(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			return n, fmt.Errorf("inventory: %w", err)
		}
		if st.IsDir() {
			var m int
			m, err = b.parseDir(ctx, p)
			n += m
		} else {
			err = b.parseFile(ctx, p, st)
			n++
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// inputs lists the paths an inventory read: its sources and each vars
// directory (Inventory.Inputs).
func inputs(sources, varsDirs []string, playbookDir string) []string {
	out := append([]string(nil), sources...)
	if playbookDir != "" {
		varsDirs = append(varsDirs, playbookDir)
	}
	for _, d := range varsDirs {
		out = append(out, filepath.Join(d, "group_vars"), filepath.Join(d, "host_vars"))
	}
	for i, p := range out {
		if abs, err := filepath.Abs(p); err == nil {
			out[i] = abs
		}
	}
	return out
}
