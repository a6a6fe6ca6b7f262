package inventory

import (
	"fmt"
	"strings"
)

// CheckVia refuses connection trees that cannot be built: a chain that
// comes back to a host already on it (h1 via h2, h2 via h1; or h1 via
// itself), which would otherwise wait for itself for ever, and, unless
// unknownOK, a herd_via naming a host lookup does not know. It reports the
// first problem in host order, naming the whole cycle.
//
// Load checks cycles within one inventory (a parent may live in another
// inventory of the same run); push checks again over every inventory of
// the run, with unknown parents refused.
func CheckVia(hosts []*Host, lookup func(name string) (*Host, bool), unknownOK bool) error {
	done := map[string]bool{} // hosts whose chain is known to end well
	for _, h := range hosts {
		var chain []string
		at := map[string]int{} // position of each host on this chain
		for cur := h; cur != nil && !done[cur.Name]; {
			if i, seen := at[cur.Name]; seen {
				return fmt.Errorf("herd_via cycle: %s", strings.Join(append(chain[i:], cur.Name), " -> "))
			}
			at[cur.Name] = len(chain)
			chain = append(chain, cur.Name)
			via := cur.Conn.Via
			if via == "" {
				break
			}
			next, ok := lookup(via)
			if !ok {
				if unknownOK {
					break
				}
				return fmt.Errorf("host %s: herd_via names %q, which is not in the inventory", cur.Name, via)
			}
			cur = next
		}
		for _, n := range chain {
			done[n] = true
		}
	}
	return nil
}
