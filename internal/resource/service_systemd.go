package resource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// systemdUnitDirs are where unit files live, most specific first.
var systemdUnitDirs = []string{"etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"}

// systemdBooted is sd_booted(): systemd runs as the init system when
// /run/systemd/system exists.
func systemdBooted(root string) bool {
	fi, err := os.Stat(filepath.Join(root, "run/systemd/system"))
	return err == nil && fi.IsDir()
}

func (s *service) runner() runner {
	if s.runFn != nil {
		return s.runFn
	}
	return s.run
}

// unitFile returns the unit's file under root ("" when there is none).
func (c serviceCtl) unitFile() string {
	for _, dir := range systemdUnitDirs {
		p := filepath.Join(c.root, dir, c.unit())
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// systemdUnitState is what `systemctl show` says about a unit.
type systemdUnitState struct {
	loadState  string // loaded, not-found, masked, error...
	needReload bool   // the unit's file changed on disk since it was loaded
}

func parseSystemdShow(out string) systemdUnitState {
	var st systemdUnitState
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "LoadState":
			st.loadState = v
		case "NeedDaemonReload":
			st.needReload = v == "yes"
		}
	}
	return st
}

// systemdPrepare checks that the unit exists and returns the verbs that
// must come first: "daemon-reload" when systemd's view of the unit file is
// out of date (it was written or edited since the last reload), so that
// enable, start and restart act on the file as it is now. Where systemd is
// not running, only enablement (which systemctl does on the files alone)
// can be managed.
func (s *service) systemdPrepare(ctx context.Context, c serviceCtl) ([]string, error) {
	if !c.booted {
		if s.running != nil {
			return nil, fmt.Errorf("systemd is not running on this host (no /run/systemd/system): running= needs it; only enabled= can be managed here")
		}
		if c.unitFile() == "" {
			return nil, fmt.Errorf("no unit file %s in /%s", c.unit(), strings.Join(systemdUnitDirs, ", /"))
		}
		return nil, nil
	}
	out, errOut, rc, err := s.runner()(ctx, []string{"systemctl", "show", "--property=LoadState", "--property=NeedDaemonReload", c.name})
	if err != nil {
		return nil, err
	}
	if rc != 0 {
		return nil, fmt.Errorf("systemctl show %s exited with code %d%s", c.name, rc, quoteTail(errOut, out))
	}
	st := parseSystemdShow(out)
	fileThere := st.loadState == "not-found" && c.unitFile() != ""
	if st.loadState == "not-found" && !(fileThere && s.daemonReload) {
		return nil, fmt.Errorf("systemd has no unit %s", c.unit())
	}
	if s.daemonReload && (st.needReload || fileThere) {
		return []string{"daemon-reload"}, nil
	}
	return nil, nil
}
