package resource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// fakeSystemd answers systemctl the way a running systemd does for one
// unit, and records every command line it was given.
type fakeSystemd struct {
	loadState       string // as systemd last loaded the unit
	needReload      bool
	enabled, active bool
	unitFileOnDisk  bool
	calls           []string
}

func (f *fakeSystemd) run(ctx context.Context, argv []string) (string, string, int, error) {
	f.calls = append(f.calls, strings.Join(argv, " "))
	if argv[0] != "systemctl" {
		return "", "", -1, fmt.Errorf("not systemctl: %q", argv)
	}
	verb := argv[len(argv)-2]
	if argv[1] == "--no-ask-password" && argv[2] == "daemon-reload" {
		verb = "daemon-reload"
	}
	switch {
	case argv[1] == "show":
		return fmt.Sprintf("LoadState=%s\nNeedDaemonReload=%s\n", f.loadState, map[bool]string{true: "yes", false: "no"}[f.needReload]), "", 0, nil
	case argv[1] == "is-enabled":
		return map[bool]string{true: "enabled\n", false: "disabled\n"}[f.enabled], "", 0, nil
	case argv[1] == "is-active":
		return map[bool]string{true: "active\n", false: "inactive\n"}[f.active], "", 0, nil
	case verb == "daemon-reload":
		f.needReload = false
		if f.unitFileOnDisk {
			f.loadState = "loaded"
		}
		return "", "", 0, nil
	}
	if f.loadState != "loaded" && verb != "enable" && verb != "disable" {
		return "", "Unit app.service not found.", 5, nil
	}
	switch verb {
	case "enable", "disable":
		f.enabled = verb == "enable"
	case "start", "restart", "reload":
		f.active = true
	case "stop":
		f.active = false
	}
	return "", "", 0, nil
}

// TestServiceSystemdSequences runs whole Apply and Refresh calls against
// a simulated systemd and compares every command line herd ran: a unit
// file systemd has not loaded, or has changed since it loaded it, is
// reloaded before enable, start or restart act on it.
func TestServiceSystemdSequences(t *testing.T) {
	const show = "systemctl show --property=LoadState --property=NeedDaemonReload app"
	const reload = "systemctl --no-ask-password daemon-reload"
	tests := []struct {
		name     string
		params   plan.Params
		sd       fakeSystemd
		refresh  bool // also deliver a refresh after Apply
		want     []string
		summary  string
		refSum   string
		wantErr  string
		unitFile bool
	}{
		{name: "new unit file: reload, enable, start", params: plan.Params{"running": true, "enabled": true},
			sd: fakeSystemd{loadState: "not-found", unitFileOnDisk: true}, unitFile: true,
			want:    []string{show, "systemctl is-enabled app", "systemctl is-active app", reload, "systemctl --no-ask-password enable app", "systemctl --no-ask-password start app"},
			summary: "daemon-reload, enable, start"},
		{name: "edited unit file, notified: reload in apply, then restart", params: plan.Params{"running": true, "enabled": true},
			sd: fakeSystemd{loadState: "loaded", needReload: true, enabled: true, active: true, unitFileOnDisk: true}, unitFile: true, refresh: true,
			want:    []string{show, "systemctl is-enabled app", "systemctl is-active app", reload, show, "systemctl is-active app", "systemctl --no-ask-password restart app"},
			summary: "daemon-reload", refSum: "restarted"},
		{name: "edited unit file, refresh only: reload then restart", params: plan.Params{},
			sd: fakeSystemd{loadState: "loaded", needReload: true, active: true, unitFileOnDisk: true}, unitFile: true, refresh: true,
			want:    []string{show, reload, show, reload, "systemctl is-active app", "systemctl --no-ask-password restart app"},
			summary: "daemon-reload", refSum: "daemon-reload, restarted"},
		{name: "up to date: only questions", params: plan.Params{"running": true, "enabled": true},
			sd: fakeSystemd{loadState: "loaded", enabled: true, active: true, unitFileOnDisk: true}, unitFile: true,
			want: []string{show, "systemctl is-enabled app", "systemctl is-active app"}},
		{name: "daemon_reload=False leaves systemd's view alone", params: plan.Params{"running": true, "daemon_reload": false},
			sd: fakeSystemd{loadState: "loaded", needReload: true, active: true, unitFileOnDisk: true}, unitFile: true,
			want: []string{show, "systemctl is-active app"}},
		{name: "no unit at all", params: plan.Params{"running": true},
			sd:   fakeSystemd{loadState: "not-found"},
			want: []string{show}, wantErr: "systemd has no unit app.service"},
		{name: "not loaded and reload refused", params: plan.Params{"running": true, "daemon_reload": false},
			sd: fakeSystemd{loadState: "not-found", unitFileOnDisk: true}, unitFile: true,
			want: []string{show}, wantErr: "systemd has no unit app.service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755)
			os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755)
			if tt.unitFile {
				writeFile(t, filepath.Join(root, "etc/systemd/system/app.service"), "", 0o644)
			}
			p := plan.Params{"manager": "systemd"}
			for k, v := range tt.params {
				p[k] = v
			}
			r, err := New(plan.Resource{Kind: "service", Name: "app", Params: p}, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := r.(*service)
			sd := &tt.sd
			s.root, s.runFn = root, sd.run
			ch, err := s.Apply(context.Background(), testEnv(t))
			if tt.wantErr != "" {
				wantErrContaining(t, err, tt.wantErr)
			} else if err != nil {
				t.Fatal(err)
			}
			if ch.Summary != tt.summary {
				t.Errorf("apply summary %q, want %q", ch.Summary, tt.summary)
			}
			if tt.refresh {
				if tt.name == "edited unit file, refresh only: reload then restart" {
					sd.needReload = true // edited again after the apply
				}
				ch, err := s.Refresh(context.Background(), testEnv(t))
				if err != nil || ch.Summary != tt.refSum {
					t.Errorf("refresh: %q, %v; want %q", ch.Summary, err, tt.refSum)
				}
			}
			if !reflect.DeepEqual(sd.calls, tt.want) {
				t.Errorf("commands:\n  %s\nwant:\n  %s", strings.Join(sd.calls, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestServiceSystemdOffline: without a running systemd (an image being
// built, a chroot, a container), enabled= is managed on the unit files
// and running= is refused, with no systemctl call that needs the manager.
func TestServiceSystemdOffline(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755)
	writeFile(t, filepath.Join(root, "etc/systemd/system/app.service"), "", 0o644)
	for _, tt := range []struct {
		name    string
		params  plan.Params
		unit    string
		want    []string
		wantErr string
	}{
		{"enable", plan.Params{"enabled": true}, "app", []string{"systemctl is-enabled app", "systemctl --no-ask-password enable app"}, ""},
		{"running needs systemd", plan.Params{"running": true}, "app", nil, "systemd is not running on this host (no /run/systemd/system): running= needs it"},
		{"no unit file", plan.Params{"enabled": true}, "other", nil, "no unit file other.service in /etc/systemd/system, /run/systemd/system"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := plan.Params{"manager": "systemd"}
			for k, v := range tt.params {
				p[k] = v
			}
			r, err := New(plan.Resource{Kind: "service", Name: tt.unit, Params: p}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sd := &fakeSystemd{loadState: "loaded"}
			s := r.(*service)
			s.root, s.runFn = root, sd.run
			_, err = s.Apply(context.Background(), testEnv(t))
			if tt.wantErr != "" {
				wantErrContaining(t, err, tt.wantErr)
			} else if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sd.calls, tt.want) {
				t.Errorf("commands %q, want %q", sd.calls, tt.want)
			}
			if ch, err := s.Refresh(context.Background(), testEnv(t)); tt.wantErr == "" && (err != nil || ch.Summary != "systemd is not running here, nothing to restart") {
				t.Errorf("refresh offline: %q %v", ch.Summary, err)
			}
		})
	}
}
