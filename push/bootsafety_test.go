package push_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/lab"
)

// The attacks in this file are what a local user on a target, or someone who
// can write the login user's agent cache, actually has: files in shared
// directories, a wrapper around the cached binary, a sudoers rule that names
// a path. Each test performs the attack against real lab hosts and fails if
// it works.

// privateLab starts a lab of n flat hosts for one test; it dies with the
// test. prefix keeps the labs of this file apart ("boot" + letter).
func privateLab(t *testing.T, letter string, n int) *lab.Lab {
	t.Helper()
	if ok, why := lab.Available(); !ok {
		t.Skip("lab: " + why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l, err := lab.Up(ctx, lab.Spec{Name: fmt.Sprintf("boot%s%d", letter, os.Getpid()%100000), Flat: n})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() { l.Down() })
	return l
}

// sh runs a shell command on h as user (root when user is ""), bounded.
func sh(t *testing.T, h *lab.Host, user, script string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	argv := []string{"sh", "-c", script}
	if user != "" {
		argv = []string{"su", user, "-s", "/bin/sh", "-c", script}
	}
	out, err := h.Exec(ctx, argv...)
	return string(out), err
}

func mustSh(t *testing.T, h *lab.Host, user, script string) {
	t.Helper()
	if out, err := sh(t, h, user, script); err != nil {
		t.Fatalf("on %s as %q: %s: %v\n%s", h.Name, user, script, err, out)
	}
}

// planted is the program another user leaves where herd might run it: if
// anyone runs it, it says who in marker.
func planted(marker string) string {
	return "#!/bin/sh\nid -un >> " + marker + "\nexit 0\n"
}

// A directory another user can write, or a binary another user owns, is
// never executed: the bootstrap refuses it with the host and the path, and
// the file another user planted there never runs, not as the login user and
// not as root through become.
func TestBootstrapRefusesAgentPathsOthersCanWrite(t *testing.T) {
	l := privateLab(t, "a", 1)
	h := l.Host("host1")
	hash, err := agentBinary(t).Hash()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir string
		setup     string // run as root; $H is the agent hash, $P the planted program
		wantPath  string // the path the refusal names
		login     string // default deploy, which becomes root
	}{
		{"root's agent dir in a directory another user owns", "/srv/r",
			`install -d -o deploy-pw -m 0755 /srv/r && su deploy-pw -s /bin/sh -c 'mkdir -m 0755 /srv/r/$H && printf "%s" "$P" > /srv/r/$H/herd && chmod 0755 /srv/r/$H/herd'`,
			"/srv/r", "root"},
		{"world-writable agent dir with another user's binary", "/srv/a",
			`install -d -m 0777 /srv/a && su deploy-pw -s /bin/sh -c 'mkdir -m 0755 /srv/a/$H && printf "%s" "$P" > /srv/a/$H/herd && chmod 0755 /srv/a/$H/herd'`,
			"/srv/a", ""},
		{"agent dir owned by another user", "/srv/b",
			`install -d -o deploy-pw -m 0755 /srv/b && su deploy-pw -s /bin/sh -c 'mkdir -m 0755 /srv/b/$H && printf "%s" "$P" > /srv/b/$H/herd && chmod 0755 /srv/b/$H/herd'`,
			"/srv/b", ""},
		{"own agent dir, hash dir pre-created by another user", "/srv/c",
			`install -d -o deploy -m 0711 /srv/c && install -d -o deploy-pw -m 0755 /srv/c/$H && printf "%s" "$P" > /srv/c/$H/herd && chown deploy-pw /srv/c/$H/herd && chmod 0755 /srv/c/$H/herd`,
			"/srv/c/" + hash, ""},
		{"own dirs, binary owned by another user", "/srv/d",
			`install -d -o deploy -m 0700 /srv/d /srv/d/$H && printf "%s" "$P" > /srv/d/$H/herd && chown deploy-pw /srv/d/$H/herd && chmod 0755 /srv/d/$H/herd`,
			"/srv/d/" + hash + "/herd", ""},
		{"own binary, writable by others", "/srv/e",
			`install -d -o deploy -m 0700 /srv/e /srv/e/$H && printf "%s" "$P" > /srv/e/$H/herd && chown deploy /srv/e/$H/herd && chmod 0777 /srv/e/$H/herd`,
			"/srv/e/" + hash + "/herd", ""},
		{"parent that others can write, without the sticky bit", "/srv/open/f",
			`install -d -m 0777 /srv/open && install -d -o deploy -m 0700 /srv/open/f /srv/open/f/$H && printf "%s" "$P" > /srv/open/f/$H/herd && chown deploy /srv/open/f/$H/herd && chmod 0700 /srv/open/f/$H/herd`,
			"/srv/open", ""},
		{"symlinked binary pointing at another user's file", "/srv/g",
			`install -d -o deploy -m 0700 /srv/g /srv/g/$H && printf "%s" "$P" > /tmp/g-evil && chown deploy-pw /tmp/g-evil && chmod 0755 /tmp/g-evil && ln -s /tmp/g-evil /srv/g/$H/herd && chown -h deploy /srv/g/$H/herd`,
			"/srv/g/" + hash + "/herd", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := "/tmp/planted-ran-" + filepath.Base(tt.dir)
			env := fmt.Sprintf("H=%s M=%s P=%s; export H M P; ", hash, marker, shellQuote(planted(marker)))
			mustSh(t, h, "", env+"install -d -m 0755 /srv; rm -f "+marker+"; "+tt.setup)
			dir := project(t, map[string]string{
				"inventory.toml": becomeInventory(l, map[string]string{"host1": "herd_user=" + first(tt.login, "deploy") + " herd_agent_dir=" + tt.dir}),
				"site.star":      rootFilePolicy,
			})
			rec := &recorder{}
			res := run(t, load(t, dir), options(t, l, rec))
			hr := res.Hosts["host1"]
			if hr == nil || !hr.Failed && !hr.Unreachable {
				t.Fatalf("the run used %s; result %+v\n%s", tt.dir, hr, rec.dump())
			}
			for _, want := range []string{"host1: ", "refusing to run the agent from", tt.wantPath, "writable by group/others"} {
				if !strings.Contains(hr.Err, want) {
					t.Errorf("error %q does not say %q", hr.Err, want)
				}
			}
			if who, err := h.ReadFile(marker); err == nil {
				t.Fatalf("the planted program ran as %q", who)
			}
			if _, err := h.ReadFile("/root/herd-become.txt"); err == nil {
				t.Fatal("the plan ran")
			}
		})
	}

	// A sticky, world-writable parent (/tmp) is fine when the agent
	// directory in it is the login user's own.
	t.Run("own agent dir in sticky /tmp works", func(t *testing.T) {
		dir := project(t, map[string]string{
			"inventory.toml": becomeInventory(l, map[string]string{"host1": "herd_user=deploy herd_agent_dir=/tmp/herd-deploy"}),
			"site.star":      rootFilePolicy,
		})
		rec := &recorder{}
		res := run(t, load(t, dir), options(t, l, rec))
		if failed, unreachable := res.Failed(); failed || unreachable {
			t.Fatalf("run failed:\n%s", rec.dump())
		}
	})
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// wrapperPolicy carries a string that must never reach a wrapper.
const wrapperPolicy = `
inv = inventory("inventory.toml")

def main(host):
    file("/root/herd-become.txt", content = "plan-secret-7f3a\n", mode = 0o600)

role("root-file", hosts = inv.hosts, main = main, sudo = True)
`

// Someone who can write the login user's cache replaces the cached agent
// with a wrapper that runs the real one and logs what passes. The agent
// notices before it says a word, so the controller sends neither the
// become password nor a plan, and the host fails saying why.
func TestWrappedCachedAgentIsRefusedBeforeSecretsAreSent(t *testing.T) {
	l := privateLab(t, "b", 1)
	h := l.Host("host1")
	pw := l.Passwords.DeployPW
	hash, err := agentBinary(t).Hash()
	if err != nil {
		t.Fatal(err)
	}
	dir := project(t, map[string]string{
		"inventory.toml": becomeInventory(l, map[string]string{"host1": "herd_user=deploy-pw herd_sudo_password=" + pw}),
		"site.star":      wrapperPolicy,
	})
	pol := load(t, dir)
	// The first run installs the agent in deploy-pw's cache.
	rec := &recorder{}
	if res := run(t, pol, options(t, l, rec)); res.Hosts["host1"].Failed {
		t.Fatalf("first run failed:\n%s", rec.dump())
	}
	cache := "/home/deploy-pw/.cache/herd/" + hash
	const log = "/tmp/wrapper.log"
	tests := []struct{ name, wrapper, want string }{
		// These two also pass the agent the path it runs from, so only the
		// check of the stream can catch them.
		{"tee on stdin", `tee -a ` + log + ` | HERD_AGENT_PATH="$0.real" "$0.real" "$@"`, "also holds the agent's stdin"},
		{"tee on stdout", `HERD_AGENT_PATH="$0.real" "$0.real" "$@" | tee -a ` + log, "also holds the agent's stdout"},
		{"plain exec of a copy", `exec "$0.real" "$@"`, "a wrapper stands at the cached path"},
		{"exec without the bootstrap's environment", `exec env -u HERD_AGENT_PATH "$0.real" "$@"`, "not by herd's bootstrap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapper := "#!/bin/sh\necho \"wrapper ran: $*\" >> " + log + "\n" + tt.wrapper + "\n"
			mustSh(t, h, "", "rm -f "+log+" /root/herd-become.txt; touch "+log+"; chmod 666 "+log)
			mustSh(t, h, "deploy-pw", fmt.Sprintf(`cd %s && { [ -e herd.real ] || mv herd herd.real; } && printf '%%s' %s > herd && chmod 0700 herd`, cache, shellQuote(wrapper)))
			rec := &recorder{}
			res := run(t, pol, options(t, l, rec))
			hr := res.Hosts["host1"]
			if hr == nil || !hr.Failed && !hr.Unreachable {
				t.Fatalf("the run went on through the wrapper: %+v\n%s", hr, rec.dump())
			}
			for _, want := range []string{"host1: ", "wrapped or watched", tt.want} {
				if !strings.Contains(hr.Err, want) {
					t.Errorf("error %q does not say %q", hr.Err, want)
				}
			}
			logged, err := h.ReadFile(log)
			if err != nil || !strings.Contains(string(logged), "wrapper ran") {
				t.Fatalf("the wrapper did not run (%v): the test proves nothing", err)
			}
			for _, secret := range []string{pw, "plan-secret-7f3a"} {
				if strings.Contains(string(logged), secret) {
					t.Errorf("the wrapper captured %q:\n%s", secret, logged)
				}
			}
			if _, err := h.ReadFile("/root/herd-become.txt"); err == nil {
				t.Error("the plan ran")
			}
		})
	}
}

// pinnedRule is the sudoers rule the README documents for sites that want
// sudo to name the agent: it names only the root-owned install.
const pinnedRule = "herdop ALL=(root) NOPASSWD: /usr/local/lib/herd/*/herd agent --hash * --become-socket *\n"

// The documented pinned set-up works, and the login user cannot use its
// sudoers rule to run a program of their own as root: not at the path the
// README used to document, not in the pinned directory, not by replacing
// the pinned binary, not through "..".
func TestPinnedAgentSudoRuleResistsPlantedBinaries(t *testing.T) {
	l := privateLab(t, "c", 1)
	h := l.Host("host1")
	bin := agentBinary(t)
	hash, err := bin.Hash()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(bin.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Path("/root/herd"), raw, 0o700); err != nil {
		t.Fatal(err)
	}
	// A dedicated account whose only sudo right is the pinned rule, and the
	// README's one-time root step.
	mustSh(t, h, "", `useradd -m -s /bin/sh herdop && usermod -p '*' herdop &&
		install -d -o herdop -m 0700 /home/herdop/.ssh &&
		install -o herdop -m 0600 /home/deploy/.ssh/authorized_keys /home/herdop/.ssh/authorized_keys &&
		printf '%s' `+shellQuote(pinnedRule)+` > /etc/sudoers.d/herd-pinned && chmod 0440 /etc/sudoers.d/herd-pinned &&
		visudo -c -q && umask 022 && cd /root &&
		install -D -m 0755 herd /usr/local/lib/herd/$(sha256sum herd | cut -d' ' -f1)/herd`)

	dir := project(t, map[string]string{
		"inventory.toml": becomeInventory(l, map[string]string{"host1": "herd_user=herdop herd_agent_dir=/usr/local/lib/herd"}),
		"site.star":      rootFilePolicy,
	})
	rec := &recorder{}
	res := run(t, load(t, dir), options(t, l, rec))
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("the pinned set-up does not work:\n%s", rec.dump())
	}
	if who, _ := h.ReadFile("/root/herd-become.who"); strings.TrimSpace(string(who)) != "root" {
		t.Errorf("exec ran as %q, want root", who)
	}
	if out, err := sh(t, h, "herdop", "find /home/herdop -name herd -type f"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("the pinned set-up left an agent in herdop's home: %q %v", out, err)
	}

	evil := planted("/root/pwned") // only root can write there
	pinned := "/usr/local/lib/herd/" + hash + "/herd"
	const args = " agent --hash x --become-socket @herd-become-x"
	attacks := []struct{ name, script string }{
		{"other commands", "sudo -n id -u"},
		{"planted at the formerly documented cache path",
			"mkdir -p ~/.cache/herd/x && printf '%s' \"$E\" > ~/.cache/herd/x/herd && chmod 0755 ~/.cache/herd/x/herd && sudo -n ~/.cache/herd/x/herd" + args},
		{"planted in the pinned directory",
			"mkdir -p /usr/local/lib/herd/evil; printf '%s' \"$E\" > /usr/local/lib/herd/evil/herd; chmod 0755 /usr/local/lib/herd/evil/herd; sudo -n /usr/local/lib/herd/evil/herd" + args},
		{"pinned binary replaced",
			"printf '%s' \"$E\" > ~/evil; chmod 0755 ~/evil; cp ~/evil " + pinned + " || mv -f ~/evil " + pinned + "; sudo -n " + pinned + args},
		{"dot-dot out of the pinned directory",
			"mkdir -p ~/x && printf '%s' \"$E\" > ~/x/herd && chmod 0755 ~/x/herd && sudo -n /usr/local/lib/herd/../../../../home/herdop/x/herd" + args},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			out, err := sh(t, h, "herdop", "E="+shellQuote(evil)+"; export E; "+a.script)
			if _, perr := h.ReadFile("/root/pwned"); perr == nil {
				t.Fatalf("herdop ran a program of their own as root:\n%s", out)
			}
			if err == nil {
				t.Errorf("the attack's sudo succeeded:\n%s", out)
			}
			if got, err := h.ReadFile(pinned); err != nil || string(got) != string(raw) {
				out2, _ := sh(t, h, "", "ls -la "+pinned+"; sha256sum "+pinned)
				t.Fatalf("the pinned binary was changed (%v, %d bytes): %s", err, len(got), out2)
			}
		})
	}
}
