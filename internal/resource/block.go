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
		Kind: "block",
		Doc: "A block of lines kept between two marker lines in a text file (Ansible's blockinfile). " +
			"The markers identify the block, so several blocks may live in one file (give each its " +
			"own marker and a name of its own with path=). present: the lines between the markers " +
			"become block; without markers yet, the block is inserted (at the end, or after/before " +
			"the last line matching insert_after/insert_before). absent, or an empty block: the " +
			"block and its markers are removed.",
		Params: []Param{
			{Name: "path", Type: String, Doc: "the file (default: the resource name, an absolute path)"},
			{Name: "block", Type: String, Doc: "the lines to keep between the markers; a final newline is optional"},
			{Name: "marker", Type: String, Doc: "marker line template; {mark} becomes marker_begin or marker_end (default \"# {mark} HERD MANAGED BLOCK\")"},
			{Name: "marker_begin", Type: String, Doc: "default \"BEGIN\""},
			{Name: "marker_end", Type: String, Doc: "default \"END\""},
			{Name: "insert_after", Type: String, Doc: "where a new block goes: \"EOF\" (default) or a regexp; after its last match (end of file without one)"},
			{Name: "insert_before", Type: String, Doc: "where a new block goes: \"BOF\" or a regexp; before its last match (end of file without one)"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
			{Name: "create", Type: Bool, Doc: "create the file (0644) if missing; otherwise a missing file is an error"},
		},
		Factory: newBlock,
	})
}

type block struct {
	edit        textEdit
	begin, end  string
	lines       []string
	present     bool
	after       *regexp.Regexp // nil: EOF
	before      *regexp.Regexp // nil with bof false: not given
	bof         bool
	afterGiven  bool
	beforeGiven bool
}

// pathParam is the file a kind edits: path= if given, else the resource
// name, which must then be an absolute path.
func pathParam(kind, name string, p plan.Params) (string, error) {
	path, err := p.Str("path", name)
	if err != nil {
		return "", err
	}
	return path, checkAbs(kind, path)
}

func newBlock(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("block %s: %w", name, err) }
	path, err := pathParam("block", name, p)
	if err != nil {
		return nil, err
	}
	b := &block{}
	if b.present, err = stateParam(p); err != nil {
		return fail(err)
	}
	create, err := p.Bool("create", false)
	if err != nil {
		return fail(err)
	}
	var text, marker, mb, me, after, before string
	for _, s := range []struct {
		dst      *string
		key, def string
		oneLine  bool
		nonEmpty bool
	}{
		{&text, "block", "", false, false},
		{&marker, "marker", "# {mark} HERD MANAGED BLOCK", true, true},
		{&mb, "marker_begin", "BEGIN", true, true},
		{&me, "marker_end", "END", true, true},
		{&after, "insert_after", "EOF", false, true},
		{&before, "insert_before", "", false, false},
	} {
		if *s.dst, err = p.Str(s.key, s.def); err != nil {
			return fail(err)
		}
		if s.oneLine && strings.ContainsAny(*s.dst, "\n\r") {
			return fail(fmt.Errorf("%s must be a single line", s.key))
		}
		if s.nonEmpty && *s.dst == "" {
			return fail(fmt.Errorf("%s must not be empty", s.key))
		}
	}
	if !strings.Contains(marker, "{mark}") {
		return fail(fmt.Errorf("marker %q must contain {mark}, or the begin and end markers would be the same line", marker))
	}
	if mb == me {
		return fail(fmt.Errorf("marker_begin and marker_end are both %q", mb))
	}
	b.begin, b.end = strings.ReplaceAll(marker, "{mark}", mb), strings.ReplaceAll(marker, "{mark}", me)
	if !b.present {
		if err := absentRejects(p, "block", "insert_after", "insert_before"); err != nil {
			return fail(err)
		}
	}
	b.afterGiven, b.beforeGiven = p.Has("insert_after"), p.Has("insert_before")
	if b.afterGiven && b.beforeGiven {
		return fail(fmt.Errorf("give insert_after or insert_before, not both"))
	}
	if after != "EOF" {
		if b.after, err = regexp.Compile(after); err != nil {
			return fail(fmt.Errorf("insert_after: %w", err))
		}
	}
	switch {
	case before == "BOF":
		b.bof = true
	case before != "":
		if b.before, err = regexp.Compile(before); err != nil {
			return fail(fmt.Errorf("insert_before: %w", err))
		}
	}
	if text != "" {
		b.lines, _ = textLines(strings.ReplaceAll(text, "\r\n", "\n"))
	}
	for _, l := range b.lines {
		if l == b.begin || l == b.end {
			return fail(fmt.Errorf("block contains its own marker line %q", l))
		}
	}
	b.edit = textEdit{kind: "block", path: path, create: create && b.present && len(b.lines) > 0,
		perm: fileMode(defaultFileMode), uid: safefile.Keep, gid: safefile.Keep, edit: b.apply}
	return b, nil
}

// find returns the line indexes of the begin and end markers, -1 if absent;
// an end before the begin does not count.
func (b *block) find(lines []string) (int, int) {
	begin, end := -1, -1
	for i, l := range lines {
		if l == b.begin && begin < 0 {
			begin = i
		} else if l == b.end && begin >= 0 {
			end = i
			break
		}
	}
	if end < 0 {
		return -1, -1
	}
	return begin, end
}

// insertAt is where a block without markers goes.
func (b *block) insertAt(lines []string) int {
	last := func(re *regexp.Regexp) int {
		at := -1
		for i, l := range lines {
			if re.MatchString(l) {
				at = i
			}
		}
		return at
	}
	switch {
	case b.bof:
		return 0
	case b.before != nil:
		if i := last(b.before); i >= 0 {
			return i
		}
	case b.after != nil:
		if i := last(b.after); i >= 0 {
			return i + 1
		}
	}
	return len(lines)
}

func (b *block) apply(old []byte) ([]byte, string) {
	lines, trailingNL := textLines(string(old))
	begin, end := b.find(lines)
	want := append(append([]string{b.begin}, b.lines...), b.end)
	var out []string
	var summary string
	switch {
	case (!b.present || len(b.lines) == 0) && begin < 0:
		return old, ""
	case !b.present || len(b.lines) == 0:
		out = append(append(out, lines[:begin]...), lines[end+1:]...)
		summary = fmt.Sprintf("block removed (%d lines)", end-begin+1)
	case begin >= 0 && slices.Equal(lines[begin:end+1], want):
		return old, ""
	case begin >= 0:
		out = append(append(append(out, lines[:begin]...), want...), lines[end+1:]...)
		summary = fmt.Sprintf("block replaced (%d → %d lines)", end-begin-1, len(b.lines))
	default:
		at := b.insertAt(lines)
		out = append(append(append(out, lines[:at]...), want...), lines[at:]...)
		trailingNL = trailingNL || at == len(lines)
		summary = fmt.Sprintf("block inserted (%d lines)", len(b.lines))
	}
	return joinLines(out, trailingNL), summary
}

func (b *block) Check(ctx context.Context, env *Env) (Change, error) {
	c, err := b.edit.run(false)
	return c, wrapErr("block", err)
}

// Apply rewrites the file atomically, keeping its mode and ownership.
func (b *block) Apply(ctx context.Context, env *Env) (Change, error) {
	c, err := b.edit.run(true)
	return c, wrapErr("block", err)
}

func wrapErr(kind string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", kind, err)
}
