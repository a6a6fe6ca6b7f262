package push_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/event"
)

// TestServiceSystemdUnitFileEnablement: lab hosts do not run systemd, so
// this tests what a host without a running systemd (an image, a chroot, a
// container) allows: a unit file written by file() and enabled through the
// real systemctl, which works on the unit files alone. Check mode predicts
// the first run; the second changes nothing; enabled=False disables.
func TestServiceSystemdUnitFileEnablement(t *testing.T) {
	l := flatLab(t)
	const unit = "herd-e2e-unit"
	wants := "/etc/systemd/system/multi-user.target.wants/" + unit + ".service"
	policy := func(enabled bool) string {
		return fmt.Sprintf(`
def main(host):
    file("/etc/systemd/system/%[1]s.service", content = "[Unit]\nDescription=herd e2e\n[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n",
         notify = "service:%[1]s")
    service("%[1]s", enabled = %[2]s, manager = "systemd")
role("units", hosts = inv.hosts, main = main)
`, unit, map[bool]string{true: "True", false: "False"}[enabled])
	}
	for _, name := range kindHosts {
		hostExec(t, l.Host(name), "rm", "-f", "/etc/systemd/system/"+unit+".service", wants)
	}

	rec, res := pushKinds(t, l, policy(true), true)
	if c := total(res); c.Changed != 2*len(kindHosts) {
		t.Errorf("check: %+v\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		if typ, msg := msgOf(rec, name, "service:"+unit); typ != event.Changed {
			t.Errorf("%s: check mode: %s %q", name, typ, msg)
		}
		if _, err := os.Lstat(l.Host(name).Path(wants)); err == nil {
			t.Errorf("%s: check mode enabled the unit", name)
		}
	}

	rec, res = pushKinds(t, l, policy(true), false)
	if c := total(res); c.Changed != 2*len(kindHosts) {
		t.Errorf("first run: %+v\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		if typ, msg := msgOf(rec, name, "service:"+unit); typ != event.Changed || msg != "enable" {
			t.Errorf("%s: service: %s %q", name, typ, msg)
		}
		if msg := refreshMsg(rec, name, "service:"+unit); !strings.HasPrefix(msg, "systemd is not running here, nothing to restart") {
			t.Errorf("%s: refresh: %q", name, msg)
		}
		if got := hostExec(t, l.Host(name), "readlink", wants); got != "/etc/systemd/system/"+unit+".service" {
			t.Errorf("%s: %s -> %q", name, wants, got)
		}
	}

	rec, res = pushKinds(t, l, policy(true), false)
	if c := total(res); c.Changed != 0 {
		t.Errorf("second run: %+v\n%s", c, rec.dump())
	}

	rec, res = pushKinds(t, l, policy(false), false)
	for _, name := range kindHosts {
		if typ, msg := msgOf(rec, name, "service:"+unit); typ != event.Changed || msg != "disable" {
			t.Errorf("%s: disable: %s %q\n%s", name, typ, msg, rec.dump())
		}
		if _, err := os.Lstat(l.Host(name).Path(wants)); err == nil {
			t.Errorf("%s: still enabled", name)
		}
	}
	if c := total(res); c.Changed != len(kindHosts) {
		t.Errorf("disable run: %+v", c)
	}
}
