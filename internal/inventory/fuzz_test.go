package inventory

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The fuzz targets read inventories of every format from arbitrary bytes.
// Beyond "no panic, no hang", each checks what callers rely on: an error is
// one line and a parse error names the file; an inventory that loads is
// consistent (every group a host names exists, Host finds every host) and
// loading it again gives the same answer.

func FuzzINI(f *testing.F) {
	for _, s := range testSeeds(f, "ini") {
		f.Add(s)
	}
	f.Add("[web]\nweb[01:03] a=1 b='x' c=\"[1, (2, 3), {'k': None}]\" d=0x1F e=-1.5e3\n[web:vars]\nx={'a': [True, False]}\n")
	f.Add("h ansible_port=99999\nh2:22 ansible_host=\"10.0.0.1\" # c\n[a:children]\nb\n[b:children]\na\n")
	f.Add("[g:vars]\nk=v\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data string) {
		if manyHosts(data) {
			return
		}
		path := filepath.Join(dir, "hosts")
		checkInventory(t, path, parseWith((*builder).parseINI, path, data))
	})
}

func FuzzYAML(f *testing.F) {
	for _, s := range testSeeds(f, "yml") {
		f.Add(s)
	}
	f.Add("all:\n  hosts:\n    a:\n      ansible_port: \"22\"\n  children:\n    web:\n      hosts: {'w[1:3]': {x: [1, 2.5, .nan]}}\n")
	f.Add("a: &x {children: {b: *x}}\n")
	f.Add("all:\n  vars: {ansible_group_priority: 3, herd_via: b}\n  children: {all: {}}\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data string) {
		if manyHosts(data) {
			return
		}
		path := filepath.Join(dir, "inventory.yml")
		checkInventory(t, path, parseWith((*builder).parseYAML, path, data))
	})
}

func FuzzTOML(f *testing.F) {
	for _, s := range testSeeds(f, "toml") {
		f.Add(s)
	}
	if b, err := os.ReadFile("../examples/push/inventory.toml"); err == nil {
		f.Add(string(b))
	}
	f.Add("[groups.web.hosts]\n\"w[1:2]:2222\" = \"a=1 b='two words'\"\n\"w3\" = { herd_port = 22, when = 1979-05-27T07:32:00Z }\n[groups.web]\nchildren = [\"db\"]\n[hosts.w3]\nrack = 4\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data string) {
		if manyHosts(data) {
			return
		}
		path := filepath.Join(dir, "inventory.toml")
		checkInventory(t, path, parseWith((*builder).parseTOML, path, data))
	})
}

// FuzzDynamicJSON feeds a dynamic inventory's --list output (and, without
// _meta, every --host answer) to the parser the script runner uses.
func FuzzDynamicJSON(f *testing.F) {
	for _, s := range testSeeds(f, "sh") {
		f.Add(s, `{"who": "x"}`)
	}
	f.Add(`{"web": {"hosts": ["w1"], "vars": {"n": 1e400, "m": 12345678901234567890}, "children": ["db"]}, "db": ["d1"], "_meta": {"hostvars": {"w1": {"ansible_port": 22}}}}`, `{}`)
	f.Add(`{"web": ["a", "b"]}`, `{"ansible_port": "x"}`)
	f.Add(`{"web": {"children": ["all"]}}`, `null`)
	dir := f.TempDir() // empty: no group_vars or host_vars
	f.Fuzz(func(t *testing.T, list, host string) {
		path := filepath.Join(dir, "inv.sh")
		checkInventory(t, path, func() (*Inventory, error) {
			b := newBuilder()
			if err := b.parseList(path, []byte(list), func(string) ([]byte, error) { return []byte(host), nil }); err != nil {
				return nil, err
			}
			return b.resolve([]string{dir}, "")
		})
	})
}

// FuzzPyLiteral checks INI value typing: a value that is not a Python
// literal stays the exact text, and a literal's value, written back as
// Python, reads as the same value.
func FuzzPyLiteral(f *testing.F) {
	for _, s := range []string{"80", "-1.5e3", "0x1F", "0o17", "0b101", "010", "00", "1_000", "True", "None",
		"'a\\'b'", `"x\ty"`, "[1, (2, 3), {'k': None, 1: [True]}]", "{}", "()", "[,]", "1e999", "+ 3", "- 0.0",
		"9223372036854775808", "-9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := iniValue(s)
		if str, ok := v.(string); ok && str == s {
			return // kept as text
		}
		if d := nesting(v); d > maxPyNesting {
			t.Fatalf("%.100q reads as a value nested %d deep, which Python refuses", s, d)
		}
		back := pyRepr(v)
		if got := iniValue(back); !reflect.DeepEqual(got, v) {
			t.Fatalf("%q reads as %#v, written back as %q, which reads as %#v", s, v, back, got)
		}
	})
}

// FuzzExpandHosts checks host ranges stay bounded and well-formed.
func FuzzExpandHosts(f *testing.F) {
	for _, s := range []string{"web[01:03].example.com", "db-[a:c]", "x[1:10:3]y[a:b]", "[::1]", "h[:5]", "h[3:1]",
		"w[0:65536]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		names, err := expandHosts(pattern)
		if err != nil {
			return
		}
		if len(names) == 0 || len(names) > maxRangeHosts {
			t.Fatalf("%q expands to %d names", pattern, len(names))
		}
		head := pattern[:max(strings.IndexByte(pattern, '['), 0)]
		for _, n := range names {
			if !strings.HasPrefix(n, head) {
				t.Fatalf("%q expands to %q, which lost the prefix %q", pattern, n, head)
			}
		}
	})
}

// bigRange matches a numeric host range, to skip the large ones.
var bigRange = regexp.MustCompile(`\[0*([0-9]*):0*([0-9]+)`)

// manyHosts reports inputs whose host ranges expand to thousands of hosts:
// they are correct but slow, and the fuzzer, finding them "interesting",
// would spend its time on them instead of on parsing. FuzzExpandHosts
// covers large ranges.
func manyHosts(data string) bool {
	hosts := 1
	for _, m := range bigRange.FindAllStringSubmatch(data, -1) {
		if len(m[2]) > 4 || len(m[1]) > 4 {
			return true
		}
		b, _ := strconv.Atoi(m[1])
		e, _ := strconv.Atoi(m[2])
		if hosts *= max(e-b+1, 1); hosts > 1000 {
			return true
		}
	}
	return false
}

// parseWith returns a loader that parses data with one format's parser
// and resolves it as Load does, as if it were the file path in a
// directory without group_vars or host_vars. Nothing is written: a file
// per input would cost far more than the parse.
func parseWith(parse func(b *builder, file string, data []byte) error, path, data string) func() (*Inventory, error) {
	return func() (*Inventory, error) {
		b := newBuilder()
		if err := parse(b, path, []byte(data)); err != nil {
			return nil, err
		}
		return b.resolve([]string{filepath.Dir(path)}, "")
	}
}

// checkInventory loads twice and checks the result (see the top of the file).
func checkInventory(t *testing.T, path string, load func() (*Inventory, error)) {
	inv, err := load()
	if err != nil {
		msg := err.Error()
		if msg == "" || strings.ContainsAny(msg, "\r\n") {
			t.Fatalf("error is not one line: %q", msg)
		}
		if pe, ok := err.(*ParseError); ok && (pe.File != path || pe.Line < 0) {
			t.Fatalf("parse error does not locate %s: %q", path, msg)
		}
		return
	}
	first := dumpInventory(t, inv)
	again, err := load()
	if err != nil {
		t.Fatalf("loaded once, then failed: %v", err)
	}
	if second := dumpInventory(t, again); second != first {
		t.Fatalf("loading again differs:\n%s\nthen:\n%s", first, second)
	}
}

// dumpInventory checks the inventory's consistency and renders it, map keys
// sorted, for comparison.
func dumpInventory(t *testing.T, inv *Inventory) string {
	var b strings.Builder
	groups := map[string]*Group{}
	for _, g := range inv.Groups() {
		if groups[g.Name] != nil {
			t.Fatalf("group %q listed twice", g.Name)
		}
		groups[g.Name] = g
	}
	if groups["all"] == nil || groups["ungrouped"] == nil {
		t.Fatal("no all or ungrouped group")
	}
	for _, h := range inv.Hosts() {
		if got, ok := inv.Host(h.Name); !ok || got != h {
			t.Fatalf("Host(%q) does not find the host", h.Name)
		}
		if len(h.Groups) == 0 || h.Groups[0] != "all" {
			t.Fatalf("host %q: groups %q do not start with all", h.Name, h.Groups)
		}
		for _, g := range h.Groups {
			if groups[g] == nil {
				t.Fatalf("host %q is in group %q, which does not exist", h.Name, g)
			}
		}
		if h.Conn.Port < 0 || h.Conn.Port > 65535 {
			t.Fatalf("host %q: port %d", h.Name, h.Conn.Port)
		}
		fmt.Fprintf(&b, "host %q groups=%q conn=%#v vars=%#v\n", h.Name, h.Groups, h.Conn, h.Vars)
	}
	for _, g := range inv.Groups() {
		for _, c := range g.Children {
			if groups[c] == nil {
				t.Fatalf("group %q has child %q, which does not exist", g.Name, c)
			}
		}
		for _, h := range g.Hosts {
			if _, ok := inv.Host(h); !ok {
				t.Fatalf("group %q has host %q, which does not exist", g.Name, h)
			}
		}
		fmt.Fprintf(&b, "group %q depth=%d hosts=%q children=%q vars=%#v\n", g.Name, g.Depth, g.Hosts, g.Children, g.Vars)
	}
	if all := inv.Filter(nil, nil); !slices.Equal(all, inv.Hosts()) {
		t.Fatal("Filter(nil, nil) is not every host")
	}
	return b.String()
}

func nesting(v any) int {
	deepest := 0
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			deepest = max(deepest, nesting(e))
		}
	case map[string]any:
		for _, e := range x {
			deepest = max(deepest, nesting(e))
		}
	default:
		return 0
	}
	return deepest + 1
}

// pyRepr writes a value iniValue produced back as a Python literal.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			panic(fmt.Sprintf("iniValue produced %v, which Python cannot write as a literal", x))
		}
		return strconv.FormatFloat(x, 'e', -1, 64)
	case string:
		r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\x00", `\0`)
		return "'" + r.Replace(x) + "'"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			parts = append(parts, pyRepr(k)+": "+pyRepr(x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	panic(fmt.Sprintf("iniValue produced a %T", v))
}

// testSeeds harvests the inventories the package's tests write (string
// literals in map entries keyed by a file name), so the fuzzers start from
// every layout the tests know. kind is "ini", "yml", "toml" or "sh" (for
// which the JSON a script prints is returned).
func testSeeds(f testing.TB, kind string) []string {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		f.Fatal(err)
	}
	var out []string
	for _, name := range files {
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			f.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			key, val := stringLit(kv.Key), stringLit(kv.Value)
			if key == "" || val == "" {
				return true
			}
			switch ext := strings.TrimPrefix(filepath.Ext(key), "."); {
			case kind == "ini" && (ext == "" || ext == "ini") && strings.Contains(val, "\n"),
				kind == "yml" && (ext == "yml" || ext == "yaml" || ext == "json"),
				kind == "toml" && ext == "toml":
				out = append(out, val)
			case kind == "sh" && ext == "sh":
				if i, j := strings.IndexByte(val, '{'), strings.LastIndexByte(val, '}'); i >= 0 && j > i {
					out = append(out, val[i:j+1])
				}
			}
			return true
		})
	}
	if len(out) == 0 {
		f.Fatalf("no %s seeds found in the tests", kind)
	}
	return out
}

func stringLit(e ast.Expr) string {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return ""
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		return ""
	}
	return s
}
