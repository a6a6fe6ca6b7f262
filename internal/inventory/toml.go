package inventory

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// parseTOMLFile reads herd's TOML layout, OpsMop's with nested groups:
//
//	[groups.webservers.hosts]
//	"web1.example.com" = "herd_host=10.0.0.1 dc=east"   # k=v pairs, shell quoting
//	"web2.example.com" = { herd_port = 2222 }           # or a table of vars
//	[groups.webservers.vars]
//	nginx_port = 80
//	[groups.web]
//	children = ["webservers"]
//	[hosts."web1.example.com"]                          # more vars for one host
//	rack = 4
func (b *builder) parseTOMLFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return b.parseTOML(file, data)
}

func (b *builder) parseTOML(file string, data []byte) error {
	var doc map[string]any
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return &ParseError{File: file, Line: pe.Position.Line, Msg: pe.Message}
		}
		return &ParseError{File: file, Msg: err.Error()}
	}
	fail := func(key, format string, args ...any) error {
		return &ParseError{File: file, Msg: key + ": " + fmt.Sprintf(format, args...)}
	}
	order := tomlOrder(md)
	for k := range doc {
		if k != "groups" && k != "hosts" {
			return fail(k, "unexpected top-level key (want [groups.NAME] or [hosts.NAME] tables)")
		}
	}
	groups, ok := doc["groups"].(map[string]any)
	if doc["groups"] != nil && !ok {
		return fail("groups", "must be a table of groups")
	}
	for _, gname := range order.sorted("groups", groups) {
		key := "groups." + strconv.Quote(gname)
		if err := checkName("group", gname); err != nil {
			return fail(key, "%v", err)
		}
		body, ok := groups[gname].(map[string]any)
		if !ok {
			return fail(key, "must be a table with hosts, vars or children")
		}
		b.group(gname)
		for k := range body {
			if k != "hosts" && k != "vars" && k != "children" {
				return fail(key+"."+k, "unexpected key (want hosts, vars or children)")
			}
		}
		if v, ok := body["vars"]; ok {
			vars, ok := v.(map[string]any)
			if !ok {
				return fail(key+".vars", "must be a table")
			}
			merge(b.group(gname).vars, normalizeTOML(vars).(map[string]any))
		}
		if v, ok := body["children"]; ok {
			list, ok := v.([]any)
			if !ok {
				return fail(key+".children", "must be a list of group names")
			}
			for _, c := range list {
				cs, ok := c.(string)
				if ok && checkName("group", cs) != nil {
					return fail(key+".children", "%v", checkName("group", cs))
				}
				if !ok {
					return fail(key+".children", "must be a list of group names, found %#v", c)
				}
				if err := b.addChild(gname, cs); err != nil {
					return fail(key+".children", "%v", err)
				}
			}
		}
		if v, ok := body["hosts"]; ok {
			hosts, ok := v.(map[string]any)
			if !ok {
				return fail(key+".hosts", "must be a table of host names")
			}
			for _, hname := range order.sorted("groups\x00"+gname+"\x00hosts", hosts) {
				hkey := key + ".hosts." + strconv.Quote(hname)
				if err := checkName("host", hname); err != nil {
					return fail(hkey, "%v", err)
				}
				var vars map[string]any
				switch hv := hosts[hname].(type) {
				case string:
					var err error
					if vars, err = parseKVPairs(hv); err != nil {
						return fail(hkey, "%v", err)
					}
				case map[string]any:
					vars = normalizeTOML(hv).(map[string]any)
				default:
					return fail(hkey, `want a string of k=v pairs or a table of vars, got %#v`, hv)
				}
				pattern, port, hasPort := splitHostPort(hname)
				names, err := expandHosts(pattern)
				if err != nil {
					return fail(hkey, "%v", err)
				}
				for _, n := range names {
					b.addHostPort(gname, n, port, hasPort, vars)
				}
			}
		}
	}
	hosts, ok := doc["hosts"].(map[string]any)
	if doc["hosts"] != nil && !ok {
		return fail("hosts", "must be a table of hosts")
	}
	for _, hname := range order.sorted("hosts", hosts) {
		vars, ok := hosts[hname].(map[string]any)
		if err := checkName("host", hname); err != nil {
			return fail("hosts."+strconv.Quote(hname), "%v", err)
		}
		if !ok {
			return fail("hosts."+strconv.Quote(hname), "must be a table of vars")
		}
		h := b.host(hname)
		merge(h.vars, normalizeTOML(vars).(map[string]any))
	}
	return nil
}

// tomlKeyOrder remembers the order keys appear in the file, so Hosts()
// follows the file rather than Go's random map order.
type tomlKeyOrder map[string][]string

func tomlOrder(md toml.MetaData) tomlKeyOrder {
	o := tomlKeyOrder{}
	seen := map[string]bool{}
	// Implicit tables ([groups.web.hosts] creates groups.web) are not keys
	// of their own, so every prefix of a key counts as an appearance.
	for _, k := range md.Keys() {
		for i := 1; i < len(k); i++ {
			parent := strings.Join(k[:i], "\x00")
			full := parent + "\x00" + k[i]
			if !seen[full] {
				seen[full] = true
				o[parent] = append(o[parent], k[i])
			}
		}
	}
	return o
}

// sorted lists m's keys in file order; keys the metadata missed follow,
// sorted.
func (o tomlKeyOrder) sorted(parent string, m map[string]any) []string {
	var out []string
	have := map[string]bool{}
	for _, k := range o[parent] {
		if _, ok := m[k]; ok && !have[k] {
			out = append(out, k)
			have[k] = true
		}
	}
	var rest []string
	for k := range m {
		if !have[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// parseKVPairs reads OpsMop host strings: shell-quoted k=v pairs whose
// values become ints, true/false, or strings.
func parseKVPairs(s string) (map[string]any, error) {
	words, err := shellSplit(s, false)
	if err != nil {
		return nil, err
	}
	vars := map[string]any{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("expected key=value, got %q", w)
		}
		vars[k] = simpleValue(v)
	}
	return vars, nil
}

func simpleValue(v string) any {
	switch v {
	case "true":
		return true
	case "false":
		return false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && (v == "0" || v[0] != '0') {
		return int(n)
	}
	return v
}

// normalizeTOML converts TOML's int64, dates and arrays of tables to the
// shapes the other formats produce.
func normalizeTOML(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeTOML(e)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeTOML(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeTOML(e)
		}
		return out
	case int64:
		return int(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}
