package push_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/event"
)

// TestKindsCronUserCrontab: cron entries in a user's crontab, through the
// real crontab command (package cron): check mode predicts the first run,
// the first run installs the crontab, the second changes nothing, a line
// the user added by hand is kept, and state="absent" removes only ours.
func TestKindsCronUserCrontab(t *testing.T) {
	if _, err := exec.LookPath("crontab"); err != nil {
		t.Skip("needs the crontab command (apt-get install cron)")
	}
	l := flatLab(t)
	policy := func(state string) string {
		if state == "absent" {
			return `
def main(host):
    cron("herd backup", user = "deploy", state = "absent")
role("cron", hosts = inv.hosts, main = main)
`
		}
		return `
def main(host):
    cron("herd backup", user = "deploy", job = "/usr/bin/true backup", minute = "15", hour = "3")
    cron("herd reboot", user = "deploy", job = "/usr/bin/true up", special_time = "reboot")
role("cron", hosts = inv.hosts, main = main)
`
	}
	ids := []string{"cron:herd backup", "cron:herd reboot"}
	crontab := func(host string) string {
		out, _ := l.Host(host).Exec(t.Context(), "crontab", "-l", "-u", "deploy")
		return string(out)
	}
	for _, name := range kindHosts {
		l.Host(name).Exec(t.Context(), "crontab", "-r", "-u", "deploy")
	}

	recCheck, res := pushKinds(t, l, policy("present"), true)
	if c := total(res); c.Changed != 2*len(kindHosts) {
		t.Errorf("check: %+v\n%s", c, recCheck.dump())
	}
	for _, name := range kindHosts {
		if _, err := os.Lstat(l.Host(name).Path("/var/spool/cron/crontabs/deploy")); err == nil {
			t.Errorf("%s: check mode installed a crontab: %q", name, crontab(name))
		}
	}

	rec, res := pushKinds(t, l, policy("present"), false)
	if c := total(res); c.Changed != 2*len(kindHosts) {
		t.Errorf("first run: %+v\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		for _, id := range ids {
			typ, msg := msgOf(rec, name, id)
			if _, cmsg := msgOf(recCheck, name, id); typ != event.Changed || msg != "entry added" || cmsg != msg {
				t.Errorf("%s: %s: run %s %q, check %q", name, id, typ, msg, cmsg)
			}
		}
		want := "#herd: herd backup\n15 3 * * * /usr/bin/true backup\n#herd: herd reboot\n@reboot /usr/bin/true up\n"
		if got := crontab(name); !strings.HasSuffix(got, want) {
			t.Errorf("%s: crontab -l -u deploy:\n%s\nwant it to end with:\n%s", name, got, want)
		}
		if st := hostExec(t, l.Host(name), "stat", "-c", "%U %a", "/var/spool/cron/crontabs/deploy"); st != "deploy 600" {
			t.Errorf("%s: spool file %s", name, st)
		}
	}

	rec, res = pushKinds(t, l, policy("present"), false)
	if c := total(res); c.Changed != 0 {
		t.Errorf("second run: %+v\n%s", c, rec.dump())
	}

	// A line added by hand stays; only the named entry goes.
	hostExec(t, l.Host("host9"), "sh", "-c", "(crontab -l -u deploy; echo '0 0 * * * /usr/bin/true mine') | crontab -u deploy -")
	pushKinds(t, l, policy("absent"), false)
	got := crontab("host9")
	if strings.Contains(got, "backup") || !strings.Contains(got, "@reboot /usr/bin/true up") || !strings.Contains(got, "0 0 * * * /usr/bin/true mine") {
		t.Errorf("after absent:\n%s", got)
	}
	if _, res = pushKinds(t, l, policy("absent"), false); total(res).Changed != 0 {
		t.Errorf("absent twice: %+v", total(res))
	}
	for _, name := range kindHosts {
		l.Host(name).Exec(t.Context(), "crontab", "-r", "-u", "deploy")
	}
}
