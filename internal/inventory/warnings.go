package inventory

import (
	"fmt"
	"slices"
	"strings"
)

// otherKnownVars are herd_* and opsmop_* names read outside Conn.
var otherKnownVars = map[string]bool{
	"herd_via_mode": true,
	// connection kinds (transport/connkinds.go)
	"herd_connection_tool": true, "herd_home": true, "herd_chroot_dir": true, "herd_netns": true,
	"herd_setns_pid": true, "herd_lxd_remote": true, "herd_kubectl_container": true,
	"herd_kubectl_context": true, "herd_kubectl_namespace": true,
}

// ignoredVars are names from the tools herd replaces that mean nothing to
// herd; setting one gets a warning instead of silence.
var ignoredVars = map[string]string{
	"opsmop_python_path": "herd needs no Python on targets",
}

// knownVar reports whether herd reads name.
func knownVar(name string) bool {
	if otherKnownVars[name] {
		return true
	}
	for _, m := range magicVars {
		if slices.Contains(m.names, name) {
			return true
		}
	}
	return false
}

// varWarnings names every herd_* or opsmop_* variable herd does not read
// (a typo such as herd_usr would otherwise fall back to a default
// silently), once per name with the first host that has it.
func varWarnings(source string, hosts []*Host) []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range hosts {
		var keys []string
		for k := range h.Vars {
			if (strings.HasPrefix(k, "herd_") || strings.HasPrefix(k, "opsmop_")) && !knownVar(k) && !seen[k] {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			seen[k] = true
			why := ignoredVars[k]
			if why == "" {
				why = "unknown variable, ignored (herd reads " + strings.Join(knownNames(k[:strings.Index(k, "_")+1]), ", ") + ")"
			} else {
				why = "ignored: " + why
			}
			out = append(out, fmt.Sprintf("inventory %s: host %s: %s: %s", source, h.Name, k, why))
		}
	}
	return out
}

func knownNames(prefix string) []string {
	var out []string
	for _, m := range magicVars {
		for _, n := range m.names {
			if strings.HasPrefix(n, prefix) {
				out = append(out, n)
			}
		}
	}
	for n := range otherKnownVars {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Warnings are problems that do not stop a run, such as variables herd
// does not read; print them before anything connects.
func (inv *Inventory) Warnings() []string { return slices.Clone(inv.warnings) }
