package ui

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/herd-project/herd/event"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		in, line, text string
	}{
		{"file:/etc/motd", "file:/etc/motd", "file:/etc/motd"},
		{"héllo ✓", "héllo ✓", "héllo ✓"},
		{"a\x1b[2Jb", `a\x1b[2Jb`, `a\x1b[2Jb`},
		{"nul\x00here", `nul\x00here`, `nul\x00here`},
		{"cr\rover", `cr\x0dover`, `cr\x0dover`},
		{"bell\a del\x7f", `bell\x07 del\x7f`, `bell\x07 del\x7f`},
		{"two\nlines\tand tab", `two\x0alines\x09and tab`, "two\nlines\tand tab"},
		{"c1 \u009b31m", `c1 \x9b31m`, `c1 \x9b31m`},
		{"bidi \u202eevil", `bidi \u202eevil`, `bidi \u202eevil`},
		{"bad \xff utf8", `bad \xff utf8`, `bad \xff utf8`},
	}
	for _, tt := range tests {
		if got := escapeLine(tt.in); got != tt.line {
			t.Errorf("escapeLine(%q) = %q, want %q", tt.in, got, tt.line)
		}
		if got := escapeText(tt.in); got != tt.text {
			t.Errorf("escapeText(%q) = %q, want %q", tt.in, got, tt.text)
		}
	}
}

// Whatever a policy, inventory or target puts into names and messages, text
// output carries no control character but newlines, and no escape sequence
// of its own beyond colours (off here). JSON output keeps the exact value.
func TestControlCharactersNeverReachTheTerminal(t *testing.T) {
	evil := "x\x1b[2J\x00\r\x7f\u009b"
	events := []event.Event{
		{Type: event.RoleStart, Role: "r" + evil, Msg: "1 hosts"},
		{Type: event.Start, Host: "h" + evil, Resource: "file:/a" + evil},
		{Type: event.Changed, Host: "h" + evil, Resource: "file:/a" + evil, Msg: "m" + evil, Diff: "-a" + evil + "\n+b\n"},
		{Type: event.Failed, Host: "h" + evil, Resource: "exec:b" + evil, Pos: "p" + evil, Msg: "e" + evil, Stdout: "o" + evil, Stderr: "s" + evil},
		{Type: event.Skipped, Host: "h" + evil, Resource: "noop:c" + evil, Msg: "k" + evil},
		{Type: event.Refresh, Host: "h" + evil, Resource: "exec:b" + evil, Msg: "f" + evil},
		{Type: event.Output, Host: "h" + evil, Resource: "exec:b" + evil, Msg: "u" + evil},
		{Type: event.Unreachable, Host: "g" + evil, Msg: "n" + evil},
		{Type: event.HostDone, Host: "h" + evil, Msg: "d" + evil},
	}
	var buf bytes.Buffer
	p := New(&buf, Options{Color: &off, Verbose: true, Diff: true, Live: &on})
	p.MultiHost(true)
	for _, e := range events {
		p.Handle(e)
	}
	p.Recap(0)
	out := buf.String()
	// The live block's own cursor movements are the only escapes allowed.
	out = strings.NewReplacer("\x1b[J", "", "\x1b[1A", "", "\x1b[2A", "", "\x1b[3A", "").Replace(out)
	for _, c := range out {
		if c != '\n' && (c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0) {
			t.Fatalf("control character %q reached the terminal in:\n%q", c, out)
		}
	}
	if !strings.Contains(out, `file:/ax\x1b[2J\x00\x0d\x7f\x9b`) {
		t.Errorf("the escaped resource name is not shown:\n%s", out)
	}

	var js bytes.Buffer
	p = New(&js, Options{JSON: true})
	p.Handle(events[2])
	var back event.Event
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Resource != "file:/a"+evil || back.Host != "h"+evil {
		t.Errorf("JSON changed the values: %q %q", back.Host, back.Resource)
	}
	if bytes.ContainsAny(js.Bytes(), "\x1b\x00\r") {
		t.Errorf("raw control characters in JSON output: %q", js.String())
	}
}
