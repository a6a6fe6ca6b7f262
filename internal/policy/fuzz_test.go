package policy

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	"go.starlark.net/starlark"
)

// FuzzLoad loads arbitrary policy source and plans every role it declares
// for one host. It must never panic; every error is a policy *Error of one
// line that starts with a position in a policy file; a plan is valid and
// the same when planned again (hosts are planned concurrently from one
// loaded policy, so nothing may leak between Plan calls).
//
// The seeds are every policy the examples and tests know; the files they
// load, render or serve are unpacked beside the fuzzed policy. local() is
// replaced by a builtin that fails and inventory() reads only files beside
// the policy, so fuzzing runs no commands.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	for _, src := range fuzzPolicySeeds(f, dir) {
		f.Add(src)
	}
	realInventory := inventoryBuiltin(&Policy{Dir: dir})
	predeclared := starlark.StringDict{
		"local": starlark.NewBuiltin("local", func(thread *starlark.Thread, _ *starlark.Builtin, _ starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
			return nil, errorAt(callerPos(thread), "local() runs no commands while fuzzing")
		}),
		"inventory": starlark.NewBuiltin("inventory", func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name string
			if err := starlark.UnpackPositionalArgs("inventory", args, kwargs, 1, &name); err != nil || !filepath.IsLocal(name) {
				return nil, errorAt(callerPos(thread), "inventory() reads only files beside the policy while fuzzing")
			}
			return realInventory.CallInternal(thread, args, kwargs)
		}),
		"range": boundedRange,
	}
	host := web1
	host.Vars = map[string]any{"root": "/srv/fuzz", "port": 8080, "env": "prod", "admins": []any{"ann"}}
	n := 0
	f.Fuzz(func(t *testing.T, src string) {
		// A new file each time: overwriting one makes ext4 flush it on
		// close, which costs more than loading the policy.
		n++
		path := filepath.Join(dir, fmt.Sprintf("fuzz%d.star", n))
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		p, err := Load(path, LoadOptions{Predeclared: predeclared, Vars: map[string]any{"root": "/srv/fuzz"}})
		if err != nil {
			checkPolicyError(t, dir, err)
			return
		}
		for _, r := range p.Roles {
			pl, err := p.Plan(r, host)
			if err != nil {
				checkPolicyError(t, dir, err)
				if _, again := p.Plan(r, host); again == nil || again.Error() != err.Error() {
					t.Fatalf("role %s: planned again after %q: %v", r.Name, err, again)
				}
				continue
			}
			if verr := pl.Validate(); verr != nil {
				t.Fatalf("role %s: invalid plan: %v", r.Name, verr)
			}
			again, err := p.Plan(r, host)
			if err != nil {
				t.Fatalf("role %s: planned once, then failed: %v", r.Name, err)
			}
			if !reflect.DeepEqual(pl, again) {
				t.Fatalf("role %s: planning again gives another plan:\n%+v\n%+v", r.Name, pl, again)
			}
		}
	})
}

// errPos is a position in a policy file: "file.star:3:5", or just the file
// when no line applies.
var errPos = regexp.MustCompile(`^.+\.star:[0-9]+:[0-9]+$`)

func checkPolicyError(t *testing.T, dir string, err error) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error is a %T, not a policy error: %v", err, err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") || strings.TrimSpace(pe.Msg) == "" {
		t.Fatalf("error is not one line with a message: %q", msg)
	}
	if !errPos.MatchString(pe.Pos) {
		t.Fatalf("error does not start with a file:line position: %q", msg)
	}
}

// boundedRange is range() limited to 1000 elements, so that fuzzing does
// not spend minutes in range(1000000000) loops.
var boundedRange = starlark.NewBuiltin("range", func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	v, err := starlark.Universe["range"].(*starlark.Builtin).CallInternal(thread, args, kwargs)
	if err != nil {
		return nil, err
	}
	if l, ok := v.(starlark.Sequence); ok && l.Len() > 1000 {
		return nil, errorAt(callerPos(thread), "range() longer than 1000 while fuzzing")
	}
	return v, nil
})

// fuzzPolicySeeds unpacks the example policies and the policies the tests
// carry as txtar archives (in this package's tests and the CLI scripts)
// into dir, first file of a name winning, and returns every .star file's
// source as a seed.
func fuzzPolicySeeds(f *testing.F, dir string) []string {
	var seeds []string
	add := func(name string, data []byte) {
		if strings.HasSuffix(name, ".star") {
			seeds = append(seeds, string(data))
		}
		p := filepath.Join(dir, name)
		if !filepath.IsLocal(name) {
			return
		}
		if _, err := os.Stat(p); err == nil {
			return
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for _, root := range []string{"../examples/demo", "../examples/push"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			add(rel, data)
			return nil
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	archives, _ := filepath.Glob("../cmd/herd/testdata/script/*.txtar")
	for _, a := range archives {
		data, err := os.ReadFile(a)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range txtar.Parse(data).Files {
			add(file.Name, file.Data)
		}
	}
	tests, _ := filepath.Glob("*_test.go")
	fset := token.NewFileSet()
	for _, name := range tests {
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			f.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || !strings.Contains(lit.Value, ".star --") {
				return true
			}
			if s, err := strconv.Unquote(lit.Value); err == nil {
				for _, file := range txtar.Parse([]byte(s)).Files {
					add(file.Name, file.Data)
				}
			}
			return true
		})
	}
	if len(seeds) < 5 {
		f.Fatalf("only %d seed policies found", len(seeds))
	}
	return seeds
}
