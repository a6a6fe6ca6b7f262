package inventory

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// ParseError locates a problem in an inventory or vars file.
type ParseError struct {
	File string
	Line int // 0 when the format cannot tell
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

var iniSection = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$`)

// parseINI reads an Ansible INI inventory with the quirks users rely on:
// host lines are shell-split (quotes group, an unquoted # starts a comment),
// values are typed as Python literals, "host:port" sets ansible_port, and
// [g:vars] lines are split at the first "=" with no comment stripping.
func (b *builder) parseINI(file string, data []byte) error {
	data, err := b.vault.decryptFile(file, data)
	if err != nil {
		return err
	}
	type pending struct{ line int }
	undefinedVars := map[string]pending{} // [g:vars] for groups not (yet) declared
	declared := map[string]bool{"all": true, "ungrouped": true}

	group, kind := "ungrouped", "hosts"
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	lineNo := 0
	fail := func(format string, args ...any) error {
		return &ParseError{File: file, Line: lineNo, Msg: fmt.Sprintf(format, args...)}
	}
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if lineNo == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			m := iniSection.FindStringSubmatch(line)
			if m == nil {
				return fail("invalid section header %q (want [group], [group:vars] or [group:children])", line)
			}
			group, kind = m[1], m[2]
			if err := checkName("group", group); err != nil {
				return fail("%v", err)
			}
			switch kind {
			case "":
				kind = "hosts"
				declared[group] = true
				delete(undefinedVars, group)
			case "children":
				declared[group] = true
				delete(undefinedVars, group)
			case "vars":
				if !declared[group] {
					if _, ok := undefinedVars[group]; !ok {
						undefinedVars[group] = pending{lineNo}
					}
				}
			default:
				return fail("invalid section [%s:%s]: the suffix must be vars or children", group, kind)
			}
			b.group(group)
			continue
		}
		switch kind {
		case "hosts":
			if err := b.iniHostLine(group, line); err != nil {
				return fail("%v", err)
			}
		case "children":
			words, err := shellSplit(line, true)
			if err != nil {
				return fail("%v", err)
			}
			if len(words) != 1 {
				return fail("expected one group name in [%s:children], got %q", group, line)
			}
			if err := checkName("group", words[0]); err != nil {
				return fail("%v", err)
			}
			declared[words[0]] = true
			delete(undefinedVars, words[0])
			if err := b.addChild(group, words[0]); err != nil {
				return fail("%v", err)
			}
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return fail("expected key=value in [%s:vars], got %q", group, line)
			}
			b.group(group).vars[k] = iniValue(strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		return &ParseError{File: file, Line: lineNo + 1, Msg: err.Error()}
	}
	var first *ParseError
	for g, p := range undefinedVars {
		if first == nil || p.line < first.Line {
			first = &ParseError{File: file, Line: p.line, Msg: fmt.Sprintf("section [%s:vars] is for a group that is never defined", g)}
		}
	}
	if first != nil {
		return first
	}
	return nil
}

func (b *builder) iniHostLine(group, line string) error {
	words, err := shellSplit(line, true)
	if err != nil {
		return fmt.Errorf("host definition: %v", err)
	}
	if len(words) == 0 {
		return nil
	}
	if err := checkName("host", words[0]); err != nil {
		return err
	}
	vars := map[string]any{}
	pattern, port, hasPort := splitHostPort(words[0])
	for _, w := range words[1:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return fmt.Errorf("expected key=value after host %s, got %q", words[0], w)
		}
		vars[k] = iniValue(v)
	}
	names, err := expandHosts(pattern)
	if err != nil {
		return err
	}
	for _, n := range names {
		b.addHostPort(group, n, port, hasPort, vars)
	}
	return nil
}

// looksLikeYAML tells a YAML inventory without a .yml extension from INI:
// its first meaningful line is a document marker or a bare "name:" key.
func looksLikeYAML(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		return line == "---" || yamlTopKey.MatchString(line)
	}
	return false
}

var yamlTopKey = regexp.MustCompile(`^[A-Za-z0-9_.-]+:(\s*(\{\}|#.*)?)?$`)
