package inventory

import (
	"fmt"
	"regexp"
	"strings"
)

// Pattern is an Ansible host pattern, as in `ansible -l` and `hosts:`:
// terms separated by ":" (or "," when the pattern has one), each a group
// or host name, a wildcard (web*, db-[ab]?) or a regex (~web\d+); "&term"
// intersects, "!term" excludes, "all" and "*" select everything. As in
// Ansible the order of terms does not matter: the union of the plain terms
// (all hosts when there is none), narrowed by every & term, minus every !
// term. A term may end in a subscript (web[0], web[1:3], web[-1]; see
// subscript.go), which Bind resolves against the inventories.
type Pattern struct {
	Source string
	terms  []patternTerm
}

type patternTerm struct {
	op   byte // 0, '&' or '!'
	text string
	re   *regexp.Regexp // wildcard or ~regex, anchored at the start as Ansible's re.match
	// special is true for wildcards and regexes: Ansible then matches host
	// names even when a group matched too.
	special bool
	// sub is a subscript (web[0]); bound, set by Bind, holds the hosts it
	// selects.
	sub   *subscript
	bound map[string]bool
}

// hostPatternSplit is Ansible's split_host_pattern for patterns without
// commas: runs of anything but whitespace, ":", "[" and "]", or complete
// bracketed expressions.
var hostPatternSplit = regexp.MustCompile(`(?:[^\s:\[\]]|\[[^\]]*\])+`)

// ParsePattern parses an Ansible host pattern. expand, when not nil,
// resolves "@name" terms (a file of host names, or herd's @failed) into
// patterns; without it "@" is an error.
func ParsePattern(s string, expand func(name string) ([]string, error)) (*Pattern, error) {
	var words []string
	if strings.Contains(s, ",") {
		words = strings.Split(s, ",")
	} else {
		words = hostPatternSplit.FindAllString(s, -1)
	}
	p := &Pattern{Source: s}
	for _, w := range words {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		if w[0] == '@' {
			if expand == nil {
				return nil, fmt.Errorf("pattern %q: @%s: @file is only for --limit", s, w[1:])
			}
			more, err := expand(w[1:])
			if err != nil {
				return nil, fmt.Errorf("pattern %q: %v", s, err)
			}
			for _, m := range more {
				if m = strings.TrimSpace(m); m != "" {
					t, err := parseTerm(m)
					if err != nil {
						return nil, err
					}
					p.terms = append(p.terms, t)
				}
			}
			if len(more) == 0 {
				// An empty list selects nothing, not everything.
				p.terms = append(p.terms, patternTerm{op: '&', re: regexp.MustCompile(`$.^`), special: true, text: "@" + w[1:]})
			}
			continue
		}
		t, err := parseTerm(w)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %v", s, err)
		}
		p.terms = append(p.terms, t)
	}
	if len(p.terms) == 0 {
		return nil, fmt.Errorf("empty host pattern %q", s)
	}
	return p, nil
}

func parseTerm(w string) (patternTerm, error) {
	t := patternTerm{}
	if w[0] == '&' || w[0] == '!' {
		t.op, w = w[0], w[1:]
	}
	w, t.sub = splitSubscript(w)
	if w == "" {
		return t, fmt.Errorf("%q alone selects nothing; put a name after it", string(t.op))
	}
	t.text = w
	switch {
	case w[0] == '~':
		re, err := regexp.Compile(`^(?:` + w[1:] + `)`)
		if err != nil {
			return t, fmt.Errorf("regex %q: %v", w[1:], err)
		}
		t.re, t.special = re, true
	case strings.ContainsAny(w, "*?[") || strings.Contains(w, "."):
		t.re, t.special = fnmatchRegexp(w), true
	}
	return t, nil
}

// fnmatchRegexp is Python's fnmatch.translate: *, ?, [seq] and [!seq].
func fnmatchRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := strings.IndexByte(p[i+1:], ']')
			if j < 0 || (j == 0 && !strings.HasPrefix(p[i+1:], "]]")) {
				b.WriteString(`\[`)
				continue
			}
			set := p[i+1 : i+1+j]
			if strings.HasPrefix(set, "!") {
				set = "^" + set[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(set, `\`, `\\`) + "]")
			i += j + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return regexp.MustCompile(`^` + regexp.QuoteMeta(p) + `$`)
	}
	return re
}

// matches reports whether one term selects h. isGroup tells whether a
// name is a group of h's inventory: as in Ansible, a plain name that is a
// group selects the group's hosts only, not a host of the same name.
func (t patternTerm) matches(h *Host, isGroup func(string) bool) bool {
	if t.sub != nil {
		return t.bound[h.Name] // nil until Bind: nothing
	}
	if t.text == "all" || t.text == "*" {
		return true
	}
	groupHit := false
	for _, g := range h.Groups {
		if (t.re != nil && t.re.MatchString(g)) || (t.re == nil && g == t.text) {
			groupHit = true
			break
		}
	}
	if groupHit {
		return true
	}
	if !t.special && isGroup != nil && isGroup(t.text) {
		return false
	}
	if t.re != nil {
		return t.re.MatchString(h.Name)
	}
	return h.Name == t.text
}

// Match reports whether the pattern selects h.
func (p *Pattern) Match(h *Host, isGroup func(string) bool) bool {
	plain, hit := false, false
	for _, t := range p.terms {
		switch t.op {
		case 0:
			plain = true
			if !hit && t.matches(h, isGroup) {
				hit = true
			}
		case '&':
			if !t.matches(h, isGroup) {
				return false
			}
		case '!':
			if t.matches(h, isGroup) {
				return false
			}
		}
	}
	return hit || !plain
}

// Select returns the hosts of inv the pattern selects, in inventory order.
func (inv *Inventory) Select(p *Pattern) []*Host {
	p.Bind(inv)
	var out []*Host
	for _, h := range inv.hosts {
		if p.Match(h, inv.IsGroup) {
			out = append(out, h)
		}
	}
	return out
}

// IsGroup reports whether name is a group of inv.
func (inv *Inventory) IsGroup(name string) bool {
	for _, g := range inv.groups {
		if g.Name == name {
			return true
		}
	}
	return false
}
