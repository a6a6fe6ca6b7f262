package bench

import (
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
)

func testTargets(t *testing.T) []Target {
	t.Helper()
	var out []Target
	for i, port := range []int{22, 40123} {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		key, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Target{Name: fmt.Sprintf("host%d", i+1), Addr: fmt.Sprintf("10.9.%d.2", i+1), Port: port, HostKey: key})
	}
	out[1].Addr = "127.0.0.1" // behind a latency proxy
	return out
}

// herd gets 100 exec resources in declaration order on every host, each
// host reached at its (possibly proxied) address as root with the lab key.
func TestProjectForHerd(t *testing.T) {
	targets := testTargets(t)
	p, err := WriteProject(t.TempDir(), targets, "/lab/id_ed25519", Steps)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.LoadWith(p.Inventory, inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hosts := inv.Hosts()
	if len(hosts) != len(targets) {
		t.Fatalf("inventory has %d hosts, want %d", len(hosts), len(targets))
	}
	for i, h := range hosts {
		c, want := h.Conn, targets[i]
		if h.Name != want.Name || c.Address != want.Addr || c.Port != want.Port || c.User != "root" || c.KeyFile != "/lab/id_ed25519" {
			t.Errorf("host %d = %s %+v, want %+v as root with the lab key", i, h.Name, c, want)
		}
	}
	pol, err := policy.Load(p.Policy, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.Roles) != 1 {
		t.Fatalf("policy has %d roles, want 1", len(pol.Roles))
	}
	pl, err := pol.Plan(pol.Roles[0], policy.Host{Name: "host1", Vars: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Resources) != Steps {
		t.Fatalf("plan has %d resources, want %d", len(pl.Resources), Steps)
	}
	for i, r := range pl.Resources {
		if want := fmt.Sprintf("exec:hostname-%d", i+1); r.ID != want {
			t.Fatalf("resource %d is %s, want %s (declaration order)", i, r.ID, want)
		}
	}
}

// Both tools check host keys: the known_hosts file pins each target's real
// key under the address and port actually dialled.
func TestKnownHostsPinTheDialledAddress(t *testing.T) {
	targets := testTargets(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(path, []byte(KnownHosts(targets)), 0o644); err != nil {
		t.Fatal(err)
	}
	check, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, tg := range targets {
		addr := net.JoinHostPort(tg.Addr, fmt.Sprint(tg.Port))
		remote := &net.TCPAddr{IP: net.ParseIP(tg.Addr), Port: tg.Port}
		if err := check(addr, remote, tg.HostKey); err != nil {
			t.Errorf("%s: own key refused: %v", addr, err)
		}
		other := targets[1-i].HostKey
		if err := check(addr, remote, other); err == nil {
			t.Errorf("%s: another host's key accepted", addr)
		}
	}
}

// Ansible gets the same hosts and 100 command tasks, no fact gathering.
func TestProjectForAnsible(t *testing.T) {
	targets := testTargets(t)
	p, err := WriteProject(t.TempDir(), targets, "/lab/id_ed25519", Steps)
	if err != nil {
		t.Fatal(err)
	}
	// herd reads Ansible INI too: a convenient, independent parser.
	inv, err := inventory.LoadWith(p.INI, inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range inv.Hosts() {
		if c := h.Conn; c.Address != targets[i].Addr || c.Port != targets[i].Port || c.User != "root" {
			t.Errorf("INI host %s = %+v, want %s:%d as root", h.Name, c, targets[i].Addr, targets[i].Port)
		}
		if py := h.Vars["ansible_python_interpreter"]; py != "/usr/bin/python3" {
			t.Errorf("INI host %s: ansible_python_interpreter = %v, want /usr/bin/python3", h.Name, py)
		}
	}
	b, err := os.ReadFile(p.Playbook)
	if err != nil {
		t.Fatal(err)
	}
	var plays []struct {
		Hosts       string           `yaml:"hosts"`
		GatherFacts bool             `yaml:"gather_facts"`
		Tasks       []map[string]any `yaml:"tasks"`
	}
	if err := yaml.Unmarshal(b, &plays); err != nil {
		t.Fatalf("playbook is not YAML: %v", err)
	}
	if len(plays) != 1 || plays[0].Hosts != "bench" || plays[0].GatherFacts || len(plays[0].Tasks) != Steps {
		t.Fatalf("playbook = %d plays, first %+v; want one play on bench, no facts, %d tasks", len(plays), plays[0], Steps)
	}
	for i, task := range plays[0].Tasks {
		if task["name"] != fmt.Sprintf("hostname-%d", i+1) || task["ansible.builtin.command"] != "hostname" {
			t.Fatalf("task %d = %v, want hostname-%d running hostname", i, task, i+1)
		}
	}
	if !strings.Contains(AnsiblePlaybook(3), "gather_facts: false") {
		t.Error("playbook gathers facts")
	}
}
