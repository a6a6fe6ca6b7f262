package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Target is one host as the tools reach it: the lab address, or the
// latency proxy in front of it. HostKey is the host's real key, so host
// keys are checked even through the proxy.
type Target struct {
	Name    string
	Addr    string
	Port    int
	HostKey ssh.PublicKey
}

// Project is the files of one scenario, written for every tool.
type Project struct {
	Dir        string
	Policy     string // herd: site.star with Steps exec resources
	Inventory  string // herd: inventory.toml
	KnownHosts string // both tools: "[addr]:port key" per target
	INI        string // Ansible: hosts.ini
	Playbook   string // Ansible: playbook.yml with Steps command tasks
	Home       string // HOME for the tools, so nothing of the user's leaks in
	KeyFile    string
	Steps      int
	Hosts      int
}

// WriteProject writes the policy, inventories, playbook and known_hosts
// for targets into dir; every host logs in as root with keyFile.
func WriteProject(dir string, targets []Target, keyFile string, steps int) (*Project, error) {
	p := &Project{
		Dir:        dir,
		Policy:     filepath.Join(dir, "site.star"),
		Inventory:  filepath.Join(dir, "inventory.toml"),
		KnownHosts: filepath.Join(dir, "known_hosts"),
		INI:        filepath.Join(dir, "hosts.ini"),
		Playbook:   filepath.Join(dir, "playbook.yml"),
		Home:       filepath.Join(dir, "home"),
		KeyFile:    keyFile,
		Steps:      steps,
		Hosts:      len(targets),
	}
	if err := os.MkdirAll(p.Home, 0o700); err != nil {
		return nil, fmt.Errorf("bench project: %w", err)
	}
	files := map[string]string{
		p.Policy:     HerdPolicy(steps),
		p.Inventory:  HerdInventory(targets, keyFile),
		p.KnownHosts: KnownHosts(targets),
		p.INI:        AnsibleInventory(targets),
		p.Playbook:   AnsiblePlaybook(steps),
	}
	for path, body := range files {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return nil, fmt.Errorf("bench project: %w", err)
		}
	}
	return p, nil
}

// HerdPolicy is one role of steps exec resources; execs run in declaration
// order, so these are steps sequential commands on each host.
func HerdPolicy(steps int) string {
	var b strings.Builder
	b.WriteString("def bench(host):\n")
	for i := 1; i <= steps; i++ {
		fmt.Fprintf(&b, "    exec(\"hostname-%d\", command = \"hostname\")\n", i)
	}
	b.WriteString("\nrole(\"bench\", main = bench)\n")
	return b.String()
}

// HerdInventory lists targets in group "bench", logging in as root.
func HerdInventory(targets []Target, keyFile string) string {
	var b strings.Builder
	b.WriteString("[groups.bench.hosts]\n")
	for _, t := range targets {
		fmt.Fprintf(&b, "%q = { herd_host = %q, herd_port = %d, herd_user = \"root\", herd_ssh_key = %q }\n",
			t.Name, t.Addr, t.Port, keyFile)
	}
	return b.String()
}

// KnownHosts pins each target's real host key under the address the tools
// dial, in the "[addr]:port" form OpenSSH and x/crypto both use.
func KnownHosts(targets []Target) string {
	var b strings.Builder
	for _, t := range targets {
		host := t.Addr
		if t.Port != 22 {
			host = "[" + t.Addr + "]:" + strconv.Itoa(t.Port)
		}
		b.WriteString(host + " " + string(ssh.MarshalAuthorizedKey(t.HostKey)))
	}
	return b.String()
}

// AnsibleInventory lists targets in group "bench" with an explicit Python,
// so Ansible spends no round trip discovering one.
func AnsibleInventory(targets []Target) string {
	var b strings.Builder
	b.WriteString("[bench]\n")
	for _, t := range targets {
		fmt.Fprintf(&b, "%s ansible_host=%s ansible_port=%d\n", t.Name, t.Addr, t.Port)
	}
	b.WriteString("\n[bench:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\n")
	return b.String()
}

// AnsiblePlaybook is the playbook twin of HerdPolicy: steps command tasks,
// no fact gathering (herd's hello facts are a handful of syscalls; Ansible's
// setup module would be a benchmark of its own).
func AnsiblePlaybook(steps int) string {
	var b strings.Builder
	b.WriteString("- hosts: bench\n  gather_facts: false\n  tasks:\n")
	for i := 1; i <= steps; i++ {
		fmt.Fprintf(&b, "    - name: hostname-%d\n      ansible.builtin.command: hostname\n", i)
	}
	return b.String()
}
