// Package ui turns the event stream into what a person (or a program) reads:
// one line per finished resource, failures as they happen, a recap at the
// end, or one JSON object per line with --json. It is the only package that
// writes to the terminal, so colour and verbosity decisions live here.
package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/herd-project/herd/internal/event"
	"golang.org/x/term"
)

// Options select the output style.
type Options struct {
	JSON    bool // one event per line, nothing else
	Diff    bool // print unified diffs of changed files
	Verbose bool // print every event, including start and ok
	// Color forces colour on or off; nil means "only when Out is a terminal".
	Color *bool
	// Check labels the recap for check mode ("would_change", not
	// "changed"): nothing changed.
	Check bool
	// Live forces the live status block (busy hosts and their current
	// resource) on or off; nil means "on a terminal, in push mode".
	Live *bool
}

// Printer renders events. It is safe for concurrent use: events from many
// hosts and parallel resources arrive at once.
type Printer struct {
	mu     sync.Mutex
	out    io.Writer
	opts   Options
	color  bool
	counts map[string]*event.Counts // per host
	order  []string
	multi  bool // more than one host: prefix lines with the host
	tty    bool
	live   *live // nil unless the status block is on
	// notRunSeen: hosts whose first "not run" line was printed; later
	// roles of the same host show only with -v.
	notRunSeen map[string]bool
}

// New returns a Printer writing to out.
func New(out io.Writer, opts Options) *Printer {
	p := &Printer{out: out, opts: opts, counts: map[string]*event.Counts{}}
	if opts.Color != nil {
		p.color = *opts.Color
	} else if f, ok := out.(*os.File); ok && !opts.JSON {
		p.tty = term.IsTerminal(int(f.Fd()))
		p.color = p.tty && os.Getenv("NO_COLOR") == ""
	}
	return p
}

// MultiHost makes every line carry the host name.
func (p *Printer) MultiHost(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.multi = on
	liveOn := on && p.tty && !p.opts.JSON
	if p.opts.Live != nil {
		liveOn = *p.opts.Live && !p.opts.JSON
	}
	if liveOn {
		p.live = newLive()
	}
}

// Handle is an event.Sink.
func (p *Printer) Handle(e event.Event) {
	if !p.opts.JSON {
		e = escapeEvent(e)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Host != "" {
		if _, ok := p.counts[e.Host]; !ok {
			p.counts[e.Host] = &event.Counts{}
			p.order = append(p.order, e.Host)
		}
		p.counts[e.Host].Add(e.Type)
	}
	if p.opts.JSON {
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		b, err := json.Marshal(e)
		if err != nil {
			b = []byte(fmt.Sprintf(`{"type":"log","msg":%q}`, "unencodable event: "+err.Error()))
		}
		p.out.Write(append(b, '\n'))
		return
	}
	if p.live == nil {
		p.text(e)
		return
	}
	// Erase the status block, print the event's lines, redraw the block.
	erase := p.live.erase()
	p.live.track(e)
	out := p.out
	var buf strings.Builder
	p.out = &buf
	p.text(e)
	p.out = out
	block := p.live.draw(func(h string) event.Counts { return *p.counts[h] }, p.paint)
	io.WriteString(p.out, erase+buf.String()+block)
}

const (
	cReset  = "\x1b[0m"
	cRed    = "\x1b[31m"
	cGreen  = "\x1b[32m"
	cYellow = "\x1b[33m"
	cCyan   = "\x1b[36m"
	cDim    = "\x1b[2m"
	cBold   = "\x1b[1m"
)

func (p *Printer) paint(c, s string) string {
	if !p.color {
		return s
	}
	return c + s + cReset
}

func (p *Printer) prefix(e event.Event) string {
	if p.multi && e.Host != "" {
		return p.paint(cBold, e.Host) + "  "
	}
	return ""
}

func (p *Printer) text(e event.Event) {
	pre := p.prefix(e)
	switch e.Type {
	case event.Start, event.Retry, event.Log:
		if !p.opts.Verbose && e.Type != event.Retry {
			return
		}
		fmt.Fprintf(p.out, "%s%s %s %s\n", pre, p.paint(cDim, pad(string(e.Type))), e.Resource, p.paint(cDim, e.Msg))
	case event.OK:
		fmt.Fprintf(p.out, "%s%s %s%s\n", pre, p.paint(cGreen, pad("ok")), e.Resource, dur(e.Duration))
	case event.Changed:
		word := "changed"
		if e.Check {
			word = "would change"
		}
		msg := ""
		if e.Msg != "" {
			msg = "  " + e.Msg
		}
		fmt.Fprintf(p.out, "%s%s %s%s%s\n", pre, p.paint(cYellow, pad(word)), e.Resource, dur(e.Duration), msg)
		if p.opts.Diff && e.Diff != "" {
			p.diff(e.Diff)
		}
		if p.opts.Verbose {
			p.output(e)
		}
	case event.Failed:
		fmt.Fprintf(p.out, "%s%s %s%s\n", pre, p.paint(cRed, pad("failed")), e.Resource, dur(e.Duration))
		where := ""
		if e.Pos != "" {
			where = " (" + e.Pos + ")"
		}
		fmt.Fprintf(p.out, "%s    %s%s\n", pre, p.paint(cRed, oneLine(e.Msg)), where)
		p.output(e)
	case event.Skipped:
		fmt.Fprintf(p.out, "%s%s %s  %s\n", pre, p.paint(cCyan, pad("skipped")), e.Resource, p.paint(cDim, e.Msg))
	case event.Refresh:
		word := "refreshed"
		if e.Check {
			word = "would refresh"
		}
		fmt.Fprintf(p.out, "%s%s %s  %s\n", pre, p.paint(cYellow, pad(word)), e.Resource, e.Msg)
	case event.Output:
		// Messages also reach the terminal through the refresh or change
		// line that caused them; alone they are detail for -v.
		if !p.opts.Verbose {
			return
		}
		fmt.Fprintf(p.out, "%s%s %s  %s\n", pre, pad("msg"), e.Resource, e.Msg)
	case event.Unreachable:
		fmt.Fprintf(p.out, "%s%s %s\n", pre, p.paint(cRed, pad("unreachable")), oneLine(e.Msg))
	case event.NotRun:
		if p.notRunSeen == nil {
			p.notRunSeen = map[string]bool{}
		}
		if p.notRunSeen[e.Host] && !p.opts.Verbose {
			return
		}
		p.notRunSeen[e.Host] = true
		fmt.Fprintf(p.out, "%s%s %s\n", pre, p.paint(cCyan, pad("not run")), oneLine(e.Msg))
	case event.Interrupted:
		fmt.Fprintf(p.out, "%s%s %s\n", pre, p.paint(cYellow, pad("interrupted")), oneLine(e.Msg))
	case event.Drift:
		fmt.Fprintf(p.out, "%s%s %s\n", pre, p.paint(cYellow, pad("drift")), oneLine(e.Msg))
	case event.RoleStart:
		fmt.Fprintf(p.out, "%s\n", p.paint(cBold, fmt.Sprintf("── role %s (%s)", e.Role, e.Msg)))
	case event.HostStart, event.HostDone:
		if p.opts.Verbose {
			fmt.Fprintf(p.out, "%s%s %s\n", pre, p.paint(cDim, pad(string(e.Type))), e.Msg)
		}
	}
}

func (p *Printer) output(e event.Event) {
	for _, s := range []struct{ name, text string }{{"stdout", e.Stdout}, {"stderr", e.Stderr}} {
		t := strings.TrimRight(s.text, "\n")
		if t == "" {
			continue
		}
		fmt.Fprintf(p.out, "    %s:\n", p.paint(cDim, s.name))
		for _, l := range strings.Split(t, "\n") {
			fmt.Fprintf(p.out, "      %s\n", l)
		}
	}
}

func (p *Printer) diff(d string) {
	for _, l := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
		c := ""
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			c = cBold
		case strings.HasPrefix(l, "+"):
			c = cGreen
		case strings.HasPrefix(l, "-"):
			c = cRed
		case strings.HasPrefix(l, "@@"):
			c = cCyan
		}
		if c != "" {
			l = p.paint(c, l)
		}
		fmt.Fprintf(p.out, "    %s\n", l)
	}
}

// Counts returns the totals over all hosts.
func (p *Printer) Counts() event.Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	var t event.Counts
	for _, c := range p.counts {
		t.Merge(*c)
	}
	return t
}

// HostCounts returns a copy of one host's counts.
func (p *Printer) HostCounts(host string) event.Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.counts[host]; ok {
		return *c
	}
	return event.Counts{}
}

// Recap prints the closing summary: one line for a single host, a table
// per host otherwise. In JSON mode it emits one recap event per host and a
// total.
func (p *Printer) Recap(elapsed time.Duration) {
	p.mu.Lock()
	hosts := append([]string(nil), p.order...)
	p.mu.Unlock()
	sort.Strings(hosts)
	total := p.Counts()
	if p.opts.JSON {
		for _, h := range hosts {
			c := p.HostCounts(h)
			p.Handle(event.Event{Type: event.Recap, Host: h, Counts: &c})
		}
		p.Handle(event.Event{Type: event.Recap, Counts: &total, Duration: elapsed})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live != nil {
		io.WriteString(p.out, p.live.erase())
		p.live = nil
	}
	changed := "changed"
	if p.opts.Check {
		changed = "would_change"
	}
	if len(hosts) > 1 {
		p.table(hosts, total.NotRun > 0)
	}
	line := fmt.Sprintf("ok=%d %s=%d failed=%d skipped=%d", total.OK, changed, total.Changed, total.Failed, total.Skipped)
	if total.Unreachable > 0 {
		line += fmt.Sprintf(" unreachable=%d", total.Unreachable)
	}
	if total.NotRun > 0 {
		line += fmt.Sprintf(" not_run=%d", total.NotRun)
	}
	c := cGreen
	if total.Failed > 0 || total.Unreachable > 0 || total.NotRun > 0 {
		c = cRed
	} else if total.Changed > 0 {
		c = cYellow
	}
	fmt.Fprintf(p.out, "%s  %s\n", p.paint(c, line), p.paint(cDim, elapsed.Round(time.Millisecond).String()))
}

// table is the per-host recap; the caller holds mu. NOT RUN counts the
// roles a host never ran, shown when some host missed one.
func (p *Printer) table(hosts []string, notRun bool) {
	changed := "CHANGED"
	if p.opts.Check {
		changed = "WOULD CHANGE"
	}
	head := fmt.Sprintf("\n%-24s %6s %12s %7s %8s %12s", "HOST", "OK", changed, "FAILED", "SKIPPED", "UNREACHABLE")
	if notRun {
		head += fmt.Sprintf(" %8s", "NOT RUN")
	}
	fmt.Fprintln(p.out, head)
	for _, h := range hosts {
		c := p.counts[h]
		row := fmt.Sprintf("%-24s %6d %12d %7d %8d %12d", h, c.OK, c.Changed, c.Failed, c.Skipped, c.Unreachable)
		if notRun {
			row += fmt.Sprintf(" %8d", c.NotRun)
		}
		fmt.Fprintln(p.out, row)
	}
}

func pad(s string) string { return fmt.Sprintf("%-12s", s) }

func dur(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	if d < time.Millisecond {
		return fmt.Sprintf("  (%s)", d.Round(time.Microsecond))
	}
	return fmt.Sprintf("  (%s)", d.Round(time.Millisecond))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ⏎ ")), " ")
}
