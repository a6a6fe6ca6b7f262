package ui

import (
	"fmt"
	"sort"
	"strings"

	"github.com/herd-project/herd/internal/event"
)

// live keeps a few status lines at the bottom of a terminal while many
// hosts run: which hosts are busy, on which resource, with their counts.
// Finished lines scroll above it; the block is erased and redrawn around
// every line printed, so the terminal never shows stale status.
type live struct {
	active  map[string]string // host → resource running now ("" = connecting/planning)
	drawn   int               // lines of the block currently on screen
	maxRows int
}

func newLive() *live { return &live{active: map[string]string{}, maxRows: 8} }

// track updates the block's state from an event.
func (l *live) track(e event.Event) {
	if e.Host == "" {
		return
	}
	switch e.Type {
	case event.HostStart:
		l.active[e.Host] = ""
	case event.Start:
		if _, ok := l.active[e.Host]; ok {
			l.active[e.Host] = e.Resource
		}
	case event.HostDone, event.Unreachable:
		delete(l.active, e.Host)
	}
}

// erase returns the escape sequence that removes the drawn block.
func (l *live) erase() string {
	if l.drawn == 0 {
		return ""
	}
	s := fmt.Sprintf("\x1b[%dA\x1b[J", l.drawn)
	l.drawn = 0
	return s
}

// draw renders the block; counts gives a host's counters.
func (l *live) draw(counts func(string) event.Counts, paint func(c, s string) string) string {
	if len(l.active) == 0 {
		return ""
	}
	hosts := make([]string, 0, len(l.active))
	for h := range l.active {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var b strings.Builder
	rows := 0
	for i, h := range hosts {
		if i == l.maxRows {
			fmt.Fprintf(&b, "%s\n", paint(cDim, fmt.Sprintf("  … and %d more hosts running", len(hosts)-i)))
			rows++
			break
		}
		res := l.active[h]
		if res == "" {
			res = "connecting"
		}
		c := counts(h)
		fmt.Fprintf(&b, "  %s %-20s %s  %s\n", paint(cCyan, "▸"), h, res,
			paint(cDim, fmt.Sprintf("ok=%d changed=%d failed=%d", c.OK, c.Changed, c.Failed)))
		rows++
	}
	l.drawn = rows
	return b.String()
}
