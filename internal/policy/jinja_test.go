package policy

import (
	"strings"
	"testing"
)

// renderJ2 plans a one-template role for web1 with a .j2 source (or
// engine="jinja2" on a .tmpl name) and returns the file, or the plan error.
func renderJ2(t *testing.T, tmpl, args string) (string, error) {
	t.Helper()
	p := mustLoad(t, `
-- site.star --
def web(host):
    template("/etc/out", `+args+`)
role("web", main = web)
-- t.j2 --
`+tmpl+`
-- t.tmpl --
`+tmpl, LoadOptions{})
	pl, err := p.Plan(p.Roles[0], web1)
	if err != nil {
		return "", err
	}
	r := pl.Resources[0]
	return strings.TrimSuffix(string(pl.Blobs[r.Params["blob"].(string)]), "\n"), nil
}

func TestJinjaTemplates(t *testing.T) {
	cases := []struct {
		name, tmpl, args, want string
	}{
		{"vars at the top level and under vars", `{{ env }} {{ vars.port }} {{ db.host }}`, `src = "t.j2"`, "prod 8080 db1"},
		{"vars= override", `{{ env }} {{ extra | join(",") }}`, `src = "t.j2", vars = {"env": "test", "extra": ["a", "b"]}`, "test a,b"},
		{"facts and host", `{{ facts.hostname }} {{ ansible_facts.os_family }} {{ inventory_hostname }} {{ host.name }}`, `src = "t.j2"`, "web1.example debian web1 web1"},
		{"engine= on another name", `{{ env | upper }}`, `src = "t.tmpl", engine = "jinja2"`, "PROD"},
		{"engine go on a .j2 name", `{{.vars.env}}`, `src = "t.j2", engine = "go"`, "prod"},
		{"if and for with loop", "{% for a in admins %}{{ loop.index }}:{{ a }}{% if not loop.last %},{% endif %}{% endfor %}", `src = "t.j2"`, "1:ann,2:bob"},
		{"default, lower, indent", "{{ missing | default('none') }} {{ 'ABC' | lower }}\n{{ 'a\nb' | indent(2, true) }}", `src = "t.j2"`, "none abc\n  a\n  b"},
		{"regex_replace with groups", `{{ 'host-12.example' | regex_replace('^host-(\\d+).*$', 'h\\1') }}`, `src = "t.j2"`, "h12"},
		{"to_json", `{{ admins | to_json }} {{ db | to_json }}`, `src = "t.j2"`, `["ann","bob"] {"host":"db1"}`},
		{"set and arithmetic", `{% set n = port + 1 %}{{ n }}`, `src = "t.j2"`, "8081"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := renderJ2(t, c.tmpl, c.args)
			if err != nil || got != c.want {
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

// Constructs the engine does not support fail at the policy line and name
// the template's line.
func TestJinjaErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct{ tmpl, want string }{
		{"a\nb\n{% include 'x.j2' %}", `template t.j2:3: unknown statement "include"`},
		{"a\n{{ env |\n upper }}\n{{ env | frobnicate }}", `template t.j2:4: unknown filter "frobnicate"`},
		{"a\n\n{{ env + }}", "template t.j2:3: unexpected end of expression"},
	} {
		_, err := renderJ2(t, c.tmpl, `src = "t.j2"`)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "site.star:2:13:") {
			t.Errorf("%q: err = %v, want site.star:2:13 and %q", c.tmpl, err, c.want)
		}
	}
	_, err := renderJ2(t, "x", `src = "t.j2", engine = "mako"`)
	if err == nil || !strings.Contains(err.Error(), `engine must be "go" or "jinja2"`) {
		t.Errorf("bad engine: %v", err)
	}
}
