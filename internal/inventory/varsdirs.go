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
// playbook selects the policy directory's layer (Options.PlaybookDir).
func (b *builder) readVarsDirs(dir string, playbook bool) error {
	for _, name := range b.groupOrder {
		into := b.groups[name].fileVars
		if playbook {
			into = b.groups[name].pbVars
		}
		if err := b.readVars(filepath.Join(dir, "group_vars"), name, into); err != nil {
			return err
		}
	}
	for _, name := range b.hostOrder {
		into := b.hosts[name].fileVars
		if playbook {
			into = b.hosts[name].pbVars
		}
		if err := b.readVars(filepath.Join(dir, "host_vars"), name, into); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) readVars(dir, name string, into map[string]any) error {
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
			if err := b.readVarsDir(p, into); err != nil {
				return err
			}
			continue
		}
		if err := b.readVarsFile(p, into); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) readVarsDir(dir string, into map[string]any) error {
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
			if err := b.readVarsDir(p, into); err != nil {
				return err
			}
			continue
		}
		ext := filepath.Ext(n)
		if ext != "" && ext != ".yml" && ext != ".yaml" && ext != ".json" {
			continue
		}
		if err := b.readVarsFile(p, into); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) readVarsFile(p string, into map[string]any) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if data, err = b.vault.decryptFile(p, data); err != nil {
		return err
	}
	vars, err := decodeVarsFile(p, data, b.vault)
	if err != nil {
		return err
	}
	merge(into, vars)
	return nil
}
