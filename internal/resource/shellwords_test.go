package resource

import (
	"slices"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

func TestPlainWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil: needs the shell
	}{
		{"hostname", []string{"hostname"}},
		{"  systemctl   restart\tnginx.service ", []string{"systemctl", "restart", "nginx.service"}},
		{"useradd -m -s /bin/bash deploy", []string{"useradd", "-m", "-s", "/bin/bash", "deploy"}},
		{"touch '/srv/a b' x'y z'", []string{"touch", "/srv/a b", "xy z"}},
		{"sysctl -w net.ipv4.ip_forward=1", []string{"sysctl", "-w", "net.ipv4.ip_forward=1"}},
		{"grep -q '$HOME|;' /etc/x", []string{"grep", "-q", "$HOME|;", "/etc/x"}},
		{"", nil},
		{"   ", nil},
		{"echo hi", nil},         // builtin differs from /bin/echo
		{"cd /tmp", nil},         // changes the shell only
		{"FOO=1 make", nil},      // assignment
		{"ls *.conf", nil},       // glob
		{"ls ~/x", nil},          // tilde
		{"a && b", nil},          // list
		{"a | b", nil},           // pipe
		{"a > f", nil},           // redirection
		{"echo $HOME", nil},      // expansion
		{"a `b`", nil},           // command substitution
		{`a "b c"`, nil},         // double quotes: expansions inside
		{`a b\ c`, nil},          // backslash
		{"a 'unterminated", nil}, // sh would fail: let it
		{"a # comment", nil},     // comment
		{"a\nb", nil},            // two commands
		{"for x in a; do b; done", nil},
		{"''", nil},        // empty program name
		{"a {b,c}", nil},   // brace expansion in bash
		{"caf\u00e9", nil}, // non-ASCII
	}
	for _, tc := range tests {
		got, ok := plainWords(tc.in)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("plainWords(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

// dash exports PWD into what it runs; a program run directly has only
// herd's minimal environment. So `env` shows which way a command ran.
func TestExecCommandWithoutShellSyntaxRunsDirectly(t *testing.T) {
	for _, tc := range []struct {
		command string
		shell   bool
	}{
		{"env", false},
		{"env -u NOTHING", false},
		{"env;", true},
		{"env | cat", true},
	} {
		r := build(t, "exec", "t", plan.Params{"command": tc.command}, nil)
		c := mustApply(t, r, testEnv(t))
		if got := strings.Contains(c.Stdout, "PWD="); got != tc.shell {
			t.Errorf("%q: ran through the shell = %v, want %v; env:\n%s", tc.command, got, tc.shell, c.Stdout)
		}
	}
}

// A program PATH lacks still fails the way sh reports it.
func TestExecDirectCommandNotFoundFailsLikeTheShell(t *testing.T) {
	r := build(t, "exec", "t", plan.Params{"command": "no-such-program-herd --flag"}, nil)
	_, err := r.Apply(t.Context(), testEnv(t))
	if err == nil || !strings.Contains(err.Error(), "exit code 127") || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v, want exit 127 and not found", err)
	}
}
