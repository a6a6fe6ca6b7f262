package inventory

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteList writes the inventory as `ansible-inventory --list` does: every
// group with hosts or children as {"hosts": [...], "children": [...]} in
// file order ("all" shows only its children), and _meta.hostvars with each
// host's merged vars (hosts without vars left out). Secrets are masked
// (MaskedVars): the output lands in tickets and CI logs.
func WriteList(inv *Inventory, w io.Writer) error {
	type group struct {
		Hosts    []string `json:"hosts,omitempty"`
		Children []string `json:"children,omitempty"`
	}
	out := map[string]any{}
	for _, g := range inv.groups {
		e := group{Hosts: g.Hosts, Children: g.Children}
		if g.Name == "all" {
			e.Hosts = nil
		}
		if len(e.Hosts) > 0 || len(e.Children) > 0 {
			out[g.Name] = e
		}
	}
	hostvars := map[string]any{}
	for _, h := range inv.hosts {
		if len(h.Vars) > 0 {
			hostvars[h.Name] = inv.MaskedVars(h)
		}
	}
	out["_meta"] = map[string]any{"hostvars": hostvars}
	return writeJSON(w, out)
}

// WriteHost writes one host's merged vars as `ansible-inventory --host`
// does, secrets masked.
func WriteHost(inv *Inventory, name string, w io.Writer) error {
	h, ok := inv.Host(name)
	if !ok {
		return fmt.Errorf("host %q is not in inventory %s", name, inv.Source)
	}
	return writeJSON(w, inv.MaskedVars(h))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
