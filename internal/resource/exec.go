package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "exec",
		Doc: "Runs a command unless a guard says it is not needed. On refresh it runs again: creates is " +
			"ignored then (the point of a refresh is to redo work whose result exists), unless and " +
			"only_if still apply.",
		Outputs: []string{"stdout", "stderr", "rc"},
		Params: []Param{
			{Name: "command", Type: String, Doc: "shell command run with /bin/sh -c (directly, without sh, when it is plain words: no quoting but single quotes, no $, globs, pipes, redirections, builtins); exclusive with argv"},
			{Name: "argv", Type: StringList, Doc: "program and arguments run without a shell; exclusive with command"},
			{Name: "creates", Type: String, Doc: "absolute path: skip if it exists"},
			{Name: "unless", Type: String, Doc: "shell command: skip if it exits 0"},
			{Name: "only_if", Type: String, Doc: "shell command: run only if it exits 0"},
			{Name: "cwd", Type: String, Doc: "absolute working directory (default /)"},
			{Name: "env", Type: StringMap, Doc: "variables added to a minimal environment (PATH, HOME, USER, LOGNAME, LANG)"},
			{Name: "user", Type: String, Doc: "run the command and its guards as this user, name or uid (herd must run as root)"},
			{Name: "refresh_only", Type: Bool, Doc: "run only when refreshed by a notify"},
			{Name: "changed_codes", Type: IntList, Doc: "exit codes that mean the command changed something (Ansible's changed_when on rc; default [0] minus ok_codes)"},
			{Name: "ok_codes", Type: IntList, Doc: "exit codes that mean success with nothing changed (default [0] minus changed_codes); any other code fails"},
			{Name: "changes", Type: Bool, Doc: "False: a read-only command, never reported as changed, in check mode either (changed_when: false; default True)"},
		},
		Factory: newExec,
	})
}

const (
	// maxOutput caps each of stdout and stderr kept in memory and events.
	maxOutput = 1 << 20
	// errTailLines of stderr go into the error of a failed command.
	errTailLines = 10
	// pipeGrace is how long a finished command's background children may
	// hold its output pipes open before herd stops reading them.
	pipeGrace   = 2 * time.Second
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

type execCmd struct {
	name string
	argv []string // the command as run: ["/bin/sh", "-c", command] for command=
	// direct is command= split into words when it has no shell syntax
	// (plainWords): run as a program when PATH has it, without sh.
	direct      []string
	creates     string
	unless      string
	onlyIf      string
	cwd         string
	env         map[string]string
	user        string
	refreshOnly bool
	// verdict, when set, decides from the exit code whether the command
	// changed something, succeeded without a change, or failed.
	verdict *exitVerdict

	ran            bool
	stdout, stderr string
	rc             int
}

func newExec(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	e := &execCmd{name: name}
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("exec %s: %w", name, err) }
	command, err := p.Str("command", "")
	if err != nil {
		return fail(err)
	}
	argv, err := p.List("argv")
	if err != nil {
		return fail(err)
	}
	switch {
	case p.Has("command") && p.Has("argv"):
		return fail(errors.New("command and argv are exclusive; give one"))
	case p.Has("command"):
		if strings.TrimSpace(command) == "" {
			return fail(errors.New("command is empty"))
		}
		e.argv = []string{"/bin/sh", "-c", command}
		e.direct, _ = plainWords(command)
	case p.Has("argv"):
		if len(argv) == 0 || argv[0] == "" {
			return fail(errors.New("argv is empty"))
		}
		e.argv = argv
	default:
		return fail(errors.New("give command or argv"))
	}
	for _, s := range []struct {
		key string
		dst *string
	}{{"creates", &e.creates}, {"unless", &e.unless}, {"only_if", &e.onlyIf}, {"cwd", &e.cwd}, {"user", &e.user}} {
		if *s.dst, err = p.Str(s.key, ""); err != nil {
			return fail(err)
		}
	}
	for _, k := range []string{"creates", "cwd"} {
		if v, _ := p.Str(k, ""); p.Has(k) && !filepath.IsAbs(v) {
			return fail(fmt.Errorf("%s must be an absolute path, got %q", k, v))
		}
	}
	if e.env, err = p.Map("env"); err != nil {
		return fail(err)
	}
	for k := range e.env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fail(fmt.Errorf("env: %q is not a valid variable name", k))
		}
	}
	if e.refreshOnly, err = p.Bool("refresh_only", false); err != nil {
		return fail(err)
	}
	if e.cwd == "" {
		e.cwd = "/"
	}
	if e.verdict, err = newExitVerdict(p); err != nil {
		return fail(err)
	}
	return e, nil
}

// Check runs the guards, which must therefore be free of side effects, and
// says whether the command would run.
func (e *execCmd) Check(ctx context.Context, env *Env) (Change, error) {
	if e.refreshOnly {
		return Change{Summary: "runs only when refreshed"}, nil
	}
	if e.creates != "" {
		if _, err := os.Lstat(e.creates); err == nil {
			return Change{Summary: "skipped: " + e.creates + " exists"}, nil
		}
	}
	return e.checkConditions(ctx)
}

func (e *execCmd) checkConditions(ctx context.Context) (Change, error) {
	if e.unless != "" {
		ok, err := e.guard(ctx, "unless", e.unless)
		if err != nil {
			return Change{}, err
		}
		if ok {
			return Change{Summary: "skipped: unless succeeded"}, nil
		}
	}
	if e.onlyIf != "" {
		ok, err := e.guard(ctx, "only_if", e.onlyIf)
		if err != nil {
			return Change{}, err
		}
		if !ok {
			return Change{Summary: "skipped: only_if failed"}, nil
		}
	}
	if e.verdict != nil {
		return e.verdict.check(), nil
	}
	return Change{Changed: true, Summary: "would run"}, nil
}

func (e *execCmd) Apply(ctx context.Context, env *Env) (Change, error) { return e.run(ctx) }

// Refresh runs the command again even if creates exists; unless and only_if
// still decide. A command that already ran in this run (its Apply) is not
// run a second time: the refresh is satisfied by that run.
func (e *execCmd) Refresh(ctx context.Context, env *Env) (Change, error) {
	if e.ran {
		return Change{Summary: "already ran in this run"}, nil
	}
	c, err := e.checkConditions(ctx)
	if err != nil || !c.Changed {
		return c, err
	}
	return e.run(ctx)
}

// Outputs are only what a command that ran printed: a command skipped by
// its guards (or not run in check mode) sends nothing, so a receiver fails
// (or, in check mode, says it depends on the run) instead of silently
// receiving "" — a file bound to cmd.stdout must not be emptied.
func (e *execCmd) Outputs() map[string]string {
	if !e.ran {
		return map[string]string{}
	}
	return map[string]string{"stdout": e.stdout, "stderr": e.stderr, "rc": strconv.Itoa(e.rc)}
}

// guard runs a shell condition and reports whether it exited 0.
func (e *execCmd) guard(ctx context.Context, what, command string) (bool, error) {
	var out, errOut capture
	cmd, err := e.command(ctx, []string{"/bin/sh", "-c", command}, &out, &errOut)
	if err != nil {
		return false, err
	}
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return false, fmt.Errorf("exec %s: %s stopped: %w", e.name, what, context.Cause(ctx))
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		return true, nil
	case errors.As(err, &exitErr):
		return false, nil
	}
	return false, fmt.Errorf("exec %s: %s: %w", e.name, what, err)
}

func (e *execCmd) run(ctx context.Context) (Change, error) {
	var out, errOut capture
	argv := e.argv
	if e.direct != nil {
		// A program PATH does not have runs through sh after all, which
		// reports it the usual way (exit 127, "not found" on stderr).
		path := defaultPath
		if p, ok := e.env["PATH"]; ok {
			path = p
		}
		if _, err := lookPath(e.direct[0], path); err == nil {
			argv = e.direct
		}
	}
	cmd, err := e.command(ctx, argv, &out, &errOut)
	if err != nil {
		return Change{}, err
	}
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		errOut.note(fmt.Sprintf("[herd: stopped reading output %v after the command exited: background processes still hold it]", pipeGrace))
		err = nil
	}
	e.ran = cmd.ProcessState != nil
	e.stdout, e.stderr = out.String(), errOut.String()
	e.rc = -1
	if cmd.ProcessState != nil {
		e.rc = cmd.ProcessState.ExitCode()
	}
	c := Change{Changed: e.ran, Summary: "ran", Stdout: e.stdout, Stderr: e.stderr}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return c, fmt.Errorf("exec %s: stopped, process group killed: %w", e.name, context.Cause(ctx))
	case e.verdict != nil && (err == nil || errors.As(err, &exitErr) && !signaled(exitErr)):
		if c.Changed, err = e.verdict.judge(e.rc); err != nil {
			msg := fmt.Sprintf("exec %s: %v", e.name, err)
			if tail := errOut.tailLines(errTailLines); tail != "" {
				msg += "; stderr ends with:\n" + tail
			}
			return c, errors.New(msg)
		}
		if !c.Changed {
			c.Summary = fmt.Sprintf("ran, exit code %d: no change", e.rc)
		}
		return c, nil
	case errors.As(err, &exitErr):
		msg := fmt.Sprintf("exec %s: exit code %d", e.name, e.rc)
		if signaled(exitErr) {
			msg = fmt.Sprintf("exec %s: killed by signal %v", e.name, exitErr.Sys().(syscall.WaitStatus).Signal())
		}
		if tail := errOut.tailLines(errTailLines); tail != "" {
			msg += "; stderr ends with:\n" + tail
		}
		return c, errors.New(msg)
	case err != nil:
		return c, fmt.Errorf("exec %s: %w", e.name, err)
	}
	return c, nil
}

// command prepares argv in its own process group, so that cancelling ctx
// kills everything it started, with the minimal environment and credentials.
func (e *execCmd) command(ctx context.Context, argv []string, stdout, stderr *capture) (*exec.Cmd, error) {
	home, username := "/", ""
	var cred *syscall.Credential
	if e.user != "" {
		if os.Geteuid() != 0 {
			return nil, fmt.Errorf("exec %s: user=%q needs herd to run as root (use sudo on the role)", e.name, e.user)
		}
		u, err := lookupUser(e.user)
		if err != nil {
			return nil, fmt.Errorf("exec %s: %w", e.name, err)
		}
		cred, err = credential(u)
		if err != nil {
			return nil, fmt.Errorf("exec %s: user %q: %w", e.name, e.user, err)
		}
		home, username = u.HomeDir, u.Username
	} else if u, err := user.Current(); err == nil {
		home, username = u.HomeDir, u.Username
	}
	vars := map[string]string{"PATH": defaultPath, "HOME": home, "USER": username, "LOGNAME": username, "LANG": "C"}
	for k, v := range e.env {
		vars[k] = v
	}
	environ := make([]string, 0, len(vars))
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	sort.Strings(environ)

	prog, err := lookPath(argv[0], vars["PATH"])
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", e.name, err)
	}
	cmd := groupCommand(ctx, prog, argv, e.cwd, environ, stdout, stderr)
	cmd.SysProcAttr.Credential = cred
	return cmd, nil
}

// groupCommand prepares prog to run as argv in dir with exactly env, in its
// own process group: cancelling ctx kills the whole group, so a shell's or
// an init script's children die with it. Output pipes that background
// processes keep open are abandoned pipeGrace after the command exits (Run
// then returns exec.ErrWaitDelay). Every kind that runs commands uses it.
func groupCommand(ctx context.Context, prog string, argv []string, dir string, env []string, stdout, stderr io.Writer) *exec.Cmd {
	cmd := exec.CommandContext(ctx, prog, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = pipeGrace
	return cmd
}

// lookPath resolves a program name with the command's PATH, not herd's own.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in PATH %s", name, path)
}

func lookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err == nil {
		return u, nil
	}
	if _, numErr := strconv.Atoi(name); numErr == nil {
		if u, err := user.LookupId(name); err == nil {
			return u, nil
		}
	}
	return nil, fmt.Errorf("user %q: no such user on this host", name)
}

func credential(u *user.User) (*syscall.Credential, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	ids, _ := u.GroupIds() // without them the user simply has no supplementary groups
	for _, s := range ids {
		if g, err := strconv.ParseUint(s, 10, 32); err == nil {
			c.Groups = append(c.Groups, uint32(g))
		}
	}
	if c.Groups == nil {
		c.Groups = []uint32{} // drop herd's own supplementary groups
	}
	return c, nil
}

// capture keeps the first maxOutput bytes of a stream, counts the rest, and
// also keeps the stream's last bytes so an error can quote how it ended.
type capture struct {
	head    bytes.Buffer
	tail    []byte
	dropped int64
	notes   []string
}

const tailKeep = 8 << 10

func (c *capture) Write(p []byte) (int, error) {
	keep := min(max(maxOutput-c.head.Len(), 0), len(p))
	c.head.Write(p[:keep])
	c.dropped += int64(len(p) - keep)
	c.tail = append(c.tail, p...)
	if len(c.tail) > 2*tailKeep {
		c.tail = append(c.tail[:0], c.tail[len(c.tail)-tailKeep:]...)
	}
	return len(p), nil
}

func (c *capture) note(s string) { c.notes = append(c.notes, s) }

func (c *capture) String() string {
	s := c.head.String()
	notes := c.notes
	if c.dropped > 0 {
		notes = append([]string{fmt.Sprintf("[herd: output truncated, %d bytes dropped]", c.dropped)}, notes...)
	}
	for _, n := range notes {
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += n + "\n"
	}
	return s
}

func (c *capture) tailLines(n int) string {
	t := strings.TrimRight(string(c.tail), "\n")
	if t == "" {
		return ""
	}
	lines := strings.Split(t, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
