package resource

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/safefile"
)

func init() {
	Register(&Schema{
		Kind: "line",
		Doc: "One line in a text file. present: replace the last line matching regexp with line, or " +
			"append line if nothing matches and it is not already there. absent: remove the lines " +
			"matching regexp (or equal to line).",
		Params: []Param{
			{Name: "line", Type: String, Doc: "the line, without newline (required with state=\"present\")"},
			{Name: "regexp", Type: String, Doc: "Go RE2 regexp selecting the line to replace (present) or the lines to remove (absent)"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
			{Name: "create", Type: Bool, Doc: "create the file (0644) if missing; otherwise a missing file is an error"},
		},
		Factory: newLine,
	})
}

type lineInFile struct {
	line    string
	re      *regexp.Regexp
	present bool
	text    textEdit
}

func newLine(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	if err := checkAbs("line", name); err != nil {
		return nil, err
	}
	l := &lineInFile{}
	var err error
	if l.present, err = stateParam(p); err != nil {
		return nil, fmt.Errorf("line %s: %w", name, err)
	}
	create, err := p.Bool("create", false)
	if err != nil {
		return nil, fmt.Errorf("line %s: %w", name, err)
	}
	if l.line, err = p.Str("line", ""); err != nil {
		return nil, fmt.Errorf("line %s: %w", name, err)
	}
	if strings.ContainsAny(l.line, "\n\r") {
		return nil, fmt.Errorf("line %s: line must be a single line (it contains a newline)", name)
	}
	expr, err := p.Str("regexp", "")
	if err != nil {
		return nil, fmt.Errorf("line %s: %w", name, err)
	}
	if p.Has("regexp") {
		if l.re, err = regexp.Compile(expr); err != nil {
			return nil, fmt.Errorf("line %s: regexp: %w", name, err)
		}
	}
	switch {
	case l.present && !p.Has("line"):
		return nil, fmt.Errorf("line %s: line is required with state=\"present\"", name)
	case !l.present && !p.Has("line") && l.re == nil:
		return nil, fmt.Errorf("line %s: give line or regexp to select the lines to remove", name)
	}
	l.text = textEdit{kind: "line", path: name, create: create, createdSummary: "create",
		perm: fileMode(defaultFileMode), uid: safefile.Keep, gid: safefile.Keep, edit: l.edit}
	return l, nil
}

// edit returns the wanted content and what was done; old is returned
// unchanged (byte for byte) when nothing needs doing.
func (l *lineInFile) edit(old []byte) ([]byte, string) {
	lines, trailingNL := textLines(string(old))
	var summary string
	if l.present {
		last := -1
		if l.re != nil {
			for i, s := range lines {
				if l.re.MatchString(s) {
					last = i
				}
			}
		}
		switch {
		case last >= 0 && lines[last] == l.line:
			return old, ""
		case last >= 0:
			lines[last] = l.line
			summary = fmt.Sprintf("line %d replaced", last+1)
		case slices.Contains(lines, l.line):
			return old, ""
		default:
			lines = append(lines, l.line)
			trailingNL = true
			summary = "line appended"
		}
	} else {
		kept := lines[:0:0]
		for _, s := range lines {
			if l.re != nil && l.re.MatchString(s) || l.re == nil && s == l.line {
				continue
			}
			kept = append(kept, s)
		}
		if n := len(lines) - len(kept); n == 0 {
			return old, ""
		} else if n == 1 {
			summary = "1 line removed"
		} else {
			summary = fmt.Sprintf("%d lines removed", n)
		}
		lines = kept
	}
	return joinLines(lines, trailingNL), summary
}

func (l *lineInFile) Check(ctx context.Context, env *Env) (Change, error) {
	c, err := l.text.run(false)
	return c, wrapErr("line", err)
}

// Apply rewrites the file atomically, keeping its mode and ownership.
func (l *lineInFile) Apply(ctx context.Context, env *Env) (Change, error) {
	c, err := l.text.run(true)
	return c, wrapErr("line", err)
}
