package policy

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/plan"
)

const sitePolicy = `
-- site.star --
load("lib/helpers.star", "app_dir")

def web(host):
    d = directory(app_dir, mode = 0o755)
    pw = password("db", length = 32)
    file(app_dir + "/db.conf", content = "password=" + pw.value + "\n", mode = "0600", no_log = True)
    template("/etc/motd", src = "templates/motd.tmpl", vars = {"greeting": "hello"}, mode = 0o644, notify = ["reload"])
    file(app_dir + "/static.conf", source = "files/static.conf", after = [d])
    noop("reload-app", label = "reload", message = "reloading", retry = 2, retry_delay = "500ms",
         timeout = 30, when = host.vars["env"] == "prod")
    print("planned", host.name)

role("web", main = web, ssh_user = "deploy", sudo = True, serial = 10)
-- lib/helpers.star --
app_dir = "/etc/" + "app"
-- templates/motd.tmpl --
{{.vars.greeting}} {{.host.name}} ({{.facts.distro}} {{.facts.version}}, {{.facts.cpus}} cpus)
admins: {{join ", " .vars.admins}}; db={{.vars.db.host}}:{{index .vars "dbport" | default 5432}}
-- files/static.conf --
static=1
`

func TestPlanProducesResourcesEdgesBindingsBlobsAndMeta(t *testing.T) {
	var out bytes.Buffer
	p := mustLoad(t, sitePolicy, LoadOptions{Stdout: &out})
	if len(p.Roles) != 1 {
		t.Fatalf("roles = %d", len(p.Roles))
	}
	r := p.Roles[0]
	if r.Name != "web" || r.SSHUser != "deploy" || !r.Sudo || r.Serial != 10 || !r.CheckHostKeys || r.Pos != "site.star:13:5" {
		t.Fatalf("role = %+v", r)
	}
	pl, err := p.Plan(r, web1)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if pl.Role != "web" || pl.Host != "web1" || pl.Version != plan.Version {
		t.Fatalf("plan header = %q %q %d", pl.Role, pl.Host, pl.Version)
	}
	motd := "hello web1 (debian 12, 4 cpus)\nadmins: ann, bob; db=db1:5432\n"
	motdHash, staticHash := plan.Hash([]byte(motd)), plan.Hash([]byte("static=1\n"))
	want := []plan.Resource{
		{ID: "directory:/etc/app", Kind: "directory", Name: "/etc/app", Pos: "site.star:4:18",
			Params: plan.Params{"mode": int64(0o755)}},
		{ID: "password:db", Kind: "password", Name: "db", Pos: "site.star:5:18",
			Params: plan.Params{"length": int64(32)}, After: []string{"directory:/etc/app"}},
		{ID: "file:/etc/app/db.conf", Kind: "file", Name: "/etc/app/db.conf", Pos: "site.star:6:9",
			Params: plan.Params{"mode": int64(0o600)}, After: []string{"password:db"},
			Bind: []plan.Binding{{Param: "content", Parts: []plan.Part{{Lit: "password="}, {From: "password:db", Field: "value"}, {Lit: "\n"}}}},
			Meta: plan.Meta{NoLog: true}},
		{ID: "file:/etc/motd", Kind: "file", Name: "/etc/motd", Pos: "site.star:7:13",
			Params: plan.Params{"mode": int64(0o644), "blob": motdHash}, After: []string{"file:/etc/app/db.conf"},
			Notify: []string{"noop:reload-app"}},
		{ID: "file:/etc/app/static.conf", Kind: "file", Name: "/etc/app/static.conf", Pos: "site.star:8:9",
			Params: plan.Params{"blob": staticHash}, After: []string{"directory:/etc/app"}},
		{ID: "noop:reload-app", Kind: "noop", Name: "reload-app", Pos: "site.star:9:9",
			Params: plan.Params{"message": "reloading"}, After: []string{"file:/etc/motd", "file:/etc/app/static.conf"},
			Meta: plan.Meta{Retry: 2, RetryDelay: 500 * time.Millisecond, Timeout: 30 * time.Second}},
	}
	if !reflect.DeepEqual(pl.Resources, want) {
		for i := range max(len(want), len(pl.Resources)) {
			var g, w plan.Resource
			if i < len(pl.Resources) {
				g = pl.Resources[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("resource %d:\n got %+v\nwant %+v", i, g, w)
			}
		}
	}
	if string(pl.Blobs[motdHash]) != motd || string(pl.Blobs[staticHash]) != "static=1\n" || len(pl.Blobs) != 2 {
		t.Errorf("blobs = %q", pl.Blobs)
	}
	if got := pl.Resources[2].Deps(); !reflect.DeepEqual(got, []string{"password:db"}) {
		t.Errorf("db.conf deps = %v", got)
	}
	if out.String() != "[web1] planned web1\n" {
		t.Errorf("print output = %q", out.String())
	}
	// when=False marks the resource skipped; it stays in the graph.
	staging := web1
	staging.Vars = map[string]any{"env": "staging", "admins": []any{}, "db": map[string]any{"host": "x"}}
	pl, err = p.Plan(r, staging)
	if err != nil {
		t.Fatal(err)
	}
	if last := pl.Resources[len(pl.Resources)-1]; !last.Meta.Skip {
		t.Errorf("when=False did not set Skip: %+v", last.Meta)
	}
	if !strings.Contains(string(pl.Blobs[pl.Resources[3].Params["blob"].(string)]), "admins: ;") {
		t.Errorf("template not rendered per host")
	}
}
