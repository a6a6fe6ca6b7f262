package ui

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/herd-project/herd/event"
)

// Names and messages come from policies, inventories and targets, none of
// which may drive the operator's terminal: an ESC in a resource name could
// clear the screen or forge lines, a NUL or CR could hide text. Text
// output therefore shows every control character (C0, DEL, C1) and every
// invalid UTF-8 byte as a visible escape such as \x1b. JSON output needs
// none of this: the encoder escapes them itself.

// escapeLine escapes every control character, newlines included: for names.
func escapeLine(s string) string { return escape(s, false) }

// escapeText keeps newlines and tabs: for messages, command output, diffs.
func escapeText(s string) string { return escape(s, true) }

func escape(s string, multiline bool) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if needsEscape(r, n, multiline) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case needsEscape(r, n, multiline):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(r rune, size int, multiline bool) bool {
	switch {
	case r == utf8.RuneError && size == 1:
		return true
	case multiline && (r == '\n' || r == '\t'):
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == '\u2028', r == '\u2029', r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		// line separators and bidi overrides reorder or break what is shown
		return true
	}
	return false
}

// escapeEvent returns e with every string a terminal would show escaped.
func escapeEvent(e event.Event) event.Event {
	e.Host, e.Role, e.Resource, e.Pos = escapeLine(e.Host), escapeLine(e.Role), escapeLine(e.Resource), escapeLine(e.Pos)
	e.Msg, e.Stdout, e.Stderr, e.Diff = escapeText(e.Msg), escapeText(e.Stdout), escapeText(e.Stderr), escapeText(e.Diff)
	return e
}

// Escape is escapeLine for other text output (herd inventory).
func Escape(s string) string { return escapeLine(s) }
