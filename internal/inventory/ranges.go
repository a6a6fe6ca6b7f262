package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// maxRangeHosts stops a typo like web[1:99999999] from eating memory.
const maxRangeHosts = 1 << 20

// expandHosts expands Ansible host ranges: web[01:03] → web01 web02 web03
// (leading zeros set the width), db-[a:c] → db-a db-b db-c, [1:10:3] steps
// by 3, and several ranges in one name multiply. A bracket without a colon
// is left alone so IPv6 literals pass through.
func expandHosts(pattern string) ([]string, error) {
	open := strings.IndexByte(pattern, '[')
	if open < 0 {
		return []string{pattern}, nil
	}
	closeAt := strings.IndexByte(pattern[open:], ']')
	if closeAt < 0 {
		return nil, fmt.Errorf("host pattern %q: missing ]", pattern)
	}
	closeAt += open
	inner := pattern[open+1 : closeAt]
	if !strings.Contains(inner, ":") {
		return []string{pattern}, nil
	}
	head, tail := pattern[:open], pattern[closeAt+1:]
	parts := strings.Split(inner, ":")
	if len(parts) > 3 {
		return nil, fmt.Errorf("host pattern %q: range [%s] has too many colons", pattern, inner)
	}
	beg, end := parts[0], parts[1]
	step := 1
	if len(parts) == 3 && parts[2] != "" {
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("host pattern %q: range step %q is not a positive integer", pattern, parts[2])
		}
		step = n
	}
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, fmt.Errorf("host pattern %q: range [%s] has no end", pattern, inner)
	}
	var items []string
	if b, e, ok := letterRange(beg, end); ok {
		if b > e {
			return nil, fmt.Errorf("host pattern %q: range start %q is after its end %q", pattern, beg, end)
		}
		for n := 0; n <= (e-b)/step; n++ {
			i := b + n*step
			items = append(items, letters[i:i+1])
		}
	} else {
		b, err1 := strconv.Atoi(beg)
		e, err2 := strconv.Atoi(end)
		if err1 != nil || err2 != nil || b < 0 {
			return nil, fmt.Errorf("host pattern %q: range [%s] must be numbers or single letters", pattern, inner)
		}
		if b > e {
			return nil, fmt.Errorf("host pattern %q: range start %s is after its end %s", pattern, beg, end)
		}
		if (e-b)/step > maxRangeHosts {
			return nil, fmt.Errorf("host pattern %q: range expands to more than %d hosts", pattern, maxRangeHosts)
		}
		width := 0
		if len(beg) > 1 && beg[0] == '0' {
			width = len(beg)
		}
		// Counted, not "i += step": near the top of int that would wrap
		// around and never end.
		for n := 0; n <= (e-b)/step; n++ {
			items = append(items, fmt.Sprintf("%0*d", width, b+n*step))
		}
	}
	rest, err := expandHosts(tail)
	if err != nil {
		return nil, err
	}
	if len(items)*len(rest) > maxRangeHosts {
		return nil, fmt.Errorf("host pattern %q: ranges expand to more than %d hosts", pattern, maxRangeHosts)
	}
	out := make([]string, 0, len(items)*len(rest))
	for _, it := range items {
		for _, r := range rest {
			out = append(out, head+it+r)
		}
	}
	return out, nil
}

func letterRange(beg, end string) (int, int, bool) {
	if len(beg) != 1 || len(end) != 1 {
		return 0, 0, false
	}
	b, e := strings.IndexByte(letters, beg[0]), strings.IndexByte(letters, end[0])
	return b, e, b >= 0 && e >= 0
}

// splitHostPort separates Ansible's "host:port" shorthand; colons inside
// range brackets and IPv6 addresses (more than one colon) are not ports.
func splitHostPort(s string) (string, int, bool) {
	outer := s
	if i := strings.LastIndexByte(s, ']'); i >= 0 {
		outer = s[i+1:]
	}
	colon := strings.LastIndexByte(outer, ':')
	if colon < 0 {
		return s, 0, false
	}
	if strings.Count(s, ":") != 1 && !strings.Contains(s, "]") {
		return s, 0, false
	}
	portText := outer[colon+1:]
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return s, 0, false
	}
	return s[:len(s)-len(portText)-1], port, true
}
