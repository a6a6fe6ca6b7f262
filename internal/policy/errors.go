package policy

import (
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Error is every error this package returns. Users fix policies, not Go
// code, so an error is always one line that starts with the position in
// their policy and never carries a Go stack trace.
type Error struct {
	Pos string // "file:line:col" in a policy file (or just the file when no line applies)
	Msg string
}

func (e *Error) Error() string {
	if e.Pos == "" {
		return e.Msg
	}
	return e.Pos + ": " + e.Msg
}

func errorAt(pos string, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: oneLine(fmt.Sprintf(format, args...))}
}

// oneLine folds multi-line messages (fail() text, template errors) so that
// log lines and the recap stay one error per line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " | ")
}

// asError converts whatever evaluation returned into an *Error pointing at
// the innermost position in a policy file. An *Error created by one of our
// builtins wins, because it already carries the most precise position (the
// call site); a nested load's error keeps the position inside the loaded file.
func asError(err error, fallbackPos string) *Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return &Error{Pos: pe.Pos, Msg: oneLine(pe.Msg)}
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return &Error{Pos: se.Pos.String(), Msg: oneLine(se.Msg)}
	}
	var rl resolve.ErrorList
	if errors.As(err, &rl) && len(rl) > 0 {
		return &Error{Pos: rl[0].Pos.String(), Msg: oneLine(rl[0].Msg)}
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		pos := userPos(ee.CallStack)
		if pos == "" {
			pos = fallbackPos
		}
		return &Error{Pos: pos, Msg: oneLine(ee.Msg)}
	}
	return &Error{Pos: fallbackPos, Msg: oneLine(err.Error())}
}

// userPos is the innermost frame that is in a policy file rather than in a
// builtin: that is the line the user has to change.
func userPos(stack starlark.CallStack) string {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i].Pos.Filename() != "<builtin>" && stack[i].Pos.Line > 0 {
			return stack[i].Pos.String()
		}
	}
	return ""
}

// callerPos is the position of the call to the running builtin.
func callerPos(thread *starlark.Thread) string {
	return userPos(thread.CallStack())
}
