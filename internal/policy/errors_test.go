package policy

import (
	"errors"
	"strings"
	"testing"
)

// Each bad policy must fail with a single line that starts at the user's
// file:line:col and says what is wrong, without Go internals.
func TestBadPoliciesGiveOneLinePositionedErrors(t *testing.T) {
	const role = "\nrole(\"web\", main = web)\n"
	cases := []struct {
		name   string
		files  string // txtar; site.star is the policy
		pos    string // prefix of the error
		phrase string
	}{
		{"syntax error", "-- site.star --\ndef web(host)\n    pass\n", "site.star:2:1:", "got newline, want ':'"},
		{"unknown builtin", "-- site.star --\ndef web(host):\n    fiel(\"/x\")\n" + role, "site.star:2:5:", "undefined: fiel"},
		{"unknown kwarg with suggestion", "-- site.star --\ndef web(host):\n    file(\"/etc/motd\", contnet = \"hi\")\n" + role,
			"site.star:2:9:", `unknown argument "contnet" for file (did you mean "content"?)`},
		{"unknown kwarg lists the valid ones", "-- site.star --\ndef web(host):\n    directory(\"/d\", colour = \"red\")\n" + role,
			"site.star:2:14:", `unknown argument "colour" for directory (valid: mode, owner, group, state`},
		{"unknown kwarg lists the meta ones too", "-- site.star --\ndef web(host):\n    directory(\"/d\", colour = \"red\")\n" + role,
			"site.star:2:14:", `and the meta arguments after, before, notify, retry, retry_delay, timeout, when, no_log, label; see herd doc directory)`},
		{"mode of wrong type", "-- site.star --\ndef web(host):\n    file(\"/a\", mode = True)\n" + role,
			"site.star:2:9:", `file "/a": mode must be an int such as 0o644 or an octal string such as "0644", got bool`},
		{"mode string not octal", "-- site.star --\ndef web(host):\n    file(\"/a\", mode = \"0999\")\n" + role,
			"site.star:2:9:", `mode: "0999" is not an octal mode`},
		{"content of wrong type", "-- site.star --\ndef web(host):\n    file(\"/a\", content = 5)\n" + role,
			"site.star:2:9:", `file "/a": content must be a string, got int`},
		{"after of wrong type", "-- site.star --\ndef web(host):\n    file(\"/a\", after = 5)\n" + role,
			"site.star:2:9:", `file "/a": after must list resources, "kind:name" ids or labels, got int`},
		{"missing required argument", "-- site.star --\ndef web(host):\n    link(\"/a\")\n" + role,
			"site.star:2:9:", `missing required argument "target"`},
		{"bool where string expected", "-- site.star --\ndef web(host):\n    file(\"/a\", owner = True)\n" + role,
			"site.star:2:9:", `owner must be a string, got bool`},
		{"name missing", "-- site.star --\ndef web(host):\n    file(content = \"x\")\n" + role,
			"site.star:2:9:", "takes the resource name as its only positional argument"},
		{"cycle via after", "-- site.star --\ndef web(host):\n    file(\"/a\", label = \"a\", after = [\"b\"])\n    file(\"/b\", label = \"b\", after = [\"a\"])\n" + role,
			"site.star:2:9:", "dependency cycle file:/a → file:/b → file:/a"},
		{"cycle via notify and before", "-- site.star --\ndef web(host):\n    x = noop(\"x\")\n    file(\"/a\", label = \"a\", before = [x])\n    noop(\"y\", notify = [\"a\"], after = [\"noop:x\"])\n" + role,
			"site.star:2:13:", "noop:y runs after noop:x (after= at site.star:4:9)"},
		{"unknown notify target", "-- site.star --\ndef web(host):\n    file(\"/a\", notify = [\"service:nginx\"])\n    noop(\"later\")\n" + role,
			"site.star:2:9:", `notify: unknown resource "service:nginx" in role web`},
		{"bare notify name shared by two kinds", "-- site.star --\ndef web(host):\n    noop(\"x\")\n    exec(\"x\", command = \"true\")\n    file(\"/a\", notify = [\"x\"])\n" + role,
			"site.star:4:9:", `notify: "x" is ambiguous in role web: say which, one of exec:x, noop:x`},
		{"unknown target suggests close id", "-- site.star --\ndef web(host):\n    file(\"/a\", before = [\"noop:relaod\"])\n    noop(\"reload\")\n" + role,
			"site.star:2:9:", `before: unknown resource "noop:relaod" in role web (did you mean "noop:reload"?)`},
		{"missing template file", "-- site.star --\ndef web(host):\n    template(\"/etc/motd\", src = \"templates/nope.tmpl\")\n" + role,
			"site.star:2:13:", "templates/nope.tmpl: no such file or directory"},
		{"missing source file", "-- site.star --\ndef web(host):\n    file(\"/etc/motd\", source = \"files/nope\")\n" + role,
			"site.star:2:9:", "source: files/nope: no such file or directory"},
		{"unknown template var", "-- site.star --\ndef web(host):\n    template(\"/etc/motd\", src = \"t.tmpl\")\n" + role + "-- t.tmpl --\nfine\n{{ .vars.colour }}\n",
			"site.star:2:13:", `template t.tmpl:2:8: unknown variable "colour"`},
		{"template syntax error", "-- site.star --\ndef web(host):\n    template(\"/etc/motd\", src = \"t.tmpl\")\n" + role + "-- t.tmpl --\n\n\n{{ if }}\n",
			"site.star:2:13:", "template t.tmpl:3: missing value for if"},
		{"template unknown function", "-- site.star --\ndef web(host):\n    template(\"/etc/motd\", src = \"t.tmpl\")\n" + role + "-- t.tmpl --\n{{ shout .host.name }}\n",
			"site.star:2:13:", `template t.tmpl:1: function "shout" not defined`},
		{"template without src", "-- site.star --\ndef web(host):\n    template(\"/etc/motd\", mode = 0o644)\n" + role,
			"site.star:2:13:", "missing required argument src"},
		{"duplicate resource", "-- site.star --\ndef web(host):\n    file(\"/a\")\n    file(\"/a\", content = \"x\")\n" + role,
			"site.star:3:9:", "duplicate resource file:/a (first declared at site.star:2:9)"},
		{"duplicate label", "-- site.star --\ndef web(host):\n    noop(\"a\", label = \"r\")\n    noop(\"b\", label = \"r\")\n" + role,
			"site.star:3:9:", `label "r" is already used by noop:a`},
		{"duplicate role", "-- site.star --\ndef web(host):\n    pass\n" + role + "role(\"web\", main = web)\n",
			"site.star:5:5:", `duplicate role "web" (first declared at site.star:4:5)`},
		{"resource at top level", "-- site.star --\nfile(\"/a\")\n", "site.star:1:5:", "file() can only be called inside a role's main function"},
		{"role inside main", "-- site.star --\ndef web(host):\n    role(\"x\", main = web)\n" + role,
			"site.star:2:9:", "role() can only be called at the top level"},
		{"unknown role argument", "-- site.star --\ndef web(host):\n    pass\nrole(\"web\", main = web, ssh_usr = \"x\")\n",
			"site.star:3:5:", "unexpected keyword argument \"ssh_usr\" (did you mean ssh_user?)"},
		{"deferred value in if", "-- site.star --\ndef web(host):\n    pw = password(\"db\")\n    if pw.value:\n        pass\n" + role,
			"site.star:3:10:", "password:db.value is only known on the target when password:db runs; it can be used as a string argument of a resource (also in argv lists and env dicts) or joined with +"},
		{"deferred value in str()", "-- site.star --\ndef web(host):\n    pw = password(\"db\")\n    file(\"/a\", content = str(pw.value))\n" + role,
			"site.star:3:29:", "password:db.value is only known on the target"},
		{"deferred value as int argument", "-- site.star --\ndef web(host):\n    pw = password(\"db\")\n    password(\"db2\", length = pw.value)\n" + role,
			"site.star:3:13:", "password:db.value is only known on the target"},
		{"deferred value in arithmetic", "-- site.star --\ndef web(host):\n    pw = password(\"db\")\n    x = pw.value * 2\n" + role,
			"site.star:3:18:", "password:db.value is only known on the target"},
		{"resource where string expected", "-- site.star --\ndef web(host):\n    pw = password(\"db\")\n    file(\"/a\", content = pw)\n" + role,
			"site.star:3:9:", "content must be a string, got the resource password:db (did you mean its output .value?)"},
		{"load of missing file", "-- site.star --\nload(\"lib/nope.star\", \"x\")\n", "site.star:1:1:", "lib/nope.star: no such file or directory"},
		{"load cycle", "-- site.star --\nload(\"a.star\", \"x\")\n-- a.star --\nload(\"b.star\", \"y\")\nx = 1\n-- b.star --\nload(\"a.star\", \"x\")\ny = 2\n",
			"b.star:1:1:", "load cycle: a.star → b.star → a.star"},
		{"syntax error in loaded file", "-- site.star --\nload(\"lib/h.star\", \"x\")\n-- lib/h.star --\nx = = 1\n", "lib/h.star:1:5:", "got '=', want primary expression"},
		{"error in helper from loaded file", "-- site.star --\nload(\"lib/h.star\", \"conf\")\ndef web(host):\n    conf(host)\n" + role + "-- lib/h.star --\ndef conf(host):\n    file(\"/a\", mode = \"rw\")\n",
			"lib/h.star:2:9:", `mode: "rw" is not an octal mode`},
		{"role with non-callable main", "-- site.star --\nrole(\"web\", main = \"web\")\n", "site.star:1:5:", `role "web": main must be a function taking the host, got string`},
		{"main without host parameter", "-- site.star --\ndef web():\n    pass\n" + role, "site.star:4:5:", "main function web must take one parameter (the host)"},
		{"main that fails", "-- site.star --\ndef web(host):\n    fail(\"no db for\", host.name)\n" + role, "site.star:2:9:", "fail: no db for web1"},
		{"fail at top level", "-- site.star --\nfail(\"not yet\\nsecond line\")\n", "site.star:1:5:", "fail: not yet | second line"},
		{"bad retry_delay", "-- site.star --\ndef web(host):\n    noop(\"a\", retry_delay = \"5 sec\")\n" + role,
			"site.star:2:9:", `retry_delay "5 sec" is not a duration such as "500ms"`},
		{"when not a bool", "-- site.star --\ndef web(host):\n    noop(\"a\", when = \"yes\")\n" + role,
			"site.star:2:9:", "when must be a bool (True or False), got string"},
		{"division by zero in main", "-- site.star --\ndef web(host):\n    x = 1\n    y = x // 0\n" + role, "site.star:3:11:", "floored division by zero"},
		{"unknown host attribute", "-- site.star --\ndef web(host):\n    x = host.nme\n" + role, "site.star:2:13:", "host has no .nme field or method (did you mean .name?)"},
		{"host vars are frozen", "-- site.star --\ndef web(host):\n    host.vars[\"x\"] = 1\n" + role, "site.star:2:14:", "cannot insert into frozen hash table"},
		{"kind rejects combination", "-- site.star --\ndef web(host):\n    file(\"/a\", content = \"x\", source = \"f\")\n" + role + "-- f --\ny\n",
			"site.star:2:9:", "exclusive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chdir(t, writeFiles(t, c.files))
			p, err := Load("site.star", LoadOptions{})
			if err == nil {
				if len(p.Roles) == 0 {
					t.Fatal("policy loaded without error and has no role")
				}
				_, err = p.Plan(p.Roles[0], web1)
			}
			if err == nil {
				t.Fatal("no error")
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, not *Error: %v", err, err)
			}
			msg := err.Error()
			t.Log(msg)
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error has several lines:\n%s", msg)
			}
			if !strings.HasPrefix(msg, c.pos) {
				t.Errorf("error does not start with %q:\n%s", c.pos, msg)
			}
			if !strings.Contains(msg, c.phrase) {
				t.Errorf("error does not contain %q:\n%s", c.phrase, msg)
			}
			if strings.Contains(msg, "goroutine") || strings.Contains(msg, ".go:") {
				t.Errorf("error leaks Go internals:\n%s", msg)
			}
		})
	}
}
