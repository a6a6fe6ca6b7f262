package resource

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// maxLineFileSize bounds the files line edits in memory: it is meant for
// configuration files, not logs.
const maxLineFileSize = 64 << 20

type lineInFile struct {
	path    string
	line    string
	re      *regexp.Regexp
	present bool
	create  bool
}

func newLine(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	if err := checkAbs("line", name); err != nil {
		return nil, err
	}
	l := &lineInFile{path: name}
	var err error
	if l.present, err = stateParam(p); err != nil {
		return nil, fmt.Errorf("line %s: %w", name, err)
	}
	if l.create, err = p.Bool("create", false); err != nil {
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
	return l, nil
}

// edit returns the wanted content and what was done; old is returned
// unchanged (byte for byte) when nothing needs doing.
func (l *lineInFile) edit(old []byte) ([]byte, string) {
	text := string(old)
	trailingNL := text == "" || strings.HasSuffix(text, "\n")
	var lines []string
	if text != "" {
		lines = strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	}
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
	out := strings.Join(lines, "\n")
	if len(lines) > 0 && trailingNL {
		out += "\n"
	}
	return []byte(out), summary
}

type lineDelta struct {
	change  Change
	exists  bool
	perm    os.FileMode
	content []byte
}

func (l *lineInFile) inspect() (lineDelta, error) {
	var d lineDelta
	fi, err := os.Lstat(l.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if !l.present {
			return d, nil
		}
		if !l.create {
			return d, fmt.Errorf("line %s: file does not exist; set create=True to create it", l.path)
		}
	case err != nil:
		return d, fmt.Errorf("line %s: %w", l.path, err)
	case !fi.Mode().IsRegular():
		return d, fmt.Errorf("line %s: exists and is %s, not a regular file", l.path, describeType(fi))
	case fi.Size() > maxLineFileSize:
		return d, fmt.Errorf("line %s: file is larger than %d MiB; line edits only small text files", l.path, maxLineFileSize>>20)
	default:
		d.exists = true
		d.perm = fileMode(unixMode(fi.Mode()))
	}
	var old []byte
	if d.exists {
		if old, err = os.ReadFile(l.path); err != nil {
			return d, fmt.Errorf("line %s: %w", l.path, err)
		}
	} else {
		d.perm = fileMode(defaultFileMode)
	}
	new, summary := l.edit(old)
	if summary == "" && d.exists {
		return d, nil
	}
	if !d.exists {
		summary = "create, " + summary
	}
	d.content = new
	d.change = Change{Changed: true, Summary: summary, Diff: contentDiff(l.path, old, new, d.exists, true)}
	return d, nil
}

func (l *lineInFile) Check(ctx context.Context, env *Env) (Change, error) {
	d, err := l.inspect()
	return d.change, err
}

// Apply rewrites the file atomically, keeping its mode and ownership.
func (l *lineInFile) Apply(ctx context.Context, env *Env) (Change, error) {
	d, err := l.inspect()
	if err != nil || !d.change.Changed {
		return d.change, err
	}
	safefile.CleanStale(l.path, staleTempAge)
	if err := safefile.WriteBytes(l.path, d.content, d.perm, safefile.Keep, safefile.Keep); err != nil {
		return d.change, fmt.Errorf("line %s: %w", l.path, err)
	}
	return d.change, nil
}
