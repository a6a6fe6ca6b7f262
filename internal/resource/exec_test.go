package resource

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/plan"
)

func TestExecGuards(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	writeFile(t, exists, "", 0o644)
	tests := []struct {
		name        string
		params      plan.Params
		wantChanged bool
		wantSummary string
	}{
		{"no guard would run", plan.Params{}, true, "would run"},
		{"creates missing would run", plan.Params{"creates": filepath.Join(dir, "nope")}, true, "would run"},
		{"creates present skips", plan.Params{"creates": exists}, false, "skipped: " + exists + " exists"},
		{"unless succeeding skips", plan.Params{"unless": "true"}, false, "skipped: unless succeeded"},
		{"unless failing runs", plan.Params{"unless": "exit 3"}, true, "would run"},
		{"only_if succeeding runs", plan.Params{"only_if": "test -e " + exists}, true, "would run"},
		{"only_if failing skips", plan.Params{"only_if": "false"}, false, "skipped: only_if failed"},
		{"refresh_only does not run on its own", plan.Params{"refresh_only": true}, false, "runs only when refreshed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "ran")
			p := tt.params.Clone()
			p["command"] = "touch " + marker
			r := build(t, "exec", "t", p, nil)
			c := mustCheck(t, r, testEnv(t))
			if c.Changed != tt.wantChanged || c.Summary != tt.wantSummary {
				t.Errorf("Check = %v %q, want %v %q", c.Changed, c.Summary, tt.wantChanged, tt.wantSummary)
			}
			if _, err := os.Lstat(marker); err == nil {
				t.Error("Check ran the command")
			}
		})
	}
}

func TestExecRunsAndSeparatesOutput(t *testing.T) {
	t.Setenv("HERD_SHOULD_NOT_LEAK", "1")
	cwd := t.TempDir()
	r := build(t, "exec", "t", plan.Params{
		"command": `echo out; echo err >&2; echo "$GREETING"; pwd; env | grep -c HERD_SHOULD_NOT_LEAK; echo "$PATH"`,
		"env":     map[string]any{"GREETING": "hello"}, // as decoded from JSON
		"cwd":     cwd,
	}, nil)
	c := mustApply(t, r, testEnv(t))
	wantOut := "out\nhello\n" + cwd + "\n0\n" + defaultPath + "\n"
	if !c.Changed || c.Stdout != wantOut || c.Stderr != "err\n" {
		t.Errorf("Apply = %+v\nwant stdout %q, stderr %q", c, wantOut, "err\n")
	}
	out := r.(Sender).Outputs()
	if out["stdout"] != wantOut || out["stderr"] != "err\n" || out["rc"] != "0" {
		t.Errorf("Outputs = %q", out)
	}
}

func TestExecArgvUsesNoShell(t *testing.T) {
	r := build(t, "exec", "t", plan.Params{"argv": []any{"echo", "$HOME", "a b"}}, nil)
	if c := mustApply(t, r, testEnv(t)); c.Stdout != "$HOME a b\n" {
		t.Errorf("stdout = %q", c.Stdout)
	}
}

func TestExecFailureNamesExitCodeAndStderrTail(t *testing.T) {
	r := build(t, "exec", "migrate", plan.Params{
		"command": `for i in $(seq 1 30); do echo "line $i" >&2; done; echo partial; exit 7`,
	}, nil)
	c, err := r.Apply(context.Background(), testEnv(t))
	wantErrContaining(t, err, "exec migrate", "exit code 7", "line 21", "line 30")
	if strings.Contains(err.Error(), "line 20\n") {
		t.Errorf("error quotes more than the last %d lines: %v", errTailLines, err)
	}
	if c.Stdout != "partial\n" || r.(Sender).Outputs()["rc"] != "7" {
		t.Errorf("outputs of a failed run not kept: %+v %q", c, r.(Sender).Outputs())
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := build(t, "exec", "hang", plan.Params{
		"command": "sleep 60 & echo $! > " + pidFile + "; wait",
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Apply(ctx, testEnv(t))
	wantErrContaining(t, err, "exec hang", "stopped", "deadline exceeded")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Apply took %v after the deadline", d)
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(5 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("background child %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processAlive treats zombies as dead: they are killed, only not yet reaped
// (by whatever reaps orphans in this container).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestExecRefresh(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "m")
	writeFile(t, marker, "", 0o644)
	count := filepath.Join(dir, "count")
	r := build(t, "exec", "t", plan.Params{"command": "echo x >> " + count, "creates": marker, "refresh_only": true}, nil)
	env := testEnv(t)
	if c := mustCheck(t, r, env); c.Changed {
		t.Fatal("refresh_only exec wants to run unrefreshed")
	}
	c, err := r.(Refresher).Refresh(context.Background(), env)
	if err != nil || !c.Changed {
		t.Fatalf("Refresh = %+v, %v", c, err)
	}
	if got := readFile(t, count); got != "x\n" {
		t.Errorf("command ran %q, want once despite creates", got)
	}
	r = build(t, "exec", "t", plan.Params{"command": "echo x >> " + count, "unless": "true"}, nil)
	if c, err := r.(Refresher).Refresh(context.Background(), env); err != nil || c.Changed {
		t.Errorf("Refresh ignored unless: %+v %v", c, err)
	}
}

func TestExecAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	r := build(t, "exec", "t", plan.Params{"command": "id -u; id -g; echo $HOME $USER", "user": "nobody"}, nil)
	c := mustApply(t, r, testEnv(t))
	if !strings.HasPrefix(c.Stdout, "65534\n65534\n") || !strings.Contains(c.Stdout, " nobody") {
		t.Errorf("stdout = %q", c.Stdout)
	}
	r = build(t, "exec", "t", plan.Params{"command": "true", "user": "no-such-user-herd"}, nil)
	_, err := r.Apply(context.Background(), testEnv(t))
	wantErrContaining(t, err, `user "no-such-user-herd": no such user`)
}

func TestExecOutputIsCapped(t *testing.T) {
	r := build(t, "exec", "t", plan.Params{"command": "head -c 3000000 /dev/zero | tr '\\0' a"}, nil)
	c := mustApply(t, r, testEnv(t))
	if !strings.HasPrefix(c.Stdout, strings.Repeat("a", maxOutput)+"\n[herd: output truncated, ") ||
		!strings.Contains(c.Stdout, "bytes dropped]") {
		t.Errorf("stdout not capped with a note: %d bytes, ends %q", len(c.Stdout), c.Stdout[max(0, len(c.Stdout)-80):])
	}
}

func TestExecFactoryErrors(t *testing.T) {
	for _, tt := range []struct {
		params plan.Params
		want   string
	}{
		{plan.Params{"command": "a", "argv": []string{"a"}}, "exclusive"},
		{plan.Params{}, "give command or argv"},
		{plan.Params{"argv": []string{}}, "argv is empty"},
		{plan.Params{"command": "a", "creates": "rel"}, "creates must be an absolute path"},
		{plan.Params{"command": "a", "env": map[string]any{"A=B": "x"}}, "not a valid variable name"},
		{plan.Params{"command": "a", "env": map[string]any{"A": 1.0}}, "want string"},
	} {
		_, err := New(plan.Resource{Kind: "exec", Name: "x", Params: tt.params}, nil)
		wantErrContaining(t, err, "exec x", tt.want)
	}
}
