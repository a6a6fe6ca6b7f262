package inventory

import (
	"errors"
	"strings"
)

// shellSplit splits a line into words like Python's shlex.split(s,
// posix=True), which Ansible uses for INI host lines: quotes group and are
// removed, backslash escapes outside single quotes, and with comments set an
// unquoted # ends the line even in the middle of a word (as in Ansible).
func shellSplit(s string, comments bool) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#' && comments:
			if inWord {
				words = append(words, cur.String())
			}
			return words, nil
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("no character after the final backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unbalanced quote: no closing '")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			closed := false
			for ; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New("unbalanced quote: no closing \"")
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
