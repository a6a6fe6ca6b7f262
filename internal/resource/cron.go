package resource

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "cron",
		Doc: "A cron entry, managed by its name: a \"#herd: NAME\" comment line followed by the job line, " +
			"in /etc/cron.d/CRON_FILE (mode 0644, with the user field) or in user's crontab (through " +
			"the crontab command, which must be installed). Other lines are left alone. A cron.d file " +
			"whose last line goes is removed.",
		Params: []Param{
			{Name: "job", Type: String, Doc: "the command (required with state=\"present\")"},
			{Name: "minute", Type: String, Doc: "default \"*\""},
			{Name: "hour", Type: String, Doc: "default \"*\""},
			{Name: "day", Type: String, Doc: "day of month, default \"*\""},
			{Name: "month", Type: String, Doc: "default \"*\""},
			{Name: "weekday", Type: String, Doc: "default \"*\""},
			{Name: "special_time", Type: String, Doc: "reboot, yearly, annually, monthly, weekly, daily or hourly, instead of the five fields"},
			{Name: "user", Type: String, Doc: "who runs the job (default \"root\")"},
			{Name: "cron_file", Type: String, Doc: "a file name under /etc/cron.d (letters, digits, - and _); without it, user's crontab"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
		},
		Factory: newCron,
	})
}

// cronDir is where cron_file entries live; a var so unit tests can point it
// at a temp dir.
var cronDir = "/etc/cron.d"

var (
	cronFileRE  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	cronFieldRE = regexp.MustCompile(`^[0-9A-Za-z*,/-]+$`)
	cronSpecial = []string{"reboot", "yearly", "annually", "monthly", "weekly", "daily", "hourly"}
)

type cron struct {
	name, user, file string // file "" means user's crontab
	present          bool
	line             string // the job line as written
}

func newCron(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("cron %s: %w", name, err) }
	if strings.ContainsAny(name, "\n\r") {
		return fail(fmt.Errorf("the name must be a single line"))
	}
	c := &cron{name: name}
	var err error
	if c.present, err = stateParam(p); err != nil {
		return fail(err)
	}
	if c.user, err = p.Str("user", "root"); err != nil {
		return fail(err)
	}
	if c.user == "" || strings.ContainsAny(c.user, " \t\n\r:/") {
		return fail(fmt.Errorf("user %q is not a user name", c.user))
	}
	if c.file, err = p.Str("cron_file", ""); err != nil {
		return fail(err)
	}
	if p.Has("cron_file") && !cronFileRE.MatchString(c.file) {
		return fail(fmt.Errorf("cron_file %q: want a plain file name under %s (letters, digits, - and _; cron ignores others)", c.file, cronDir))
	}
	if !c.present {
		if err := absentRejects(p, "job", "minute", "hour", "day", "month", "weekday", "special_time"); err != nil {
			return fail(err)
		}
		return c, nil
	}
	job, err := p.Str("job", "")
	if err != nil {
		return fail(err)
	}
	if strings.TrimSpace(job) == "" || strings.ContainsAny(job, "\n\r") {
		return fail(fmt.Errorf("job is required with state=\"present\" and must be one non-empty line"))
	}
	when, err := cronWhen(p)
	if err != nil {
		return fail(err)
	}
	c.line = when + " "
	if c.file != "" {
		c.line += c.user + " "
	}
	c.line += job
	return c, nil
}

// cronWhen is the schedule part of the job line.
func cronWhen(p plan.Params) (string, error) {
	special, err := p.Str("special_time", "")
	if err != nil {
		return "", err
	}
	keys := []string{"minute", "hour", "day", "month", "weekday"}
	if p.Has("special_time") {
		if !slices.Contains(cronSpecial, special) {
			return "", fmt.Errorf("special_time %q is not one of %s", special, strings.Join(cronSpecial, ", "))
		}
		for _, k := range keys {
			if p.Has(k) {
				return "", fmt.Errorf("%s cannot be combined with special_time", k)
			}
		}
		return "@" + special, nil
	}
	fields := make([]string, len(keys))
	for i, k := range keys {
		if fields[i], err = p.Str(k, "*"); err != nil {
			return "", err
		}
		if !cronFieldRE.MatchString(fields[i]) {
			return "", fmt.Errorf("%s %q is not a cron field such as \"*/5\", \"1-5\" or \"mon\"", k, fields[i])
		}
	}
	return strings.Join(fields, " "), nil
}

func (c *cron) marker() string { return "#herd: " + c.name }

// edit puts the marker and job line in place (or removes them).
func (c *cron) edit(old []byte) ([]byte, string) {
	lines, trailingNL := textLines(string(old))
	at := slices.Index(lines, c.marker())
	switch {
	case !c.present && at < 0:
		return old, ""
	case !c.present:
		end := min(at+2, len(lines))
		lines = slices.Delete(lines, at, end)
		return joinLines(lines, trailingNL), "entry removed"
	case at < 0:
		lines = append(lines, c.marker(), c.line)
		return joinLines(lines, true), "entry added"
	case at+1 < len(lines) && lines[at+1] == c.line:
		return old, ""
	case at+1 < len(lines) && !strings.HasPrefix(lines[at+1], "#herd: "):
		lines[at+1] = c.line
		return joinLines(lines, trailingNL), "entry changed"
	default: // a marker without its job line
		lines = slices.Insert(lines, at+1, c.line)
		return joinLines(lines, true), "entry changed"
	}
}

func (c *cron) fileEdit() *textEdit {
	return &textEdit{kind: "cron", path: cronDir + "/" + c.file, create: true, perm: 0o644,
		uid: 0, gid: 0, removeEmpty: true, edit: c.edit}
}

func (c *cron) Check(ctx context.Context, env *Env) (Change, error) {
	if c.file != "" {
		ch, err := c.fileEdit().run(false)
		return ch, wrapErr("cron "+c.name, err)
	}
	return c.crontab(ctx, false)
}

func (c *cron) Apply(ctx context.Context, env *Env) (Change, error) {
	if c.file != "" {
		ch, err := c.fileEdit().run(true)
		return ch, wrapErr("cron "+c.name, err)
	}
	return c.crontab(ctx, true)
}

// crontab reads and, when apply is set, installs user's crontab through the
// crontab command, which validates it and tells cron (spool layouts differ
// between distributions; the command is the interface).
func (c *cron) crontab(ctx context.Context, apply bool) (Change, error) {
	bin, err := exec.LookPath("crontab")
	if err != nil {
		return Change{}, fmt.Errorf("cron %s: the crontab command is not installed (install cron, or give cron_file= for /etc/cron.d)", c.name)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-l", "-u", c.user)
	cmd.Stdout, cmd.Stderr, cmd.Env = &stdout, &stderr, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if err := cmd.Run(); err != nil {
		// "no crontab for USER" is an empty crontab, anything else fails.
		if !strings.Contains(stderr.String(), "no crontab for") {
			return Change{}, fmt.Errorf("cron %s: crontab -l -u %s: %v: %s", c.name, c.user, err, strings.TrimSpace(stderr.String()))
		}
		stdout.Reset()
	}
	old := stdout.Bytes()
	new, summary := c.edit(old)
	if summary == "" {
		return Change{}, nil
	}
	where := "crontab of " + c.user
	ch := Change{Changed: true, Summary: summary, Diff: contentDiff(where, old, new, true, true)}
	if !apply {
		return ch, nil
	}
	stderr.Reset()
	cmd = exec.CommandContext(ctx, bin, "-u", c.user, "-")
	cmd.Stdin, cmd.Stderr, cmd.Env = bytes.NewReader(new), &stderr, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if err := cmd.Run(); err != nil {
		return ch, fmt.Errorf("cron %s: crontab -u %s -: %v: %s", c.name, c.user, err, strings.TrimSpace(stderr.String()))
	}
	return ch, nil
}
