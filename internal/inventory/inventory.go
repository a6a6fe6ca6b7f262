package inventory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// DefaultScriptTimeout bounds a dynamic inventory script when the caller's
// context has no deadline: a hung cloud API must not hang herd forever.
const DefaultScriptTimeout = 60 * time.Second

// Inventory is the resolved set of hosts and groups: every host's vars are
// already merged in precedence order, so callers never re-implement it.
type Inventory struct {
	// Source is the path the inventory was loaded from.
	Source string
	// Inputs are the paths the inventory depends on: its sources (files or
	// directories) and the group_vars/ and host_vars/ directories it read
	// or would read, existing or not (vault-encrypted vars files live
	// there). herd watch re-reads the inventory when one changes.
	Inputs []string
	hosts  []*Host
	byName map[string]*Host
	groups []*Group
	// warnings, see Warnings.
	warnings []string
	// vault decrypted this inventory's vault values (nil: none).
	vault *Vault
}

// Host is one target with its merged variables.
type Host struct {
	Name string
	// Vars are the merged variables, magic ones included (herd_host, …), so
	// templates can still read them.
	Vars map[string]any
	// Groups lists every group the host belongs to, directly or through a
	// parent, "all" included, in precedence order: "all" first, then by
	// depth, priority and name — the order in which their vars were applied.
	Groups []string
	// Conn is how to reach the host, read from the magic variables.
	Conn Conn
}

// Group is a named set of hosts and child groups.
type Group struct {
	Name string
	// Hosts are the hosts declared directly in this group, in file order.
	Hosts []string
	// Children are the direct child groups, in file order.
	Children []string
	// Vars are the group's own variables: inventory-file vars overlaid with
	// its group_vars/ files. They do not include parents' vars.
	Vars map[string]any
	// Depth is the longest distance from "all" (which has depth 0); deeper
	// groups' vars win.
	Depth int
}

// LoadWith reads an inventory file with Options (policy directory vars,
// vault). The format is chosen from the path: *.toml is herd's TOML layout;
// an executable file is a dynamic inventory run with --list (it must start
// with #! or be an ELF binary); *.yml, *.yaml and *.json are Ansible YAML
// inventories; anything else is an Ansible INI inventory (unless its first
// line is plainly YAML). group_vars/ and host_vars/ directories beside the
// file are read for every format. LoadSources takes a context bounding
// dynamic inventory scripts (without a deadline, DefaultScriptTimeout).
func LoadWith(path string, o Options) (*Inventory, error) {
	return LoadSources(context.Background(), []string{path}, o)
}

// parseFile reads one inventory source file into b, choosing the format
// from the path (see LoadWith).
func (b *builder) parseFile(ctx context.Context, path string, st os.FileInfo) error {
	var err error
	ext := strings.ToLower(filepath.Ext(path))
	switch {
	case ext == ".toml":
		err = b.parseTOMLFile(path)
	case st.Mode()&0o111 != 0 && isProgram(path):
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, DefaultScriptTimeout)
			defer cancel()
		}
		err = b.runScript(ctx, path)
	case ext == ".yml" || ext == ".yaml" || ext == ".json":
		err = b.parseYAMLFile(path)
	default:
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return fmt.Errorf("inventory: %w", rerr)
		}
		if data, err = b.vault.decryptFile(path, data); err != nil {
			return err
		}
		if looksLikeYAML(data) {
			err = b.parseYAML(path, data)
		} else {
			err = b.parseINI(path, data)
		}
	}
	return err
}

// isProgram tells a dynamic inventory from a data file that merely has an
// executable bit (common after copying from some file systems): it must
// start with "#!" or be an ELF binary.
func isProgram(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	return bytes.HasPrefix(head, []byte("#!")) || bytes.Equal(head, []byte("\x7fELF"))
}

// Hosts returns every host in the order the inventory first declared it
// (dynamic inventories: groups by name, hosts in list order).
func (inv *Inventory) Hosts() []*Host { return append([]*Host(nil), inv.hosts...) }

// Groups returns every group, "all" and "ungrouped" first, then in the order
// the inventory first mentioned them.
func (inv *Inventory) Groups() []*Group { return append([]*Group(nil), inv.groups...) }

// Host looks a host up by its inventory name.
func (inv *Inventory) Host(name string) (*Host, bool) {
	h, ok := inv.byName[name]
	return h, ok
}

// Filter selects hosts, in Hosts order. A host is selected when
//
//	(groups is empty, or one of its groups — parents and "all" included —
//	 matches one of the group patterns)
//	AND
//	(hosts is empty, or its name matches one of the host patterns).
//
// So patterns within one list widen the selection and the two lists narrow
// each other: Filter([]string{"web*"}, []string{"*.east"}) is the east web
// servers. Patterns use path.Match syntax (*, ?, [a-z], \ escapes); "*"
// matches everything. A malformed pattern matches only the identical name;
// use CheckPattern to report it to the user.
func (inv *Inventory) Filter(groups, hosts []string) []*Host {
	var out []*Host
	for _, h := range inv.hosts {
		if len(groups) > 0 && !anyMatch(groups, h.Groups...) {
			continue
		}
		if len(hosts) > 0 && !anyMatch(hosts, h.Name) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// CheckPattern reports whether p is a valid Filter pattern.
func CheckPattern(p string) error {
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("invalid pattern %q: %w", p, err)
	}
	return nil
}

func anyMatch(patterns []string, names ...string) bool {
	for _, p := range patterns {
		for _, n := range names {
			if matchPattern(p, n) {
				return true
			}
		}
	}
	return false
}

func matchPattern(p, name string) bool {
	if p == "*" || p == name {
		return true
	}
	ok, err := path.Match(p, name)
	return err == nil && ok
}
