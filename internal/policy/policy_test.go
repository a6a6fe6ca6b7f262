package policy

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"go.starlark.net/starlark"

	"github.com/herd-project/herd/internal/resource"
)

func TestRoleStoresPushSettingsInDeclarationOrder(t *testing.T) {
	p := mustLoad(t, `
-- site.star --
def web(host):
    pass
def db(host):
    pass
role("web", main = web, hosts = ["web*"], ssh_user = "deploy", sudo = True, sudo_user = "app",
     become_method = "doas", serial = 5, check_host_keys = False, max_fail = 2, parallel = True,
     before_connect = lambda h: "drain " + h.name, after_connect = lambda h: None,
     should_contact = lambda h: h.vars.get("env") == "prod", fileserving_paths = ["files/", "templates/*.tmpl"])
role("db", main = db)
`, LoadOptions{})
	if len(p.Roles) != 2 || p.Roles[0].Name != "web" || p.Roles[1].Name != "db" || p.Role("db") != p.Roles[1] {
		t.Fatalf("roles = %v", p.Roles)
	}
	w, d := p.Roles[0], p.Roles[1]
	if w.SSHUser != "deploy" || !w.Sudo || w.SudoUser != "app" || w.BecomeMethod != "doas" || w.Serial != 5 ||
		w.CheckHostKeys || w.MaxFail != 2 || !w.Parallel || w.Hosts == nil ||
		!reflect.DeepEqual(w.FileservingPaths, []string{"files/", "templates/*.tmpl"}) {
		t.Errorf("web = %+v", w)
	}
	if d.Serial != 80 || !d.CheckHostKeys || d.Hosts != nil || d.BeforeConnect != nil || d.Parallel {
		t.Errorf("db defaults = %+v", d)
	}
	v, err := w.BeforeConnect.Call(web1)
	if err != nil || v != starlark.String("drain web1") {
		t.Errorf("before_connect = %v, %v", v, err)
	}
	v, err = w.ShouldContact.Call(web1)
	if err != nil || v != starlark.True {
		t.Errorf("should_contact = %v, %v", v, err)
	}
	if p.File != "site.star" || p.Dir != "." {
		t.Errorf("File, Dir = %q, %q", p.File, p.Dir)
	}
}

func TestCallReportsHookErrorsAtThePolicyLine(t *testing.T) {
	p := mustLoad(t, `
-- site.star --
def web(host):
    pass
def check(h):
    fail("host", h.name, "is drained")
def declare(h):
    noop("x")
role("web", main = web, before_connect = check, after_connect = declare)
`, LoadOptions{})
	_, err := p.Roles[0].BeforeConnect.Call(web1)
	if err == nil || err.Error() != "site.star:4:9: fail: host web1 is drained" {
		t.Errorf("err = %v", err)
	}
	_, err = p.Roles[0].AfterConnect.Call(web1)
	if err == nil || !strings.HasPrefix(err.Error(), "site.star:6:9: noop() can only be called inside a role's main function") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadResolvesRelativeToLoadingFileAndRunsModulesOnce(t *testing.T) {
	var out bytes.Buffer
	p := mustLoad(t, `
-- site.star --
load("lib/a.star", "a")
load("lib/b.star", "b")
def web(host):
    noop(a + b)
role("web", main = web)
-- lib/a.star --
load("common.star", "c")
a = "a" + c
-- lib/b.star --
load("common.star", "c")
b = "b" + c
-- lib/common.star --
print("common loaded")
c = "c"
`, LoadOptions{Stdout: &out})
	if out.String() != "common loaded\n" {
		t.Errorf("print output = %q, want the shared module to run once", out.String())
	}
	pl, err := p.Plan(p.Roles[0], web1)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Resources[0].ID != "noop:acbc" {
		t.Errorf("id = %s", pl.Resources[0].ID)
	}
}

func TestPredeclaredExtendsBuiltins(t *testing.T) {
	inv := starlark.NewBuiltin("inventory", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		return starlark.NewList([]starlark.Value{starlark.String("web1")}), nil
	})
	p := mustLoad(t, `
-- site.star --
inv = inventory("inventory.toml")
def web(host):
    noop("x", message = facts_of(host))
def facts_of(host):
    f = host.facts
    return "%s %s %d %s" % (f.os_family, f.arch, f.cpus, f.env["LANG"])
role("web", main = web, hosts = inv)
`, LoadOptions{Predeclared: starlark.StringDict{"inventory": inv}})
	if got := p.Roles[0].Hosts.String(); got != `["web1"]` {
		t.Errorf("hosts = %s", got)
	}
	pl, err := p.Plan(p.Roles[0], web1)
	if err != nil {
		t.Fatal(err)
	}
	if m := pl.Resources[0].Params["message"]; m != "debian amd64 4 C.UTF-8" {
		t.Errorf("message = %v", m)
	}
}

// Plan runs for many hosts at once in the controller; run with -race.
func TestPlanIsSafeForConcurrentHosts(t *testing.T) {
	p := mustLoad(t, sitePolicy, LoadOptions{Stdout: &bytes.Buffer{}})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := web1
			h.Name = fmt.Sprintf("web%d", i)
			pl, err := p.Plan(p.Roles[0], h)
			if err == nil && (pl.Host != h.Name || len(pl.Resources) != 6) {
				err = fmt.Errorf("host %s: got plan for %s with %d resources", h.Name, pl.Host, len(pl.Resources))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Meta and policy-level arguments share the keyword space with kind params;
// a kind that declared one of them would silently lose it.
func TestNoKindParamShadowsPolicyArguments(t *testing.T) {
	reserved := append([]string{"source", "src", "vars"}, metaParams...)
	for _, k := range resource.Kinds() {
		s, _ := resource.Lookup(k)
		for _, name := range reserved {
			if _, clash := s.Param(name); clash {
				t.Errorf("kind %s declares param %q, which the policy layer reserves", k, name)
			}
		}
	}
}
