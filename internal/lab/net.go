package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Network layout of lab index k (one /16 per lab):
//
//	uplink u of a host is 10.<200+k>.<u>.0/30: parent side .1, host side .2
//	parent side of flat hosts and the bastion: veth hl<k>u<u> in the root namespace
//	parent side of rack hosts: veth c<u> in the bastion's (or rack top's) namespace
//	host side: eth0 in the host's namespace
//
// No host has a default route and none forwards, so a host reaches only its
// parent and its children. The root namespace gets an unreachable route for
// the lab's /16: traffic to rack hosts fails at once instead of leaving the
// machine by its default route.

func labNet(index int) string { return fmt.Sprintf("10.%d.0.0/16", 200+index) }

func addUnreachableRoute(index int) error {
	if out, err := run("ip", "route", "replace", "unreachable", labNet(index)); err != nil {
		return fmt.Errorf("ip route replace unreachable %s: %v: %s", labNet(index), err, out)
	}
	return nil
}

func delUnreachableRoute(index int) error {
	out, err := run("ip", "route", "show", "exact", labNet(index))
	if err != nil || len(out) == 0 {
		return nil
	}
	if out, err := run("ip", "route", "del", "unreachable", labNet(index)); err != nil {
		return fmt.Errorf("ip route del unreachable %s: %v: %s", labNet(index), err, out)
	}
	return nil
}

// rootLink is the name of the root-namespace end of uplink u.
func (l *Lab) rootLink(u int) string { return fmt.Sprintf("hl%du%d", l.index, u) }

// link makes every host's uplink, then configures the host ends.
func (l *Lab) link(ctx context.Context) error {
	// Parent-side commands, batched per namespace ("" is the root one).
	batches := map[string][]string{}
	for _, h := range l.Hosts {
		parentNs, name := "", l.rootLink(h.uplink)
		if h.Via != nil {
			parentNs, name = h.Via.Netns, fmt.Sprintf("c%d", h.uplink)
		}
		batches[parentNs] = append(batches[parentNs],
			fmt.Sprintf("link add %s type veth peer name eth0 netns %s", name, h.Netns),
			fmt.Sprintf("addr add %s/30 dev %s", l.parentAddr(h.uplink), name),
			fmt.Sprintf("link set %s up", name))
	}
	for ns, cmds := range batches {
		if err := ipBatch(ctx, ns, cmds); err != nil {
			return err
		}
	}
	return l.eachHost(ctx, func(h *Host) error {
		return ipBatch(ctx, h.Netns, []string{
			"link set lo up",
			fmt.Sprintf("addr add %s/30 dev eth0", h.Addr),
			"link set eth0 up",
		})
	})
}

// ipBatch runs ip commands in one process, in netns ns ("" for the root one).
func ipBatch(ctx context.Context, ns string, cmds []string) error {
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	out, err := runCtx(ctx, []byte(strings.Join(cmds, "\n")+"\n"), "ip", args...)
	if err != nil {
		where := "root namespace"
		if ns != "" {
			where = ns
		}
		return fmt.Errorf("ip in %s: %v: %s", where, err, out)
	}
	return nil
}

// CutLink takes the host's uplink down, as if its cable were pulled: packets
// to and from it are dropped silently, so connections hang rather than fail.
func (h *Host) CutLink() error {
	return ipBatch(context.Background(), h.Netns, []string{"link set eth0 down"})
}

// RestoreLink brings the host's uplink back up.
func (h *Host) RestoreLink() error {
	return ipBatch(context.Background(), h.Netns, []string{"link set eth0 up"})
}

// LinkBytes is what crossed a flat host's uplink so far, counted on the
// controller's end: sent to the host and received from it (IP headers
// included). Benchmarks read it before and after a run.
func (h *Host) LinkBytes() (sent, received uint64, err error) {
	if h.Via != nil {
		return 0, 0, fmt.Errorf("host %s: link bytes: only flat hosts have a link on the controller", h.Name)
	}
	read := func(what string) (uint64, error) {
		b, err := os.ReadFile(filepath.Join("/sys/class/net", h.lab.rootLink(h.uplink), "statistics", what))
		if err != nil {
			return 0, fmt.Errorf("host %s: link bytes: %w", h.Name, err)
		}
		return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	if sent, err = read("tx_bytes"); err != nil {
		return 0, 0, err
	}
	received, err = read("rx_bytes")
	return sent, received, err
}
