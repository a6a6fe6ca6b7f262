package transport

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testSSHConfig = `
Host web
  HostName 10.0.0.5
  Port 2222
  User deploy
  IdentityFile ~/.ssh/web_%h_%r

Host behind
  HostName 10.1.0.9
  ProxyJump jumper,admin@second:2200

Host jumper
  HostName bastion.example.com
  User hop
  Port 2201

Host direct
  ProxyJump none

Host loop
  ProxyJump loop

Host *.internal
  User ops

Host *
  UserKnownHostsFile /etc/herd/known_hosts ~/.ssh/kh_%h
`

// route renders where an endpoint leads: "user@host:port [keys] <- hop <- hop".
func route(e *endpoint) string {
	var parts []string
	for ; e != nil; e = e.jump {
		s := e.user + "@" + e.addr()
		if len(e.keyFiles) > 0 {
			s += " " + fmt.Sprint(e.keyFiles)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " <- ")
}

func writeSSHConfig(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveAppliesSSHConfig(t *testing.T) {
	sc, err := loadSSHConfig(writeSSHConfig(t, testSSHConfig))
	if err != nil {
		t.Fatal(err)
	}
	home, me := homeDir(), localUser()
	tests := []struct {
		name   string
		target Target
		want   string
	}{
		{"alias gives HostName, Port, User and IdentityFile with tokens",
			Target{Name: "web"},
			"deploy@10.0.0.5:2222 [" + home + "/.ssh/web_10.0.0.5_deploy]"},
		{"explicit fields win over the file",
			Target{Name: "web", Address: "192.168.1.1", Port: 22, User: "root", KeyFiles: []string{"/k"}},
			"root@192.168.1.1:22 [/k " + home + "/.ssh/web_192.168.1.1_root]"},
		{"wildcard Host patterns match",
			Target{Name: "db.internal"},
			"ops@db.internal:22"},
		{"unmatched name is the address, local user, port 22",
			Target{Name: "plain"},
			me + "@plain:22"},
		{"ProxyJump list is a chain, each hop resolved by its own config",
			Target{Name: "behind"},
			me + "@10.1.0.9:22 <- admin@second:2200 <- hop@bastion.example.com:2201"},
		{"explicit ProxyJump overrides the file",
			Target{Name: "behind", ProxyJump: &Target{Name: "web"}},
			me + "@10.1.0.9:22 <- deploy@10.0.0.5:2222 [" + home + "/.ssh/web_10.0.0.5_deploy]"},
		{"ProxyJump none means direct",
			Target{Name: "direct"},
			me + "@direct:22"},
		{"IPv6 address",
			Target{Name: "v6", Address: "fd00::1", Port: 2200, User: "u"},
			"u@[fd00::1]:2200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := sc.resolve(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if got := route(e); got != tt.want {
				t.Errorf("route = %q\nwant    %q", got, tt.want)
			}
		})
	}
}

func TestResolveKnownHosts(t *testing.T) {
	sc, err := loadSSHConfig(writeSSHConfig(t, testSSHConfig))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := sc.resolve(Target{Name: "plain"})
	want := []string{"/etc/herd/known_hosts", homeDir() + "/.ssh/kh_plain"}
	if fmt.Sprint(e.knownHosts) != fmt.Sprint(want) {
		t.Errorf("from UserKnownHostsFile: %v, want %v", e.knownHosts, want)
	}
	e, _ = sc.resolve(Target{Name: "plain", KnownHosts: []string{"/mine"}})
	if fmt.Sprint(e.knownHosts) != "[/mine]" {
		t.Errorf("explicit KnownHosts: %v, want [/mine]", e.knownHosts)
	}
	none, _ := loadSSHConfig("none")
	e, _ = none.resolve(Target{Name: "plain"})
	if want := filepath.Join(homeDir(), ".ssh", "known_hosts"); fmt.Sprint(e.knownHosts) != "["+want+"]" {
		t.Errorf("default: %v, want [%s]", e.knownHosts, want)
	}
}

func TestResolveRefusesProxyJumpLoops(t *testing.T) {
	sc, err := loadSSHConfig(writeSSHConfig(t, testSSHConfig))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sc.resolve(Target{Name: "loop"})
	if err == nil || !strings.Contains(err.Error(), "ProxyJump chain longer than") {
		t.Fatalf("err = %v, want a ProxyJump loop error", err)
	}
}

func TestMissingExplicitSSHConfigIsAnError(t *testing.T) {
	p := NewPool(Config{SSHConfigFile: "/nonexistent/ssh_config"})
	defer p.Close()
	_, err := p.Get(context.Background(), Target{Name: "web"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/ssh_config") {
		t.Fatalf("err = %v, want it to name the missing file", err)
	}
}

func TestHopsDoNotInheritThePassword(t *testing.T) {
	sc, _ := loadSSHConfig(writeSSHConfig(t, testSSHConfig))
	e, err := sc.resolve(Target{Name: "behind", Password: "secret", CheckHostKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	for j := e.jump; j != nil; j = j.jump {
		if j.password != "" || !j.check {
			t.Errorf("hop %s: password set %v, check %v; want no password and checking on", j.name, j.password != "", j.check)
		}
	}
}

// TestSSHConfigAliasAndProxyJumpOverRealSSHD: the inventory names only
// "app"; ssh_config says where it is, as whom, with which key, and through
// which two jump hosts. Every hop is a real sshd on loopback.
func TestSSHConfigAliasAndProxyJumpOverRealSSHD(t *testing.T) {
	target := startSSHD(t, sshdOptions{})
	hop1 := startSSHD(t, sshdOptions{})
	hop2 := startSSHD(t, sshdOptions{})
	dir := t.TempDir()
	key := writeClientKey(t, dir)
	known := filepath.Join(dir, "known_hosts")
	os.WriteFile(known, []byte(knownHostsLine(target, false)+knownHostsLine(hop1, true)+knownHostsLine(hop2, false)), 0o600)
	conf := writeSSHConfig(t, fmt.Sprintf(`
Host app
  HostName 127.0.0.1
  Port %d
  ProxyJump hop1,hop2
Host hop1
  HostName 127.0.0.1
  Port %d
Host hop2
  HostName 127.0.0.1
  Port %d
Host *
  User root
  IdentityFile %s
  UserKnownHostsFile %s
`, target.port, hop1.port, hop2.port, key, known))

	cfg := testConfig()
	cfg.SSHConfigFile = conf
	p := NewPool(cfg)
	defer p.Close()
	c, err := p.Get(context.Background(), Target{Name: "app", CheckHostKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	// sshd's own view of the client: it came from loopback through hop2.
	stdout, _, err := run(t, c, "echo $SSH_CONNECTION")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(stdout); len(f) != 4 || f[3] != fmt.Sprint(target.port) {
		t.Errorf("SSH_CONNECTION = %q, want a connection to port %d", stdout, target.port)
	}
	if !strings.Contains(c.String(), "via hop2 via hop1") {
		t.Errorf("String() = %q, want the route", c.String())
	}
	// The hops are pooled too: a second target behind hop1 reuses it.
	dials := 0
	p.onDial = func(*endpoint) { dials++ }
	direct := Target{Name: "hop2-direct", Address: "127.0.0.1", Port: hop2.port, User: "root",
		KeyFiles: []string{key}, KnownHosts: []string{known}, CheckHostKeys: true, ProxyJump: &Target{Name: "hop1"}}
	if _, err := p.Get(context.Background(), direct); err != nil {
		t.Fatal(err)
	}
	if dials != 1 {
		t.Errorf("%d dials for a new target behind a pooled hop, want 1", dials)
	}
}

func TestProxyJumpToAClosedPortSaysWhichHopFailed(t *testing.T) {
	hop := startSSHD(t, sshdOptions{})
	port := freePort(t)
	p := NewPool(testConfig())
	defer p.Close()
	jump := hop.target("bastion")
	target := hop.target("db1")
	target.Port, target.ProxyJump = port, &jump
	_, err := p.Get(context.Background(), target)
	want := fmt.Sprintf("host db1 (127.0.0.1:%d via bastion): host unreachable: jump host bastion could not connect", port)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant it to contain %q", err, want)
	}
}

// Resolve gives connections transport does not make itself (a relay's
// child) the same ssh_config view as a direct one, without ProxyJump: their
// path is decided by the relay.
func TestResolveExportsTheSSHConfigView(t *testing.T) {
	file := writeSSHConfig(t, testSSHConfig)
	home := homeDir()
	tests := []struct {
		name   string
		target Target
		file   string
		want   Target
	}{
		{"alias from the file", Target{Name: "web"}, file,
			Target{Name: "web", Address: "10.0.0.5", Port: 2222, User: "deploy", KeyFiles: []string{home + "/.ssh/web_10.0.0.5_deploy"}}},
		{"explicit fields win, keys first", Target{Name: "web", Address: "192.0.2.1", Port: 22, User: "root", KeyFiles: []string{"/k"}}, file,
			Target{Name: "web", Address: "192.0.2.1", Port: 22, User: "root", KeyFiles: []string{"/k", home + "/.ssh/web_192.0.2.1_root"}}},
		{"ProxyJump is not followed", Target{Name: "behind", User: "u"}, file,
			Target{Name: "behind", Address: "10.1.0.9", Port: 22, User: "u"}},
		{"no file", Target{Name: "web", User: "u"}, "none",
			Target{Name: "web", Address: "web", Port: 22, User: "u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.target, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if got.Address != tt.want.Address || got.Port != tt.want.Port || got.User != tt.want.User ||
				fmt.Sprint(got.KeyFiles) != fmt.Sprint(tt.want.KeyFiles) || got.ProxyJump != nil {
				t.Errorf("Resolve = %s@%s:%d keys %v jump %v; want %s@%s:%d keys %v",
					got.User, got.Address, got.Port, got.KeyFiles, got.ProxyJump, tt.want.User, tt.want.Address, tt.want.Port, tt.want.KeyFiles)
			}
			if len(got.KnownHosts) == 0 {
				t.Error("no known_hosts files")
			}
		})
	}
	if _, err := Resolve(Target{Name: "web"}, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing explicit config file was accepted")
	}
}

// Resolve applies the ssh_config file (as Config.SSHConfigFile: "" for
// ~/.ssh/config, "none" for no file) to t the way a direct connection
// would, without following ProxyJump, and returns the target with Address,
// Port, User, KeyFiles and KnownHosts filled in. Only tests use it (it was
// an export no caller used), to read what resolveDepth decided.
func Resolve(t Target, configFile string) (Target, error) {
	c, err := loadSSHConfig(configFile)
	if err != nil {
		return Target{}, err
	}
	t.ProxyJump = nil
	e, err := c.resolveDepth(t, 0, false)
	if err != nil {
		return Target{}, err
	}
	t.Address, t.Port, t.User = e.host, e.port, e.user
	t.KeyFiles, t.KnownHosts = e.keyFiles, e.knownHosts
	if e.check {
		t.StrictHostKeys = StrictYes
		if e.acceptNew {
			t.StrictHostKeys = AcceptNew
		}
	}
	return t, nil
}
