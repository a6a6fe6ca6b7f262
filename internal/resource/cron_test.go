package resource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

func TestCronFile(t *testing.T) {
	old := cronDir
	cronDir = t.TempDir()
	t.Cleanup(func() { cronDir = old })
	path := filepath.Join(cronDir, "backup")
	env := testEnv(t)
	steps := []struct {
		name, entry string
		params      plan.Params
		want        string // summary, "" for no change
		after       string // "" for no file
	}{
		{"first entry creates the file", "nightly", plan.Params{"job": "/usr/local/bin/backup", "hour": "2", "minute": "30"},
			"create " + path + ", entry added", "#herd: nightly\n30 2 * * * root /usr/local/bin/backup\n"},
		{"rerun is stable", "nightly", plan.Params{"job": "/usr/local/bin/backup", "hour": "2", "minute": "30"},
			"", "#herd: nightly\n30 2 * * * root /usr/local/bin/backup\n"},
		{"a second entry by name", "weekly", plan.Params{"job": "rotate", "special_time": "weekly", "user": "nobody"},
			"entry added", "#herd: nightly\n30 2 * * * root /usr/local/bin/backup\n#herd: weekly\n@weekly nobody rotate\n"},
		{"changing the schedule rewrites only that line", "nightly", plan.Params{"job": "/usr/local/bin/backup", "hour": "3"},
			"entry changed", "#herd: nightly\n* 3 * * * root /usr/local/bin/backup\n#herd: weekly\n@weekly nobody rotate\n"},
		{"absent removes marker and job", "nightly", plan.Params{"state": "absent"},
			"entry removed", "#herd: weekly\n@weekly nobody rotate\n"},
		{"the last entry removes the file", "weekly", plan.Params{"state": "absent"},
			"entry removed, file removed", ""},
		{"absent twice", "weekly", plan.Params{"state": "absent"}, "", ""},
	}
	for _, s := range steps {
		s.params["cron_file"] = "backup"
		r := build(t, "cron", s.entry, s.params, nil)
		c := mustCheck(t, r, env)
		if c.Changed != (s.want != "") || c.Summary != s.want {
			t.Errorf("%s: Check = %v %q, want %q", s.name, c.Changed, c.Summary, s.want)
		}
		if c.Changed {
			applyIdempotent(t, r, env)
		}
		b, err := os.ReadFile(path)
		if s.after == "" {
			if !os.IsNotExist(err) {
				t.Errorf("%s: file left: %q %v", s.name, b, err)
			}
			continue
		}
		if string(b) != s.after {
			t.Errorf("%s: file = %q, want %q", s.name, b, s.after)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, cron wants 0644", s.name, fi.Mode())
		}
	}
}

func TestCronRejects(t *testing.T) {
	for _, tt := range []struct {
		params plan.Params
		want   string
	}{
		{plan.Params{"job": "x", "cron_file": "../etc/passwd"}, "plain file name"},
		{plan.Params{"job": "x", "cron_file": "a.conf"}, "plain file name"},
		{plan.Params{"job": "x", "minute": "1 2"}, "not a cron field"},
		{plan.Params{"job": "x", "special_time": "daily", "hour": "1"}, "cannot be combined"},
		{plan.Params{"job": "x", "special_time": "sometimes"}, "not one of"},
		{plan.Params{"job": "a\nb"}, "one non-empty line"},
		{plan.Params{}, "job is required"},
		{plan.Params{"job": "x", "user": "a b"}, "not a user name"},
		{plan.Params{"state": "absent", "hour": "1"}, "hour makes no sense"},
	} {
		_, err := New(plan.Resource{Kind: "cron", Name: "n", Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
}

func TestCronCrontabNeedsTheCommand(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := build(t, "cron", "n", plan.Params{"job": "x"}, nil)
	_, err := r.Check(t.Context(), testEnv(t))
	if err == nil || !strings.Contains(err.Error(), "crontab command is not installed") {
		t.Fatalf("err = %v", err)
	}
}
