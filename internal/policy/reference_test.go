package policy

import (
	"strings"
	"testing"
)

// Every argument a resource builtin takes is documented: herd doc prints
// these, so a kind param or a hook argument without words fails here.
func TestBuiltinArgsAreDocumented(t *testing.T) {
	names := ResourceBuiltins()
	if len(names) < 10 || !contains(names, "file") || !contains(names, "template") {
		t.Fatalf("ResourceBuiltins() = %v", names)
	}
	for _, name := range names {
		d, ok := DescribeBuiltin(name)
		if !ok {
			t.Fatalf("DescribeBuiltin(%q) not found", name)
		}
		if strings.TrimSpace(d.Doc) == "" {
			t.Errorf("%s: the kind has no doc", name)
		}
		seen := map[string]bool{}
		for _, a := range d.Args {
			seen[a.Name] = true
			if strings.TrimSpace(a.Doc) == "" || a.Type == "" {
				t.Errorf("%s: argument %q has no doc or type", name, a.Name)
			}
		}
		// The builtin's own hook arguments are listed too.
		for _, a := range builtinHooks[name].argNames() {
			if !seen[a] {
				t.Errorf("%s: hook argument %q missing from its doc", name, a)
			}
		}
	}
	if _, ok := DescribeBuiltin("nosuchkind"); ok {
		t.Error("DescribeBuiltin found a kind that does not exist")
	}
	tpl, _ := DescribeBuiltin("template")
	for _, a := range tpl.Args {
		if a.Name == "content" || a.Name == "blob" {
			t.Errorf("template documents %q, which it refuses", a.Name)
		}
	}
}

func TestStatedDefault(t *testing.T) {
	cases := []struct{ doc, want string }{
		{"permission bits of files (default: keep, 0644 when created)", "keep, 0644 when created"},
		{"remove every other line (default False)", "False"},
		{`mount options, default "defaults"`, `"defaults"`},
		{"trust it unsigned (local repositories only; default False)", "False"},
		{"True: started, False: stopped, None (default): left as it is", ""},
		{"literal content; exclusive with blob", ""},
	}
	for _, c := range cases {
		if got := statedDefault(c.doc); got != c.want {
			t.Errorf("statedDefault(%q) = %q, want %q", c.doc, got, c.want)
		}
	}
}

// Every fact a policy can read has words in factDocs, and every entry of
// factDocs is still a fact.
func TestFactsAreDocumented(t *testing.T) {
	docs := FactDocs()
	seen := map[string]bool{}
	for _, d := range docs {
		seen[d.Name] = true
		if d.Doc == "" {
			t.Errorf("fact %q (%s) has no entry in factDocs", d.Name, d.Type)
		}
	}
	for name := range factDocs {
		if !seen[name] {
			t.Errorf("factDocs documents %q, which is no fact", name)
		}
	}
	for _, must := range []string{"os_family", "interfaces[NAME].ipv4", "mounts[i].fstype", "default_ipv4.address"} {
		if !seen[must] {
			t.Errorf("fact %q missing from FactDocs", must)
		}
	}
}

func TestMetaArgDocs(t *testing.T) {
	docs := MetaArgDocs()
	if len(docs) != len(metaParams) {
		t.Fatalf("%d meta docs for %d meta args", len(docs), len(metaParams))
	}
	for i, d := range docs {
		if d.Name != metaParams[i] || d.Doc == "" || d.Type == "" {
			t.Errorf("meta arg %d: %+v", i, d)
		}
	}
}
