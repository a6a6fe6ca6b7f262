package policy

import (
	"strings"
	"testing"
)

// renderFor plans a one-template role for web1 and returns the rendered file.
func renderFor(t *testing.T, tmpl, starVars string, opts LoadOptions) string {
	t.Helper()
	p := mustLoad(t, `
-- site.star --
def web(host):
    template("/etc/out", src = "t.tmpl", vars = `+starVars+`)
role("web", main = web)
-- t.tmpl --
`+tmpl, opts)
	pl, err := p.Plan(p.Roles[0], web1)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	r := pl.Resources[0]
	if r.Kind != "file" || r.ID != "file:/etc/out" {
		t.Fatalf("template declared %s", r.ID)
	}
	// txtar ends every file with a newline; the cases are easier to read without it.
	return strings.TrimSuffix(string(pl.Blobs[r.Params["blob"].(string)]), "\n")
}

func TestTemplateDataAndHelpers(t *testing.T) {
	cases := []struct {
		name, tmpl, vars, want string
	}{
		{"host name", `{{.host.name}}`, "{}", "web1"},
		{"inventory vars", `{{.vars.env}}:{{.vars.port}}:{{.vars.db.host}}`, "{}", "prod:8080:db1"},
		{"vars= adds and overrides", `{{.vars.env}} {{.vars.extra}}`, `{"env": "test", "extra": [1, True]}`, "test [1 true]"},
		{"facts", `{{.facts.hostname}} {{.facts.os_family}} {{.facts.distro}} {{.facts.version}} {{.facts.arch}} {{.facts.user}} {{.facts.uid}} {{.facts.home}} {{.facts.env.LANG}} {{.facts.kernel}} {{.facts.cpus}}`, "{}",
			"web1.example debian debian 12 amd64 root 0 /root C.UTF-8 6.1.0 4"},
		{"default for an optional var", `{{index .vars "missing" | default "none"}}`, "{}", "none"},
		{"default keeps a set value", `{{.vars.env | default "none"}}`, "{}", "prod"},
		{"default replaces empty string", `{{.vars.e | default "x"}}`, `{"e": ""}`, "x"},
		{"join", `{{join ", " .vars.admins}}`, "{}", "ann, bob"},
		{"join in a pipeline", `{{.vars.admins | join "+"}}`, "{}", "ann+bob"},
		{"upper and lower", `{{upper .vars.env}} {{lower "ABC"}}`, "{}", "PROD abc"},
		{"quote", `{{quote .vars.q}}`, `{"q": "say \"hi\""}`, `"say \"hi\""`},
		{"indent skips empty lines", "x:\n{{.vars.body | indent 2}}", `{"body": "a: 1\n\nb: 2"}`, "x:\n  a: 1\n\n  b: 2"},
		{"range over a list", `{{range .vars.admins}}[{{.}}]{{end}}`, "{}", "[ann][bob]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := renderFor(t, c.tmpl, c.vars, LoadOptions{}); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestExtraVarsOverrideInventoryEverywhere(t *testing.T) {
	got := renderFor(t, `{{.vars.env}} {{.vars.only_e}}`, "{}", LoadOptions{Vars: map[string]any{"env": "dev", "only_e": int64(7)}})
	if got != "dev 7" {
		t.Fatalf("template saw %q", got)
	}
	p := mustLoad(t, `
-- site.star --
def web(host):
    noop(host.vars["env"] + "-" + str(host.vars["port"]))
role("web", main = web)
`, LoadOptions{Vars: map[string]any{"env": "dev"}})
	pl, err := p.Plan(p.Roles[0], web1)
	if err != nil {
		t.Fatal(err)
	}
	if id := pl.Resources[0].ID; id != "noop:dev-8080" {
		t.Fatalf("host.vars gave %s", id)
	}
}
