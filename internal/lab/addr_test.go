package lab

import (
	"net/netip"
	"testing"
)

// Uplinks past the 250th once wrapped into the next lab's /16; every uplink
// up to MaxHosts must get its own /30 inside the lab's own /16.
func TestUplinkAddressesAreDistinctThirtiesInTheLabsNet(t *testing.T) {
	for _, index := range []int{0, 54} {
		lab := netip.MustParsePrefix(labNet(index))
		seen := map[netip.Prefix]int{}
		for u := 1; u <= MaxHosts; u++ {
			host := netip.MustParseAddr(uplinkAddr(index, u, 2))
			parent := netip.MustParseAddr(uplinkAddr(index, u, 1))
			p30 := netip.PrefixFrom(host, 30).Masked()
			if !lab.Contains(host) || !p30.Contains(parent) || host == parent {
				t.Fatalf("uplink %d: host %v parent %v: not in one /30 of %v", u, host, parent, lab)
			}
			if p30.Addr() == host || p30.Addr() == parent {
				t.Fatalf("uplink %d: %v uses the /30's network address", u, host)
			}
			if prev, dup := seen[p30]; dup {
				t.Fatalf("uplinks %d and %d share %v", prev, u, p30)
			}
			seen[p30] = u
		}
	}
	if got := uplinkAddr(0, 1, 2); got != "10.200.1.2" {
		t.Errorf("host1 moved to %s; README and habits say 10.200.1.2", got)
	}
}
