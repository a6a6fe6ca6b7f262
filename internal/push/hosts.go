package push

import (
	"fmt"
	"path"
	"slices"

	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
)

// CheckHosts looks at every role's hosts before anything is contacted. A
// --limit-hosts or --limit-groups pattern that matches no host of any role
// is an error: it is almost always a typo, and running nothing (or, with
// several patterns, less than meant) while exiting 0 hides it. A role whose
// own selection is empty only gets a warning, since an inventory may
// legitimately have no host in a group yet. Errors from resolving the
// hosts themselves are returned as hostsOf returns them.
func CheckHosts(pol *policy.Policy, inv *inventory.Inventory, lim Limit) (warnings []string, err error) {
	for _, i := range append([]*inventory.Inventory{inv}, policy.Inventories(pol)...) {
		if i != nil {
			warnings = append(warnings, i.Warnings()...)
		}
	}
	var all []*inventory.Host
	for _, role := range pol.Roles {
		hosts, ok, err := policy.RoleHosts(role)
		if err != nil {
			return nil, err
		}
		if !ok {
			if _, err := hostsOf(role, inv, Limit{}); err != nil {
				return nil, err
			}
			hosts = inv.Hosts()
		}
		if len(hosts) == 0 {
			warnings = append(warnings, fmt.Sprintf("%s: role %q selects no hosts; it runs nowhere", role.Pos, role.Name))
		}
		all = append(all, hosts...)
	}
	if err := checkConns(all); err != nil {
		return warnings, err
	}
	for _, p := range append(append([]string{}, lim.Hosts...), lim.Groups...) {
		if _, err := path.Match(p, ""); err != nil {
			return warnings, fmt.Errorf("--limit pattern %q: %v", p, err)
		}
	}
	if lim.Pattern != nil && !slices.ContainsFunc(all, func(h *inventory.Host) bool { return lim.Pattern.Match(h, lim.IsGroup) }) {
		return warnings, fmt.Errorf("--limit %q matches no host of any role", lim.Pattern.Source)
	}
	if p := unmatched(lim.Hosts, all, func(h *inventory.Host) []string { return []string{h.Name} }); p != "" {
		return warnings, fmt.Errorf("--limit-hosts %q matches no host of any role", p)
	}
	if p := unmatched(lim.Groups, all, func(h *inventory.Host) []string { return h.Groups }); p != "" {
		return warnings, fmt.Errorf("--limit-groups %q matches no group of any role's hosts", p)
	}
	return warnings, nil
}

// unmatched returns the first pattern that matches none of the names of
// hosts, or "".
func unmatched(patterns []string, hosts []*inventory.Host, names func(*inventory.Host) []string) string {
	for _, p := range patterns {
		found := false
		for _, h := range hosts {
			if anyMatch([]string{p}, names(h)...) {
				found = true
				break
			}
		}
		if !found {
			return p
		}
	}
	return ""
}

// hostsOf resolves a role's hosts: the role's own selection, else the
// command line inventory, narrowed by --limit-groups/--limit-hosts.
func hostsOf(role *policy.Role, inv *inventory.Inventory, lim Limit) ([]*inventory.Host, error) {
	hosts, ok, err := policy.RoleHosts(role)
	if err != nil {
		return nil, err
	}
	if !ok {
		if inv == nil {
			return nil, fmt.Errorf("%s: role %q names no hosts and no inventory was given (use hosts=inventory(...).filter(...) or -i FILE)", role.Pos, role.Name)
		}
		hosts = inv.Hosts()
	}
	var out []*inventory.Host
	for _, h := range hosts {
		if matchLimit(h, lim) {
			out = append(out, h)
		}
	}
	return out, nil
}

func matchLimit(h *inventory.Host, lim Limit) bool {
	if lim.Pattern != nil && !lim.Pattern.Match(h, lim.IsGroup) {
		return false
	}
	if len(lim.Hosts) > 0 && !anyMatch(lim.Hosts, h.Name) {
		return false
	}
	if len(lim.Groups) > 0 {
		for _, g := range h.Groups {
			if anyMatch(lim.Groups, g) {
				return true
			}
		}
		return false
	}
	return true
}

func anyMatch(patterns []string, names ...string) bool {
	for _, p := range patterns {
		for _, s := range names {
			if ok, _ := path.Match(p, s); ok {
				return true
			}
		}
	}
	return false
}

// RoleHosts is one role's hosts after the limit, for --list-hosts.
type RoleHosts struct {
	Role  string
	Hosts []string
}

// ListHosts returns, for every role in order, the hosts it would run on.
func ListHosts(pol *policy.Policy, inv *inventory.Inventory, lim Limit) ([]RoleHosts, error) {
	var out []RoleHosts
	for _, role := range pol.Roles {
		hs, err := hostsOf(role, inv, lim)
		if err != nil {
			return nil, err
		}
		rh := RoleHosts{Role: role.Name, Hosts: []string{}}
		for _, h := range hs {
			rh.Hosts = append(rh.Hosts, h.Name)
		}
		out = append(out, rh)
	}
	return out, nil
}

// IsGroupIn reports whether name is a group of any of invs (nil ones
// skipped), for Limit.IsGroup.
func IsGroupIn(invs ...*inventory.Inventory) func(string) bool {
	return func(name string) bool {
		for _, inv := range invs {
			if inv != nil && inv.IsGroup(name) {
				return true
			}
		}
		return false
	}
}
