package inventory

import (
	"regexp"
	"strconv"
)

// Ansible's host pattern subscripts: web[0] (the group's first host),
// web[-1] (its last), web[1:3] (second to fourth, inclusive), web[2:] (the
// third on), and the old web[1-3]. They index the term's hosts in
// Ansible's order (the group's own hosts in file order, then its
// children's, breadth first), so selecting them needs the inventory:
// Pattern.Bind resolves them before Match.

// subscriptRE is Ansible's _split_subscript: a pattern ending in an
// integer or a range; a ~regex never has one.
var subscriptRE = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$`)

type subscript struct {
	start, end int // end -1: to the last host
	single     bool
}

// splitSubscript cuts a trailing subscript off a pattern word.
func splitSubscript(w string) (string, *subscript) {
	if w == "" || w[0] == '~' {
		return w, nil
	}
	m := subscriptRE.FindStringSubmatch(w)
	if m == nil {
		return w, nil
	}
	if m[2] != "" {
		n, err := strconv.Atoi(m[2])
		if err != nil {
			return w, nil
		}
		return m[1], &subscript{start: n, single: true}
	}
	start, err := strconv.Atoi(m[3])
	if err != nil {
		return w, nil
	}
	end := -1
	if m[5] != "" {
		if end, err = strconv.Atoi(m[5]); err != nil {
			return w, nil
		}
	}
	if end == 0 {
		// Ansible tests "if end:", so [n:0] is [n].
		return m[1], &subscript{start: start, single: true}
	}
	return m[1], &subscript{start: start, end: end}
}

// apply is Ansible's _apply_subscript on a term's ordered hosts; an index
// out of range selects nothing.
func (s *subscript) apply(hosts []string) []string {
	n := len(hosts)
	if s.single {
		i := s.start
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return nil
		}
		return hosts[i : i+1]
	}
	end := s.end
	if end == -1 {
		end = n - 1
	}
	start := min(s.start, n)
	end = min(end+1, n)
	if start >= end {
		return nil
	}
	return hosts[start:end]
}

// Bind resolves the pattern's subscripted terms against the inventories
// the pattern will select from: afterwards Match knows which hosts
// web[0] means. A pattern without subscripts needs no Bind.
func (p *Pattern) Bind(invs ...*Inventory) {
	for i := range p.terms {
		t := &p.terms[i]
		if t.sub == nil {
			continue
		}
		var hosts []string
		for _, inv := range invs {
			if inv != nil {
				hosts = append(hosts, inv.enumerate(*t)...)
			}
		}
		t.bound = map[string]bool{}
		for _, h := range t.sub.apply(hosts) {
			t.bound[h] = true
		}
	}
}

// enumerate is Ansible's _enumerate_matches for one term: the hosts of the
// groups it names or matches, then, when no group matched or the term is
// a wildcard, the hosts it matches by name; duplicates stay, as there.
func (inv *Inventory) enumerate(t patternTerm) []string {
	var out []string
	groupHit := false
	for _, g := range inv.groups {
		if (t.re != nil && t.re.MatchString(g.Name)) || (t.re == nil && g.Name == t.text) {
			groupHit = true
			out = append(out, inv.groupHosts(g.Name)...)
		}
	}
	if !groupHit || t.special {
		for _, h := range inv.hosts {
			if (t.re != nil && t.re.MatchString(h.Name)) || (t.re == nil && h.Name == t.text) {
				out = append(out, h.Name)
			}
		}
	}
	return out
}

// groupHosts is Ansible's Group.get_hosts: the group's own hosts, then its
// descendants', breadth first, each host once.
func (inv *Inventory) groupHosts(name string) []string {
	byName := map[string]*Group{}
	for _, g := range inv.groups {
		byName[g.Name] = g
	}
	var out []string
	seenHost, seenGroup := map[string]bool{}, map[string]bool{name: true}
	queue := []string{name}
	for len(queue) > 0 {
		g := byName[queue[0]]
		queue = queue[1:]
		if g == nil {
			continue
		}
		for _, h := range g.Hosts {
			if !seenHost[h] {
				seenHost[h] = true
				out = append(out, h)
			}
		}
		for _, c := range g.Children {
			if !seenGroup[c] {
				seenGroup[c] = true
				queue = append(queue, c)
			}
		}
	}
	return out
}
