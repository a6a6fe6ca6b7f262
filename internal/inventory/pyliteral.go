package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// iniValue types an INI value the way Ansible does, with Python's
// ast.literal_eval: 80 is an int, True a bool, '[1, 2]' a list, and anything
// that is not a Python literal — true, 010, a b — stays a string.
func iniValue(s string) any {
	p := &pyParser{s: s}
	p.space()
	v, err := p.value()
	if err != nil {
		return s
	}
	p.space()
	if p.i != len(p.s) {
		return s
	}
	return v
}

type pyParser struct {
	s     string
	i     int
	depth int
}

// maxPyNesting is Python's own limit on nested brackets (its tokenizer's
// MAXLEVEL): deeper text is not a literal there either. Without it a long
// line of "[" would overflow the stack and crash herd.
const maxPyNesting = 200

var errNotLiteral = errors.New("not a Python literal")

func (p *pyParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *pyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) value() (any, error) {
	if c := p.peek(); c == '[' || c == '(' || c == '{' {
		if p.depth++; p.depth > maxPyNesting {
			return nil, errNotLiteral
		}
		defer func() { p.depth-- }()
	}
	switch c := p.peek(); {
	case c == '\'' || c == '"':
		return p.str()
	case c == '[':
		p.i++
		return p.seq(']')
	case c == '(':
		p.i++
		return p.seq(')')
	case c == '{':
		p.i++
		return p.dict()
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	}
	start := p.i
	for p.i < len(p.s) && isIdent(p.s[p.i]) {
		p.i++
	}
	switch p.s[start:p.i] {
	case "True":
		return true, nil
	case "False":
		return false, nil
	case "None":
		return nil, nil
	}
	return nil, errNotLiteral
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *pyParser) number() (any, error) {
	start := p.i
	if c := p.peek(); c == '-' || c == '+' {
		p.i++
		p.space()
	}
	digits := p.i
	for p.i < len(p.s) && (isIdent(p.s[p.i]) || p.s[p.i] == '.' ||
		((p.s[p.i] == '-' || p.s[p.i] == '+') && (p.s[p.i-1] == 'e' || p.s[p.i-1] == 'E'))) {
		p.i++
	}
	text := strings.ReplaceAll(p.s[digits:p.i], "_", "")
	neg := p.s[start] == '-'
	var v any
	switch {
	case pyRadixInt.MatchString(text):
		n, err := strconv.ParseInt(text, 0, 64)
		if err != nil {
			return nil, errNotLiteral
		}
		v = int(n)
	case pyDecimalInt.MatchString(text):
		// Python 3 rejects leading zeros ("010") but accepts "00".
		if text[0] == '0' && strings.Trim(text, "0") != "" {
			return nil, errNotLiteral
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, errNotLiteral // a Python big int; keep the text
		}
		v = int(n)
	case pyFloat.MatchString(text):
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, errNotLiteral
		}
		v = f
	default:
		return nil, errNotLiteral
	}
	if neg {
		switch n := v.(type) {
		case int:
			v = -n
		case float64:
			v = -n
		}
	}
	return v, nil
}

var (
	pyRadixInt   = regexp.MustCompile(`^0([xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)$`)
	pyDecimalInt = regexp.MustCompile(`^[0-9]+$`)
	pyFloat      = regexp.MustCompile(`^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)
)

func (p *pyParser) str() (any, error) {
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\n':
			return nil, errNotLiteral
		case c == '\\' && p.i+1 < len(p.s):
			p.i++
			switch e := p.s[p.i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case '\\', '\'', '"':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
		p.i++
	}
	return nil, errNotLiteral
}

func (p *pyParser) seq(end byte) (any, error) {
	out := []any{}
	for {
		p.space()
		if p.peek() == end {
			p.i++
			return out, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case end:
		default:
			return nil, errNotLiteral
		}
	}
}

func (p *pyParser) dict() (any, error) {
	out := map[string]any{}
	for {
		p.space()
		if p.peek() == '}' {
			p.i++
			return out, nil
		}
		k, err := p.value()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.peek() != ':' {
			return nil, errNotLiteral // sets are rare in inventories; keep the text
		}
		p.i++
		p.space()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out[fmt.Sprint(k)] = v
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
		default:
			return nil, errNotLiteral
		}
	}
}
