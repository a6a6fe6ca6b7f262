package inventory

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// varsExtensions are the names Ansible's host_group_vars plugin reads: the
// bare name, or with a YAML/JSON extension.
var varsExtensions = []string{"", ".yml", ".yaml", ".json"}

// readVarsDirs loads group_vars/<group> and host_vars/<host> beside the
// inventory. Each may be a file (with or without extension) or a directory
// whose files are merged in lexical order, recursively, as Ansible does.
func (b *builder) readVarsDirs(dir string) error {
	for _, name := range b.groupOrder {
		if err := readVars(filepath.Join(dir, "group_vars"), name, b.groups[name].fileVars); err != nil {
			return err
		}
	}
	for _, name := range b.hostOrder {
		if err := readVars(filepath.Join(dir, "host_vars"), name, b.hosts[name].fileVars); err != nil {
			return err
		}
	}
	return nil
}

func readVars(dir, name string, into map[string]any) error {
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return nil // never let an inventory name reach outside the vars dir
	}
	for _, ext := range varsExtensions {
		p := filepath.Join(dir, name+ext)
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if st.IsDir() {
			if err := readVarsDir(p, into); err != nil {
				return err
			}
			continue
		}
		if err := readVarsFile(p, into); err != nil {
			return err
		}
	}
	return nil
}

func readVarsDir(dir string, into map[string]any) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") {
			continue
		}
		p := filepath.Join(dir, n)
		if e.IsDir() {
			if err := readVarsDir(p, into); err != nil {
				return err
			}
			continue
		}
		ext := filepath.Ext(n)
		if ext != "" && ext != ".yml" && ext != ".yaml" && ext != ".json" {
			continue
		}
		if err := readVarsFile(p, into); err != nil {
			return err
		}
	}
	return nil
}

func readVarsFile(p string, into map[string]any) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	vars, err := decodeVarsFile(p, data)
	if err != nil {
		return err
	}
	merge(into, vars)
	return nil
}
