package lab

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Latency puts a TCP proxy (toxiproxy, in this process) on 127.0.0.1 in
// front of the host's sshd that delays each direction by oneWay and, when
// bandwidthKBps > 0, limits each direction to that many KB/s. It returns
// the proxy's address (host:port); clients must check the host key under
// the host's name (ssh -o HostKeyAlias=NAME, known_hosts has it). stop
// removes the proxy; Down removes any left.
//
// Only hosts the controller reaches directly can be proxied; the sch_netem
// qdisc this would otherwise use is not available everywhere.
func (l *Lab) Latency(h *Host, oneWay time.Duration, bandwidthKBps int) (addr string, stop func(), err error) {
	if h.Via != nil {
		return "", nil, fmt.Errorf("lab %s: latency proxy for %s: host is behind %s, the controller cannot reach it", l.Name, h.Name, h.Via.Name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return "", nil, fmt.Errorf("lab %s: down", l.Name)
	}
	if l.toxi == nil {
		l.toxi = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	}
	name := fmt.Sprintf("%s-%d", h.Name, len(l.proxies))
	p := toxiproxy.NewProxy(l.toxi, name, "127.0.0.1:0", net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)))
	if err := p.Start(); err != nil {
		return "", nil, fmt.Errorf("lab %s: latency proxy for %s: %w", l.Name, h.Name, err)
	}
	var toxics []string
	for _, stream := range []string{"upstream", "downstream"} {
		if oneWay > 0 {
			toxics = append(toxics, fmt.Sprintf(`{"name":"latency_%s","type":"latency","stream":%q,"attributes":{"latency":%d}}`, stream, stream, oneWay.Milliseconds()))
		}
		if bandwidthKBps > 0 {
			toxics = append(toxics, fmt.Sprintf(`{"name":"bandwidth_%s","type":"bandwidth","stream":%q,"attributes":{"rate":%d}}`, stream, stream, bandwidthKBps))
		}
	}
	for _, t := range toxics {
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(t)); err != nil {
			p.Stop()
			return "", nil, fmt.Errorf("lab %s: latency proxy for %s: %w", l.Name, h.Name, err)
		}
	}
	l.proxies = append(l.proxies, p)
	stop = func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, q := range l.proxies {
			if q == p {
				l.proxies = append(l.proxies[:i], l.proxies[i+1:]...)
				p.Stop()
				return
			}
		}
	}
	return p.Listen, stop, nil
}
