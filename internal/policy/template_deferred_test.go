package policy

import (
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/inventory"
)

// fakeExchange: web2 exported "key" in an earlier run; web1 and web3 export
// it in this run, deferred (pending) in role "web".
type fakeExchange struct{}

func (fakeExchange) Values(name string) (map[string]string, error) {
	return map[string]string{"web2": "K2"}, nil
}
func (fakeExchange) Resources() ([]HostResource, error) { return nil, nil }
func (fakeExchange) Facts(string) (facts.Facts, bool, error) {
	return facts.Facts{}, false, nil
}
func (fakeExchange) Pending(role, name, host string) (wait, later []string) {
	return []string{"web1", "web3"}, nil
}

// renderParts plans a template over collect()'s dict for web1 and returns
// the content binding as text: literal parts as they are, collected parts
// as <host:name>.
func renderParts(t *testing.T, tmpl, engine string) (string, error) {
	t.Helper()
	p := mustLoad(t, `
-- site.star --
def web(host):
    template("/etc/peers", src = "t.tmpl", engine = "`+engine+`",
             vars = {"peers": collect("key"), "nested": {"list": [collect("key")["web3"]]}})
role("web", main = web)
-- t.tmpl --
`+tmpl, LoadOptions{})
	p.SetExchange(fakeExchange{})
	pl, err := p.Plan(p.Roles[0], web1)
	if err != nil {
		return "", err
	}
	r := pl.Resources[0]
	if r.Params["blob"] != nil {
		return "blob:" + string(pl.Blobs[r.Params["blob"].(string)]), nil
	}
	if len(r.Bind) != 1 || r.Bind[0].Param != "content" {
		t.Fatalf("bindings %+v, want one of content", r.Bind)
	}
	var b strings.Builder
	for _, part := range r.Bind[0].Parts {
		if part.Xch != nil {
			b.WriteString("<" + part.Xch.Host + ":" + part.Xch.Name + ">")
			continue
		}
		b.WriteString(part.Lit)
	}
	return b.String(), nil
}

// A template iterating over collect()'s dict renders on the controller
// with the deferred values cut out as parts the target fills; a value it
// would change or inspect is refused at planning.
func TestTemplateDeferredVars(t *testing.T) {
	for _, tc := range []struct {
		name, engine, tmpl, want, err string
	}{
		{"go range", "go", `{{range $h, $k := .vars.peers}}{{$h}} {{$k}};{{end}}`, "web1 <web1:key>;web2 K2;web3 <web3:key>;\n", ""},
		{"go nested list", "go", `{{index .vars.nested.list 0}}`, "<web3:key>\n", ""},
		{"go indent", "go", `{{indent 2 .vars.peers.web3}}`, "  <web3:key>\n", ""},
		{"go keys only", "go", `{{range $h, $k := .vars.peers}}{{$h}} {{end}}`, "blob:web1 web2 web3 \n", ""},
		{"jinja range", "jinja2", `{% for h, k in peers.items() %}{{ h }}={{ k }} {% endfor %}`, "web1=<web1:key> web2=K2 web3=<web3:key> ", ""},
		{"go upper", "go", `{{upper .vars.peers.web3}}`, "", "web3's export key is only known on the target"},
		{"go quote", "go", `{{quote .vars.peers.web1}}`, "", "web1's export key is only known on the target"},
		{"go eq", "go", `{{if eq .vars.peers.web3 "x"}}x{{end}}`, "", "incompatible types for comparison: deferred value and string (a deferred value such as collect()'s is only known on the target"},
		{"go len", "go", `{{len .vars.peers.web1}}`, "", "len of type deferred value (a deferred value"},
		{"jinja upper", "jinja2", `{{ peers.web3 | upper }}`, "", "web3's export key is only known on the target"},
		{"jinja length", "jinja2", `{{ peers.web3 | length }}`, "", "a deferred value is only known on the target"},
		{"jinja ordering", "jinja2", `{% if peers.web1 < "m" %}a{% endif %}`, "", "a deferred value is only known on the target"},
		{"jinja sort", "jinja2", `{{ [peers.web1, peers.web2] | sort | join(",") }}`, "", "a deferred value is only known on the target"},
		{"jinja join and loop index", "jinja2", `{% for h in ["web1", "web2"] %}{{ loop.index }}:{{ peers[h] }} {% endfor %}{{ [peers.web3, "x"] | join("+") }}`, "1:<web1:key> 2:K2 <web3:key>+x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := renderParts(t, tc.tmpl, tc.engine)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "site.star:") {
					t.Fatalf("got %q, %v; want an error at site.star: with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// A vault secret in the literal text around deferred values (a template
// over collect()'s dict that also prints a vaulted var) makes the resource
// no_log, as the same secret in a known content does.
func TestVaultSecretAroundDeferredValuesIsNoLog(t *testing.T) {
	for _, tc := range []struct {
		name, tmpl string
		noLog      bool
	}{
		{"secret beside a deferred value", `pw={{ db_password }} peer={{ peers.web3 }}`, true},
		{"deferred value alone", `peer={{ peers.web3 }}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, `
-- site.star --
inv = inventory("hosts")
def web(host):
    template("/etc/peers", src = "t.tmpl", engine = "jinja2", vars = {"peers": collect("key")})
role("web", hosts = inv.hosts, main = web)
-- hosts --
[web]
web1
-- group_vars/web.yml --
db_password: !vault |
          $ANSIBLE_VAULT;1.1;AES256
          33623038663334306563623539353135366165356565633062396533633864326263636232353063
          3537616537633135313837313138343762663961313463390a363663383135396463316534316334
          64616363623733646362663263623765333263343861333138313161623938643664373333666661
          3665613436616438370a336266666262343431643735353636323066333866636666623935333764
          62316238333561313166366233663331303834346563616561396530383161613164
-- t.tmpl --
`+tc.tmpl, LoadOptions{Vault: inventory.NewVault([]byte("txt-pass"))})
			p.SetExchange(fakeExchange{})
			h := web1
			h.Vars = map[string]any{"db_password": "Zq9-vault-s3cret-77"}
			pl, err := p.Plan(p.Roles[0], h)
			if err != nil {
				t.Fatal(err)
			}
			r := pl.Resources[0]
			if len(r.Bind) != 1 || r.Params["content"] != nil {
				t.Fatalf("want the content as a binding with a deferred part, got params %v bind %+v", r.Params, r.Bind)
			}
			if r.Meta.NoLog != tc.noLog {
				t.Errorf("no_log = %v, want %v (bind %+v)", r.Meta.NoLog, tc.noLog, r.Bind)
			}
		})
	}
}
