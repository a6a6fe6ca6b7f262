package resource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "service",
		Doc: "A system service, started or stopped and enabled or disabled at boot, with systemd " +
			"(when /run/systemd/system exists on the target) or SysV init scripts in /etc/init.d " +
			"(enabled with update-rc.d, or chkconfig on Red Hat systems). A refresh (notify=) restarts " +
			"or reloads it; a service that is stopped and not wanted running is left stopped. " +
			"Every command is bounded by the resource's context and a 90 s default timeout.",
		Params: []Param{
			{Name: "running", Type: Bool, Doc: "True: started, False: stopped, None (default): left as it is"},
			{Name: "enabled", Type: Bool, Doc: "True: started at boot, False: not, None (default): left as it is"},
			{Name: "on_refresh", Type: String, Doc: "what a refresh does: \"restart\" (default), \"reload\" or \"none\""},
			{Name: "manager", Type: String, Doc: "\"auto\" (default: detected on the target), \"systemd\" or \"sysv\"; \"systemd\" where systemd is not running (an image, a chroot, a container) manages enabled= alone, on the unit files"},
			{Name: "daemon_reload", Type: Bool, Doc: "with systemd, run systemctl daemon-reload first when systemd says the unit's file changed on disk since it was loaded (NeedDaemonReload), e.g. after a file() or template() of /etc/systemd/system/NAME.service, or when a unit file exists that systemd has not loaded; default True"},
		},
		Factory: newService,
	})
}

const (
	managerSystemd = "systemd"
	managerSysV    = "sysv"
	// serviceTimeout bounds each command: init scripts that wait forever
	// for a daemon must not hang the run.
	serviceTimeout = 90 * time.Second
)

type service struct {
	name             string
	running, enabled *bool // nil: not managed
	onRefresh        string
	manager          string // "auto", managerSystemd or managerSysV

	// root is where the target's files are looked for, "/" except in
	// tests; path is the PATH searched for update-rc.d and chkconfig.
	root, path string
	timeout    time.Duration

	daemonReload bool
	// runFn runs commands; nil means s.run. Tests put a simulated
	// systemctl here to check whole command sequences.
	runFn runner

	// startedHere is set when Apply started the service in this run: a
	// refresh right after would only bounce a fresh process.
	startedHere bool
}

func newService(name string, p plan.Params, _ map[string][]byte) (Resource, error) {
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("service %s: %w", name, err) }
	if name == "" || strings.HasPrefix(name, "-") || strings.ContainsAny(name, "/ \t\r\n*?[\\\x00") {
		return fail(fmt.Errorf("%q is not a service name", name))
	}
	s := &service{name: name, root: "/", path: defaultPath, timeout: serviceTimeout}
	for _, b := range []struct {
		key string
		dst **bool
	}{{"running", &s.running}, {"enabled", &s.enabled}} {
		if v, ok := p[b.key]; ok && v != nil {
			val, err := p.Bool(b.key, false)
			if err != nil {
				return fail(err)
			}
			*b.dst = &val
		}
	}
	var err error
	if s.onRefresh, err = p.Str("on_refresh", "restart"); err != nil {
		return fail(err)
	}
	switch s.onRefresh {
	case "restart", "reload", "none":
	default:
		return fail(fmt.Errorf("on_refresh: %q is not \"restart\", \"reload\" or \"none\"", s.onRefresh))
	}
	if s.daemonReload, err = p.Bool("daemon_reload", true); err != nil {
		return fail(err)
	}
	if s.manager, err = p.Str("manager", "auto"); err != nil {
		return fail(err)
	}
	switch s.manager {
	case "auto", managerSystemd, managerSysV:
	default:
		return fail(fmt.Errorf("manager: %q is not \"auto\", \"systemd\" or \"sysv\"", s.manager))
	}
	return s, nil
}

// detectServiceManager says which init system manages services under root.
// systemd's own test (sd_booted) is whether /run/systemd/system exists: a
// systemctl binary alone says nothing, containers often have one unused.
func detectServiceManager(root string) (string, error) {
	if fi, err := os.Stat(filepath.Join(root, "run/systemd/system")); err == nil && fi.IsDir() {
		return managerSystemd, nil
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/init.d")); err == nil && fi.IsDir() {
		return managerSysV, nil
	}
	return "", errors.New("no service manager found: systemd is not running (no /run/systemd/system) and there is no /etc/init.d")
}

// serviceCtl drives one service through one manager.
type serviceCtl struct {
	manager    string
	name       string
	root, path string
	// booted is whether systemd runs (systemd only): without it only the
	// unit files' enablement can be managed.
	booted bool
}

func (s *service) ctl() (serviceCtl, error) {
	m := s.manager
	if m == "auto" {
		var err error
		if m, err = detectServiceManager(s.root); err != nil {
			return serviceCtl{}, err
		}
	}
	c := serviceCtl{manager: m, name: s.name, root: s.root, path: s.path}
	if m == managerSystemd {
		c.booted = systemdBooted(s.root)
	}
	return c, nil
}

// script is the init script's path on the target, for messages.
func (c serviceCtl) script() string { return "/etc/init.d/" + c.name }

func (c serviceCtl) unit() string {
	if strings.Contains(c.name, ".") {
		return c.name
	}
	return c.name + ".service"
}

// statusArgv asks whether the service runs: systemctl answers in words,
// an init script with its LSB exit code.
func (c serviceCtl) statusArgv() []string {
	if c.manager == managerSystemd {
		return []string{"systemctl", "is-active", c.name}
	}
	return []string{filepath.Join(c.root, c.script()), "status"}
}

// parseActive reads `systemctl is-active`: reloading and activating units
// are running as far as starting them goes.
func parseActive(out string) bool {
	switch strings.TrimSpace(out) {
	case "active", "reloading", "activating", "refreshing":
		return true
	}
	return false
}

// lsbRunning reads an init script's status exit code as the LSB says:
// 0 running; 1, 2 (dead, with a stale pid or lock file) and 3 not running;
// anything else (4 is "unknown") is not an answer.
func lsbRunning(rc int) (bool, error) {
	switch rc {
	case 0:
		return true, nil
	case 1, 2, 3:
		return false, nil
	}
	return false, fmt.Errorf("status exited with code %d, which does not say whether it runs (LSB: 0 running, 3 stopped)", rc)
}

// parseIsEnabled reads `systemctl is-enabled`. fixed says the state is not
// one enable/disable can change (static units, generated ones...), which is
// fine only when it already matches.
func parseIsEnabled(out string) (enabled, fixed bool, err error) {
	switch st := strings.TrimSpace(out); st {
	case "enabled", "enabled-runtime", "alias":
		return true, false, nil
	case "disabled", "linked", "linked-runtime":
		return false, false, nil
	case "static", "indirect", "generated", "transient":
		return true, true, nil
	case "masked", "masked-runtime":
		return false, true, nil
	case "":
		return false, false, errors.New("systemctl is-enabled said nothing")
	default:
		return false, false, fmt.Errorf("systemctl is-enabled said %q", st)
	}
}

// rcLinks lists the boot links of a SysV service: prefix "S" for started
// in runlevels 2-5, "[SK]" for any link at all. Red Hat keeps them under
// /etc/rc.d.
func (c serviceCtl) rcLinks(prefix string) []string {
	var out []string
	for _, dir := range []string{"etc/rc[2345].d", "etc/rc.d/rc[2345].d"} {
		m, _ := filepath.Glob(filepath.Join(c.root, dir, prefix+"[0-9][0-9]"+c.name))
		out = append(out, m...)
	}
	if prefix != "S" {
		for _, dir := range []string{"etc/rc[016S].d", "etc/rc.d/rc[016].d"} {
			m, _ := filepath.Glob(filepath.Join(c.root, dir, prefix+"[0-9][0-9]"+c.name))
			out = append(out, m...)
		}
	}
	return out
}

// actionArgvs are the commands that do verb (start, stop, restart, reload,
// enable, disable). SysV enabling needs the boot links made first when the
// script has none, which is why there may be two.
func (c serviceCtl) actionArgvs(verb string) ([][]string, error) {
	if verb == "daemon-reload" {
		return [][]string{{"systemctl", "--no-ask-password", "daemon-reload"}}, nil
	}
	if c.manager == managerSystemd {
		return [][]string{{"systemctl", "--no-ask-password", verb, c.name}}, nil
	}
	if verb != "enable" && verb != "disable" {
		return [][]string{{filepath.Join(c.root, c.script()), verb}}, nil
	}
	noLinks := len(c.rcLinks("[SK]")) == 0
	has := func(prog string) bool { _, err := lookPath(prog, c.path); return err == nil }
	switch {
	case has("update-rc.d") && verb == "enable" && noLinks:
		return [][]string{{"update-rc.d", c.name, "defaults"}, {"update-rc.d", c.name, "enable"}}, nil
	case has("update-rc.d"):
		return [][]string{{"update-rc.d", c.name, verb}}, nil
	case has("chkconfig") && verb == "enable" && noLinks:
		return [][]string{{"chkconfig", "--add", c.name}, {"chkconfig", c.name, "on"}}, nil
	case has("chkconfig"):
		return [][]string{{"chkconfig", c.name, map[string]string{"enable": "on", "disable": "off"}[verb]}}, nil
	}
	return nil, fmt.Errorf("cannot %s a SysV service: neither update-rc.d nor chkconfig is in PATH %s", verb, c.path)
}

// exists fails with a missing init script named, before any command would
// fail with a less clear message (systemd units: systemdPrepare).
func (c serviceCtl) exists() error {
	fi, err := os.Stat(filepath.Join(c.root, c.script()))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("init script %s not found", c.script())
	case err != nil:
		return err
	case !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0:
		return fmt.Errorf("init script %s is not an executable file", c.script())
	}
	return nil
}

func (c serviceCtl) isRunning(ctx context.Context, run runner) (bool, error) {
	out, errOut, rc, err := run(ctx, c.statusArgv())
	if err != nil {
		return false, err
	}
	if c.manager == managerSystemd {
		return parseActive(out), nil
	}
	running, err := lsbRunning(rc)
	if err != nil {
		err = fmt.Errorf("%s %w%s", c.script(), err, quoteTail(errOut, out))
	}
	return running, err
}

// isEnabled reports whether the service starts at boot; fixed as in
// parseIsEnabled.
func (c serviceCtl) isEnabled(ctx context.Context, run runner) (enabled, fixed bool, err error) {
	if c.manager == managerSystemd {
		out, _, _, err := run(ctx, []string{"systemctl", "is-enabled", c.name})
		if err != nil {
			return false, false, err
		}
		return parseIsEnabled(out)
	}
	return len(c.rcLinks("S")) > 0, false, nil
}

// runner runs argv and returns its output and exit code; err is for a
// command that could not run or did not finish.
type runner func(ctx context.Context, argv []string) (stdout, stderr string, rc int, err error)

// run executes argv with groupCommand and a minimal environment, bounded by
// s.timeout. Unlike tool.run, a non-zero exit is an answer (status
// commands), not an error.
func (s *service) run(ctx context.Context, argv []string) (string, string, int, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout,
		fmt.Errorf("%s did not finish within %v", strings.Join(argv, " "), s.timeout))
	defer cancel()
	prog, err := lookPath(argv[0], s.path)
	if err != nil {
		return "", "", -1, err
	}
	var out, errOut capture
	env := []string{"PATH=" + s.path, "LANG=C", "LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMCTL_SKIP_REDIRECT=1"}
	// The program sees its resolved path as argv[0].
	err = groupCommand(ctx, prog, append([]string{prog}, argv[1:]...), "/", env, &out, &errOut).Run()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return out.String(), errOut.String(), -1, fmt.Errorf("%s stopped, process group killed: %w", argv[0], context.Cause(ctx))
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		return out.String(), errOut.String(), 0, nil
	case errors.As(err, &exitErr):
		return out.String(), errOut.String(), exitErr.ExitCode(), nil
	}
	return out.String(), errOut.String(), -1, fmt.Errorf("%s: %w", argv[0], err)
}

// quoteTail is the end of stderr (or of stdout, where init scripts often
// complain) for an error message, or "".
func quoteTail(stderr, stdout string) string {
	for _, s := range []string{stderr, stdout} {
		var c capture
		c.Write([]byte(s))
		if t := c.tailLines(errTailLines); t != "" {
			return "; output ends with:\n" + t
		}
	}
	return ""
}

// plan inspects the service and returns the verbs that bring it to the
// wanted state, in the order they run.
func (s *service) plan(ctx context.Context) (serviceCtl, []string, error) {
	c, err := s.ctl()
	if err != nil {
		return c, nil, err
	}
	run := s.runner()
	var verbs []string
	if c.manager == managerSystemd {
		if verbs, err = s.systemdPrepare(ctx, c); err != nil {
			return c, nil, err
		}
	} else if err := c.exists(); err != nil {
		return c, nil, err
	}
	if s.enabled != nil {
		enabled, fixed, err := c.isEnabled(ctx, run)
		if err != nil {
			return c, nil, err
		}
		if enabled != *s.enabled {
			if fixed {
				return c, nil, fmt.Errorf("%s cannot be %s: systemctl is-enabled says it is static, masked or generated", c.unit(), map[bool]string{true: "enabled", false: "disabled"}[*s.enabled])
			}
			verbs = append(verbs, map[bool]string{true: "enable", false: "disable"}[*s.enabled])
		}
	}
	if s.running != nil {
		running, err := c.isRunning(ctx, run)
		if err != nil {
			return c, nil, err
		}
		if running != *s.running {
			verbs = append(verbs, map[bool]string{true: "start", false: "stop"}[*s.running])
		}
	}
	return c, verbs, nil
}

func (s *service) Check(ctx context.Context, env *Env) (Change, error) {
	_, verbs, err := s.plan(ctx)
	if err != nil {
		return Change{}, fmt.Errorf("service %s: %w", s.name, err)
	}
	return Change{Changed: len(verbs) > 0, Summary: strings.Join(verbs, ", ")}, nil
}

func (s *service) Apply(ctx context.Context, env *Env) (Change, error) {
	c, verbs, err := s.plan(ctx)
	if err != nil {
		return Change{}, fmt.Errorf("service %s: %w", s.name, err)
	}
	ch := Change{Changed: len(verbs) > 0, Summary: strings.Join(verbs, ", ")}
	for _, v := range verbs {
		if err := s.do(ctx, c, v, &ch); err != nil {
			return ch, err
		}
		if v == "start" {
			s.startedHere = true
		}
	}
	return ch, nil
}

// do runs the commands of verb, adding their output to ch.
func (s *service) do(ctx context.Context, c serviceCtl, verb string, ch *Change) error {
	argvs, err := c.actionArgvs(verb)
	if err != nil {
		return fmt.Errorf("service %s: %w", s.name, err)
	}
	for _, argv := range argvs {
		out, errOut, rc, err := s.runner()(ctx, argv)
		ch.Stdout += out
		ch.Stderr += errOut
		if err != nil {
			return fmt.Errorf("service %s: %s: %w", s.name, verb, err)
		}
		if rc != 0 {
			return fmt.Errorf("service %s: %s: %s exited with code %d%s", s.name, verb, displayArgv(c, argv), rc, quoteTail(errOut, out))
		}
	}
	return nil
}

// displayArgv names a command as it is on the target, not through root.
func displayArgv(c serviceCtl, argv []string) string {
	a := append([]string(nil), argv...)
	if strings.HasSuffix(a[0], c.script()) {
		a[0] = c.script()
	}
	return strings.Join(a, " ")
}

// Refresh restarts or reloads a running service. A stopped one is started
// only if it is wanted running; otherwise it stays stopped, since a
// configuration change is no reason to start what should not run.
func (s *service) Refresh(ctx context.Context, env *Env) (Change, error) {
	if s.onRefresh == "none" {
		return Change{}, nil
	}
	if s.startedHere {
		return Change{Summary: "started in this run, no " + s.onRefresh + " needed"}, nil
	}
	c, err := s.ctl()
	var reload []string
	switch {
	case err != nil:
	case c.manager == managerSystemd:
		reload, err = s.systemdPrepare(ctx, c)
		if err == nil && !c.booted {
			return Change{Summary: "systemd is not running here, nothing to " + s.onRefresh}, nil
		}
	default:
		err = c.exists()
	}
	if err != nil {
		return Change{}, fmt.Errorf("service %s: %w", s.name, err)
	}
	ch := Change{Changed: true}
	for _, v := range reload { // a unit file changed since the last reload
		if err := s.do(ctx, c, v, &ch); err != nil {
			return ch, err
		}
	}
	running, err := c.isRunning(ctx, s.runner())
	if err != nil {
		return Change{}, fmt.Errorf("service %s: %w", s.name, err)
	}
	verb, summary := s.onRefresh, map[string]string{"restart": "restarted", "reload": "reloaded"}[s.onRefresh]
	if !running {
		if s.running == nil || !*s.running {
			if len(reload) > 0 {
				ch.Summary = "daemon-reload; not running, nothing to " + s.onRefresh
				return ch, nil
			}
			return Change{Summary: "not running, nothing to " + s.onRefresh}, nil
		}
		verb, summary = "start", "started"
	}
	ch.Summary = strings.Join(append(reload, summary), ", ")
	if err := s.do(ctx, c, verb, &ch); err != nil {
		return ch, err
	}
	return ch, nil
}
