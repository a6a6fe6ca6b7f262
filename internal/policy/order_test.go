package policy

import (
	"reflect"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

func planFor(t *testing.T, files string) *plan.Plan {
	t.Helper()
	p := mustLoad(t, files, LoadOptions{})
	pl, err := p.Plan(p.Roles[0], web1)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return pl
}

func TestOrderingEdges(t *testing.T) {
	cases := []struct {
		name   string
		main   string // body of main(host), indented 4
		role   string // extra role() kwargs
		after  map[string][]string
		notify map[string][]string
	}{
		{"declaration order chains resources", `
    noop("a")
    noop("b")
    noop("c")`, "",
			map[string][]string{"noop:b": {"noop:a"}, "noop:c": {"noop:b"}}, nil},
		{"parallel role has no implicit order", `
    noop("a")
    noop("b")`, ", parallel = True",
			map[string][]string{}, nil},
		{"explicit after replaces implicit order", `
    a = noop("a")
    noop("b")
    noop("c", after = [a])`, "",
			map[string][]string{"noop:b": {"noop:a"}, "noop:c": {"noop:a"}}, nil},
		{"after=[] opts out of order", `
    noop("a")
    noop("b", after = [])`, "",
			map[string][]string{}, nil},
		{"before a later resource by id", `
    noop("a", before = ["noop:c"])
    noop("b")
    noop("c")`, "",
			map[string][]string{"noop:b": {"noop:a"}, "noop:c": {"noop:a", "noop:b"}}, nil},
		{"notify a later resource by label orders it after", `
    noop("conf", notify = ["restart"], after = [])
    noop("other", after = [])
    noop("svc", label = "restart", after = [])`, "",
			map[string][]string{"noop:svc": {"noop:conf"}}, map[string][]string{"noop:conf": {"noop:svc"}}},
		{"notify by a bare name unique in the role, as Ansible users write it", `
    file("/etc/app.conf", content = "x", notify = ["app"], after = [])
    service("app", running = True, after = [])`, "",
			map[string][]string{"service:app": {"file:/etc/app.conf"}}, map[string][]string{"file:/etc/app.conf": {"service:app"}}},
		{"notify an earlier resource drops the contradicting implicit edge", `
    noop("svc")
    noop("conf", notify = ["noop:svc"])
    noop("after-conf")`, "",
			map[string][]string{"noop:svc": {"noop:conf"}, "noop:after-conf": {"noop:conf"}}, map[string][]string{"noop:conf": {"noop:svc"}}},
		{"an implicit edge added earlier counts when later ones are weighed", `
    noop("a")
    noop("b", before = ["noop:c"])
    noop("c")
    noop("d", before = ["noop:a"])`, "",
			// d → a comes from before=; a → b is declaration order; then
			// d after c would close d → a → b → c → d, so it is dropped.
			map[string][]string{"noop:a": {"noop:d"}, "noop:b": {"noop:a"}, "noop:c": {"noop:b"}}, nil},
		{"resource values and ids mix in one list", `
    a = noop("a")
    noop("b", label = "bee")
    noop("c", after = [a, "bee", "noop:a"])`, "",
			map[string][]string{"noop:b": {"noop:a"}, "noop:c": {"noop:a", "noop:b"}}, nil},
		{"a single target needs no list", `
    noop("a")
    noop("b", after = "noop:a")
    noop("c", notify = "noop:a")`, ", parallel = True",
			map[string][]string{"noop:b": {"noop:a"}, "noop:a": {"noop:c"}}, map[string][]string{"noop:c": {"noop:a"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pl := planFor(t, "-- site.star --\ndef web(host):"+c.main+"\nrole(\"web\", main = web"+c.role+")\n")
			for _, r := range pl.Resources {
				if !reflect.DeepEqual(r.After, c.after[r.ID]) {
					t.Errorf("%s.After = %v, want %v", r.ID, r.After, c.after[r.ID])
				}
				if !reflect.DeepEqual(r.Notify, c.notify[r.ID]) {
					t.Errorf("%s.Notify = %v, want %v", r.ID, r.Notify, c.notify[r.ID])
				}
			}
		})
	}
}

func TestDeferredValuesBecomeBindings(t *testing.T) {
	pl := planFor(t, `-- site.star --
def web(host):
    a = password("a")
    b = password("b")
    noop("unrelated")
    f = file("/etc/pw", content = "a=" + a.value + ":" + b.value + "\n", owner = "root", after = [])
    noop("n", message = a.value, label = "n")
role("web", main = web)
`)
	f := pl.Resources[3]
	wantBind := []plan.Binding{{Param: "content", Parts: []plan.Part{
		{Lit: "a="}, {From: "password:a", Field: "value"}, {Lit: ":"}, {From: "password:b", Field: "value"}, {Lit: "\n"},
	}}}
	if !reflect.DeepEqual(f.Bind, wantBind) {
		t.Errorf("bindings = %+v", f.Bind)
	}
	if f.Params.Has("content") || f.Params["owner"] != "root" {
		t.Errorf("params = %v (a bound param must not have a value)", f.Params)
	}
	if f.After != nil {
		t.Errorf("after=[] with bindings: After = %v, want none (bindings are deps already)", f.After)
	}
	if got := f.Deps(); !reflect.DeepEqual(got, []string{"password:a", "password:b"}) {
		t.Errorf("Deps = %v", got)
	}
	if n := pl.Resources[4]; n.Bind[0].Param != "message" || !reflect.DeepEqual(n.After, []string{"file:/etc/pw"}) {
		t.Errorf("noop n = %+v", n)
	}
}
