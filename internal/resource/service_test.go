package resource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/plan"
)

func TestServiceParams(t *testing.T) {
	tests := []struct {
		name    string
		svc     string
		p       plan.Params
		wantErr string
	}{
		{name: "defaults", svc: "nginx", p: plan.Params{}},
		{name: "all given", svc: "nginx", p: plan.Params{"running": true, "enabled": false, "on_refresh": "reload", "manager": "sysv"}},
		{name: "None leaves state alone", svc: "nginx", p: plan.Params{"running": nil, "enabled": nil}},
		{name: "bad on_refresh", svc: "nginx", p: plan.Params{"on_refresh": "bounce"}, wantErr: `on_refresh: "bounce"`},
		{name: "bad manager", svc: "nginx", p: plan.Params{"manager": "upstart"}, wantErr: `manager: "upstart"`},
		{name: "running not a bool", svc: "nginx", p: plan.Params{"running": "yes"}, wantErr: "running: want bool"},
		{name: "path in name", svc: "../x", p: plan.Params{}, wantErr: "not a service name"},
		{name: "glob in name", svc: "ng*", p: plan.Params{}, wantErr: "not a service name"},
		{name: "option as name", svc: "-f", p: plan.Params{}, wantErr: "not a service name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(plan.Resource{Kind: "service", Name: tt.svc, Params: tt.p}, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErrContaining(t, err, "service "+tt.svc, tt.wantErr)
		})
	}
}

func TestDetectServiceManager(t *testing.T) {
	tests := []struct {
		name    string
		dirs    []string
		want    string
		wantErr string
	}{
		{name: "systemd running", dirs: []string{"run/systemd/system", "etc/init.d"}, want: managerSystemd},
		{name: "systemd installed but not running", dirs: []string{"lib/systemd/system", "run/systemd", "etc/init.d"}, want: managerSysV},
		{name: "init scripts only", dirs: []string{"etc/init.d"}, want: managerSysV},
		{name: "nothing", dirs: []string{"etc"}, wantErr: "no service manager found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			got, err := detectServiceManager(root)
			if tt.wantErr != "" {
				wantErrContaining(t, err, tt.wantErr)
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestServiceStatusParsing(t *testing.T) {
	active := map[string]bool{"active\n": true, "reloading\n": true, "activating\n": true,
		"inactive\n": false, "failed\n": false, "deactivating\n": false, "unknown\n": false}
	for out, want := range active {
		if got := parseActive(out); got != want {
			t.Errorf("parseActive(%q) = %v, want %v", out, got, want)
		}
	}

	lsb := []struct {
		rc      int
		running bool
		err     bool
	}{{0, true, false}, {1, false, false}, {2, false, false}, {3, false, false}, {4, false, true}, {150, false, true}}
	for _, tt := range lsb {
		running, err := lsbRunning(tt.rc)
		if running != tt.running || (err != nil) != tt.err {
			t.Errorf("lsbRunning(%d) = %v, %v; want %v, error %v", tt.rc, running, err, tt.running, tt.err)
		}
	}

	enabled := []struct {
		out            string
		enabled, fixed bool
		err            bool
	}{
		{"enabled\n", true, false, false},
		{"enabled-runtime\n", true, false, false},
		{"disabled\n", false, false, false},
		{"static\n", true, true, false},
		{"masked\n", false, true, false},
		{"", false, false, true},
		{"not-found\n", false, false, true},
	}
	for _, tt := range enabled {
		e, f, err := parseIsEnabled(tt.out)
		if e != tt.enabled || f != tt.fixed || (err != nil) != tt.err {
			t.Errorf("parseIsEnabled(%q) = %v, %v, %v; want %v, %v, error %v", tt.out, e, f, err, tt.enabled, tt.fixed, tt.err)
		}
	}
}

// binDir makes a PATH directory holding executables with the given names;
// only their presence matters to the code under test.
func binDir(t *testing.T, progs ...string) string {
	dir := t.TempDir()
	for _, p := range progs {
		writeFile(t, filepath.Join(dir, p), "#!/bin/sh\nexit 0\n", 0o755)
	}
	return dir
}

func TestServiceCommandLines(t *testing.T) {
	root := t.TempDir()
	linked := filepath.Join(root, "etc/rc2.d")
	if err := os.MkdirAll(linked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../init.d/linked", filepath.Join(linked, "K01linked")); err != nil {
		t.Fatal(err)
	}
	debian, redhat, bare := binDir(t, "update-rc.d"), binDir(t, "chkconfig"), binDir(t)
	script := func(name string) string { return filepath.Join(root, "etc/init.d", name) }
	tests := []struct {
		name    string
		ctl     serviceCtl
		verb    string
		want    [][]string
		wantErr string
	}{
		{"systemd start", serviceCtl{manager: managerSystemd, name: "nginx"}, "start",
			[][]string{{"systemctl", "--no-ask-password", "start", "nginx"}}, ""},
		{"systemd reload", serviceCtl{manager: managerSystemd, name: "nginx"}, "reload",
			[][]string{{"systemctl", "--no-ask-password", "reload", "nginx"}}, ""},
		{"systemd enable", serviceCtl{manager: managerSystemd, name: "nginx"}, "enable",
			[][]string{{"systemctl", "--no-ask-password", "enable", "nginx"}}, ""},
		{"systemd disable", serviceCtl{manager: managerSystemd, name: "nginx"}, "disable",
			[][]string{{"systemctl", "--no-ask-password", "disable", "nginx"}}, ""},
		{"sysv restart runs the script", serviceCtl{manager: managerSysV, name: "nginx", root: root, path: debian}, "restart",
			[][]string{{script("nginx"), "restart"}}, ""},
		{"debian enable without links makes them first", serviceCtl{manager: managerSysV, name: "nginx", root: root, path: debian}, "enable",
			[][]string{{"update-rc.d", "nginx", "defaults"}, {"update-rc.d", "nginx", "enable"}}, ""},
		{"debian enable with links toggles them", serviceCtl{manager: managerSysV, name: "linked", root: root, path: debian}, "enable",
			[][]string{{"update-rc.d", "linked", "enable"}}, ""},
		{"debian disable", serviceCtl{manager: managerSysV, name: "linked", root: root, path: debian}, "disable",
			[][]string{{"update-rc.d", "linked", "disable"}}, ""},
		{"red hat enable without links adds the service", serviceCtl{manager: managerSysV, name: "nginx", root: root, path: redhat}, "enable",
			[][]string{{"chkconfig", "--add", "nginx"}, {"chkconfig", "nginx", "on"}}, ""},
		{"red hat disable", serviceCtl{manager: managerSysV, name: "linked", root: root, path: redhat}, "disable",
			[][]string{{"chkconfig", "linked", "off"}}, ""},
		{"no tool to enable", serviceCtl{manager: managerSysV, name: "nginx", root: root, path: bare}, "enable",
			nil, "neither update-rc.d nor chkconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ctl.actionArgvs(tt.verb)
			if tt.wantErr != "" {
				wantErrContaining(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}

	sd := serviceCtl{manager: managerSystemd, name: "nginx"}
	if got := sd.statusArgv(); !reflect.DeepEqual(got, []string{"systemctl", "is-active", "nginx"}) {
		t.Errorf("systemd status: %q", got)
	}
	sv := serviceCtl{manager: managerSysV, name: "nginx", root: root}
	if got := sv.statusArgv(); !reflect.DeepEqual(got, []string{script("nginx"), "status"}) {
		t.Errorf("sysv status: %q", got)
	}
}

func TestServiceSysVEnabledFromLinks(t *testing.T) {
	tests := []struct {
		name  string
		links []string
		want  bool
	}{
		{"no links", nil, false},
		{"started in runlevel 2", []string{"etc/rc2.d/S01svc", "etc/rc0.d/K01svc"}, true},
		{"only kill links", []string{"etc/rc2.d/K01svc", "etc/rc3.d/K01svc"}, false},
		{"red hat layout", []string{"etc/rc.d/rc3.d/S85svc"}, true},
		{"another service's link", []string{"etc/rc2.d/S01svc2"}, false},
		{"single user only", []string{"etc/rcS.d/S01svc"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, l := range tt.links {
				p := filepath.Join(root, l)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("../init.d/svc", p); err != nil {
					t.Fatal(err)
				}
			}
			c := serviceCtl{manager: managerSysV, name: "svc", root: root}
			got, fixed, err := c.isEnabled(context.Background(), nil)
			if err != nil || fixed || got != tt.want {
				t.Errorf("isEnabled = %v, %v, %v; want %v", got, fixed, err, tt.want)
			}
		})
	}
}

// lsbScript is a real LSB init script managing a `sleep` with a pid file;
// it logs each action it takes to DIR/log.
const lsbScript = `#!/bin/sh
### BEGIN INIT INFO
# Provides:          svc
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
### END INIT INFO
D=DIR
alive() { [ -f "$D/pid" ] && kill -0 "$(cat "$D/pid")" 2>/dev/null; }
do_start() { alive && return 0; sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >"$D/pid"; }
do_stop() { alive && kill "$(cat "$D/pid")"; rm -f "$D/pid"; }
case "$1" in
start) do_start; echo start >>"$D/log" ;;
stop) do_stop; echo stop >>"$D/log" ;;
restart) do_stop; do_start; echo restart >>"$D/log" ;;
reload) alive || { echo "svc is not running" >&2; exit 7; }; echo reload >>"$D/log" ;;
status) alive && exit 0; [ -f "$D/pid" ] && exit 1; exit 3 ;;
*) echo "usage: $0 start|stop|restart|reload|status" >&2; exit 2 ;;
esac
`

// sysvRoot makes a root with /etc/init.d/svc holding script (DIR replaced by
// the state directory, which it returns too), and kills the daemon at the
// end.
func sysvRoot(t *testing.T, script string) (root, state string) {
	root, state = t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/init.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "etc/init.d/svc"), strings.ReplaceAll(script, "DIR", state), 0o755)
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(state, "pid")); err == nil {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return root, state
}

func sysvService(t *testing.T, root string, p plan.Params) *service {
	t.Helper()
	p["manager"] = "sysv"
	s := build(t, "service", "svc", p, nil).(*service)
	s.root = root
	return s
}

func actions(t *testing.T, state string) string {
	b, _ := os.ReadFile(filepath.Join(state, "log"))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\n", " "))
}

func TestServiceSysVLifecycle(t *testing.T) {
	root, state := sysvRoot(t, lsbScript)
	env := testEnv(t)
	ctx := context.Background()

	up := sysvService(t, root, plan.Params{"running": true})
	if c := mustCheck(t, up, env); !c.Changed || c.Summary != "start" {
		t.Fatalf("check of a stopped service: %+v", c)
	}
	if got := actions(t, state); got != "" {
		t.Fatalf("Check ran %q", got)
	}
	if c := applyIdempotent(t, up, env); c.Summary != "start" {
		t.Errorf("apply summary %q", c.Summary)
	}
	if got := actions(t, state); got != "start" {
		t.Errorf("actions after apply: %q", got)
	}
	// A refresh right after the start has nothing to add.
	if c, err := up.Refresh(ctx, env); err != nil || c.Changed {
		t.Errorf("refresh after start: %+v, %v", c, err)
	}

	for _, tt := range []struct {
		onRefresh, summary, action string
	}{{"restart", "restarted", "restart"}, {"reload", "reloaded", "reload"}} {
		s := sysvService(t, root, plan.Params{"running": true, "on_refresh": tt.onRefresh})
		if c := mustCheck(t, s, env); c.Changed {
			t.Fatalf("check of a running service: %+v", c)
		}
		before := actions(t, state)
		c, err := s.Refresh(ctx, env)
		if err != nil || !c.Changed || c.Summary != tt.summary {
			t.Errorf("refresh %s: %+v, %v", tt.onRefresh, c, err)
		}
		if got := actions(t, state); got != before+" "+tt.action {
			t.Errorf("refresh %s ran %q after %q", tt.onRefresh, got, before)
		}
	}
	none := sysvService(t, root, plan.Params{"on_refresh": "none"})
	before := actions(t, state)
	if c, err := none.Refresh(ctx, env); err != nil || c.Changed {
		t.Errorf("on_refresh=none: %+v, %v", c, err)
	}

	down := sysvService(t, root, plan.Params{"running": false})
	if c := applyIdempotent(t, down, env); c.Summary != "stop" {
		t.Errorf("stop summary %q", c.Summary)
	}
	if got := actions(t, state); got != before+" stop" {
		t.Errorf("actions after stop: %q", got)
	}
	// Stopped and not wanted running: a refresh leaves it stopped, with
	// running=False and with running left alone.
	for _, s := range []*service{down, sysvService(t, root, plan.Params{})} {
		if c, err := s.Refresh(ctx, env); err != nil || c.Changed {
			t.Errorf("refresh of a stopped service: %+v, %v", c, err)
		}
	}
	if got := actions(t, state); got != before+" stop" {
		t.Errorf("refresh of a stopped service ran something: %q", got)
	}
	// Wanted running but found stopped at refresh time: started.
	if c, err := sysvService(t, root, plan.Params{"running": true, "on_refresh": "reload"}).Refresh(ctx, env); err != nil || c.Summary != "started" {
		t.Errorf("refresh of a stopped service wanted running: %+v, %v", c, err)
	}
	if got := actions(t, state); got != before+" stop start" {
		t.Errorf("actions: %q", got)
	}
}

func TestServiceSysVStaleAndBrokenStatus(t *testing.T) {
	root, state := sysvRoot(t, lsbScript)
	// A pid file whose process is gone: LSB status 1, not running.
	writeFile(t, filepath.Join(state, "pid"), "999999999\n", 0o644)
	if c := mustCheck(t, sysvService(t, root, plan.Params{"running": true}), testEnv(t)); c.Summary != "start" {
		t.Errorf("stale pid file: %+v", c)
	}

	broken, _ := sysvRoot(t, "#!/bin/sh\necho 'svc: cannot read /etc/svc.conf' >&2\nexit 4\n")
	_, err := sysvService(t, broken, plan.Params{"running": true}).Check(context.Background(), testEnv(t))
	wantErrContaining(t, err, "service svc", "/etc/init.d/svc status exited with code 4", "cannot read /etc/svc.conf")

	failing, _ := sysvRoot(t, "#!/bin/sh\n[ \"$1\" = status ] && exit 3\necho 'port 80 in use' >&2\nexit 1\n")
	_, err = sysvService(t, failing, plan.Params{"running": true}).Apply(context.Background(), testEnv(t))
	wantErrContaining(t, err, "service svc: start: /etc/init.d/svc start exited with code 1", "port 80 in use")
}

func TestServiceMissing(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/init.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := build(t, "service", "nope", plan.Params{"running": true}, nil).(*service)
	s.root = root // manager auto: detected as sysv
	_, err := s.Check(context.Background(), testEnv(t))
	wantErrContaining(t, err, "service nope", "init script /etc/init.d/nope not found")
	_, err = s.Refresh(context.Background(), testEnv(t))
	wantErrContaining(t, err, "init script /etc/init.d/nope not found")
}

func TestServiceCommandTimeout(t *testing.T) {
	root, _ := sysvRoot(t, "#!/bin/sh\nexec sleep 30\n")
	s := sysvService(t, root, plan.Params{"running": true})
	s.timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := s.Check(context.Background(), testEnv(t))
	wantErrContaining(t, err, "service svc", "did not finish within 300ms")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a hung status took %v to give up", d)
	}
}
