package push

import (
	"fmt"
	"path"

	"github.com/herd-project/herd/inventory"
	"github.com/herd-project/herd/policy"
)

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

func anyMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
