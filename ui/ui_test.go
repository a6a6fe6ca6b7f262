package ui

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/event"
)

var off = false
var on = true

func TestTextLines(t *testing.T) {
	cases := []struct {
		name  string
		opts  Options
		multi bool
		in    []event.Event
		want  []string // lines, in order
		never []string // substrings that must not appear
	}{
		{
			name: "ok and changed with timing and summary",
			in: []event.Event{
				{Type: event.Start, Host: "h", Resource: "file:/a"},
				{Type: event.OK, Host: "h", Resource: "file:/a", Duration: 1500 * time.Microsecond},
				{Type: event.Changed, Host: "h", Resource: "file:/b", Duration: 3 * time.Millisecond, Msg: "content"},
			},
			want:  []string{"ok           file:/a  (2ms)", "changed      file:/b  (3ms)  content"},
			never: []string{"start"},
		},
		{
			name: "check mode says would change and diff only with --diff",
			opts: Options{Diff: true},
			in: []event.Event{
				{Type: event.Changed, Check: true, Host: "h", Resource: "file:/b", Diff: "--- /b\n+++ /b\n@@ -1 +1 @@\n-old\n+new\n"},
			},
			want: []string{"would change file:/b", "    -old", "    +new"},
		},
		{
			name:  "diff hidden without --diff",
			in:    []event.Event{{Type: event.Changed, Host: "h", Resource: "file:/b", Diff: "-old\n+new\n"}},
			never: []string{"-old"},
		},
		{
			name: "failure names the position, one-line error and output",
			in: []event.Event{{Type: event.Failed, Host: "h", Resource: "exec:x", Pos: "site.star:3:5",
				Msg: "exec x: exit code 3; stderr ends with:\noops", Stderr: "oops\n"}},
			want: []string{"failed       exec:x", "    exec x: exit code 3; stderr ends with: ⏎ oops (site.star:3:5)", "    stderr:", "      oops"},
		},
		{
			name:  "multi-host lines carry the host; roles get a header",
			multi: true,
			in: []event.Event{
				{Type: event.RoleStart, Role: "web", Msg: "2 hosts"},
				{Type: event.OK, Host: "web1", Resource: "file:/a"},
				{Type: event.Unreachable, Host: "web2", Msg: "host web2: connection refused"},
			},
			want: []string{"── role web (2 hosts)", "web1  ok           file:/a", "web2  unreachable  host web2: connection refused"},
		},
		{
			name: "verbose shows start and output events",
			opts: Options{Verbose: true},
			in: []event.Event{
				{Type: event.Start, Host: "h", Resource: "noop:x"},
				{Type: event.Output, Host: "h", Resource: "noop:x", Msg: "hello"},
			},
			want: []string{"start        noop:x", "msg          noop:x  hello"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			c.opts.Color = &off
			p := New(&buf, c.opts)
			p.MultiHost(c.multi)
			for _, e := range c.in {
				p.Handle(e)
			}
			out := buf.String()
			at := 0
			for _, w := range c.want {
				i := strings.Index(out[at:], w)
				if i < 0 {
					t.Fatalf("missing (in order) %q in:\n%s", w, out)
				}
				at += i + len(w)
			}
			for _, n := range c.never {
				if strings.Contains(out, n) {
					t.Fatalf("unexpected %q in:\n%s", n, out)
				}
			}
			if strings.Contains(out, "\x1b[") {
				t.Fatalf("colour codes with colour off:\n%q", out)
			}
		})
	}
}

// The recap lists every host with its counts; check mode says "would
// change", and hosts that never ran a role are counted as not run.
func TestRecap(t *testing.T) {
	events := []event.Event{
		{Type: event.OK, Host: "a"}, {Type: event.Changed, Host: "a"}, {Type: event.Failed, Host: "b"},
		{Type: event.Skipped, Host: "b"}, {Type: event.Unreachable, Host: "c"},
	}
	notRun := append(slices.Clone(events),
		event.Event{Type: event.NotRun, Host: "d", Role: "web", Msg: "role web not run: it failed in role base"},
		event.Event{Type: event.NotRun, Host: "d", Role: "db", Msg: "role db not run: it failed in role base"})
	for _, tc := range []struct {
		name   string
		check  bool
		events []event.Event
		want   []string // lines, compared field by field
		absent []string
	}{
		{"apply", false, events, []string{
			"HOST OK CHANGED FAILED SKIPPED UNREACHABLE",
			"a 1 1 0 0 0", "c 0 0 0 0 1",
			"ok=1 changed=1 failed=1 skipped=1 unreachable=1 1.234s",
		}, []string{"NOT RUN", "not run"}},
		{"check", true, events, []string{
			"HOST OK WOULD CHANGE FAILED SKIPPED UNREACHABLE",
			"ok=1 would_change=1 failed=1 skipped=1 unreachable=1 1.234s",
		}, []string{"changed=1"}},
		{"not run", false, notRun, []string{
			"HOST OK CHANGED FAILED SKIPPED UNREACHABLE NOT RUN",
			"a 1 1 0 0 0 0", "d 0 0 0 0 0 2",
			"d not run role web not run: it failed in role base",
			"ok=1 changed=1 failed=1 skipped=1 unreachable=1 not_run=2 1.234s",
		}, []string{"role db not run"}}, // one line per host unless -v
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := New(&buf, Options{Color: &off, Check: tc.check})
			p.MultiHost(true)
			for _, e := range tc.events {
				p.Handle(e)
			}
			p.Recap(1234 * time.Millisecond)
			var lines []string
			for _, l := range strings.Split(buf.String(), "\n") {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("recap lacks line %q:\n%s", w, buf.String())
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(buf.String(), a) {
					t.Errorf("recap has %q:\n%s", a, buf.String())
				}
			}
		})
	}
}

func TestJSONIsOneObjectPerLine(t *testing.T) {
	var buf bytes.Buffer
	p := New(&buf, Options{JSON: true})
	p.MultiHost(true)
	p.Handle(event.Event{Type: event.Changed, Host: "h", Resource: "file:/a", Diff: "x"})
	p.Handle(event.Event{Type: event.OK, Host: "h", Resource: "file:/b"})
	p.Recap(time.Second)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 { // 2 events, 1 host recap, 1 total recap
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		var e event.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		if e.Time.IsZero() {
			t.Fatalf("event without time: %q", l)
		}
	}
	var last event.Event
	json.Unmarshal([]byte(lines[3]), &last)
	if last.Type != event.Recap || last.Counts == nil || last.Counts.Changed != 1 || last.Counts.OK != 1 {
		t.Fatalf("total recap = %+v", last)
	}
}

// The live block shows busy hosts with their current resource and is erased
// before the next line and at the recap.
func TestLiveStatusBlock(t *testing.T) {
	var buf bytes.Buffer
	p := New(&buf, Options{Color: &off, Live: &on})
	p.MultiHost(true)
	p.Handle(event.Event{Type: event.HostStart, Host: "web1"})
	p.Handle(event.Event{Type: event.HostStart, Host: "web2"})
	p.Handle(event.Event{Type: event.Start, Host: "web1", Resource: "exec:slow"})
	out := buf.String()
	if !strings.Contains(out, "▸ web1                 exec:slow") || !strings.Contains(out, "▸ web2                 connecting") {
		t.Fatalf("status block missing:\n%s", out)
	}
	buf.Reset()
	p.Handle(event.Event{Type: event.HostDone, Host: "web1"})
	out = buf.String()
	if !strings.HasPrefix(out, "\x1b[2A\x1b[J") {
		t.Fatalf("old 2-line block not erased first: %q", out)
	}
	if strings.Contains(out, "web1  ") && strings.Contains(out, "▸ web1") {
		t.Fatalf("finished host still in block: %q", out)
	}
	buf.Reset()
	p.Recap(time.Second)
	if !strings.HasPrefix(buf.String(), "\x1b[1A\x1b[J") {
		t.Fatalf("block not erased before the recap: %q", buf.String())
	}
}
