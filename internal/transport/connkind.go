package transport

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Connection kinds: targets that are not reached over SSH but entered with a
// tool (chroot, nsenter, docker exec, kubectl exec, ...) that runs a command
// inside them with stdin and stdout passed through. Every kind runs the very
// same bootstrap command the SSH path runs (BootstrapScript), so the agent,
// its cache and the protocol above do not know how they were reached.
//
// The tool runs on the controller, or on the host named by herd_via (over
// that host's SSH connection): ConnLine gives the one /bin/sh line to run
// there. Kinds are a small registry, as restic registers its backends: each
// is a function from the host's connection settings to an argv.

// ExitConnTool is the exit status of ConnLine's checks: the tool is not
// installed where it must run, or the container, pod, directory or process
// it names is not there.
const ExitConnTool = 95

// ConnSpec is what a kind needs to know about one host.
type ConnSpec struct {
	Host   string // inventory name, for messages
	Target string // herd_host: the container, pod, machine, directory, pid or netns; "" = Host
	User   string // herd_user: the user inside the target, for kinds that can pick one
	// Vars are the host's string variables (herd_kubectl_namespace, ...).
	Vars map[string]string
	// Where names the machine the tool runs on, for messages:
	// "the controller" or a host name.
	Where string
	// Seed, when set, has the tool's machine (a herd_via parent) copy the
	// agent from its own cache into the target's before the bootstrap.
	Seed *Seed
}

// Seed names the agent binary in the parent's cache and the target's agent
// directory, as Bootstrap's agentDir.
type Seed struct {
	Hash      string
	ParentDir string // the parent's herd_agent_dir ("" = ~/.cache/herd)
	TargetDir string // the target's herd_agent_dir
}

func (s ConnSpec) target() string {
	if s.Target != "" {
		return s.Target
	}
	return s.Host
}

func (s ConnSpec) v(names ...string) string {
	for _, n := range names {
		if x := s.Vars[n]; x != "" {
			return x
		}
	}
	return ""
}

// Invocation is how a kind enters its target: Check is a /bin/sh snippet
// run first on the tool's machine ("" = none; it should exit ExitConnTool
// with a message naming the tool when the target is not usable) and Argv
// runs a command inside the target, which is appended as its last element.
// An Argv element of the form $name expands the shell variable Check set.
type Invocation struct {
	Tool  string // the program to look for, when not the kind's (ip for a named netns)
	Check string
	Argv  []string
}

// ConnKind is one registered way in.
type ConnKind struct {
	Name string
	Tool string // the program that must be installed; "" = none
	// Enter returns the invocation for s; errors are configuration errors
	// (a missing or malformed setting) and name the variable to set.
	Enter func(s ConnSpec, tool string) (Invocation, error)
	Doc   string // one line for the README and error messages
}

var connKinds = map[string]*ConnKind{}

// RegisterConnKind adds a kind under its name and aliases.
func RegisterConnKind(k *ConnKind, aliases ...string) {
	for _, n := range append([]string{k.Name}, aliases...) {
		if _, dup := connKinds[n]; dup {
			panic("transport: connection kind registered twice: " + n)
		}
		connKinds[n] = k
	}
}

// ConnKindNames lists every name herd_connection accepts, sorted.
func ConnKindNames() []string {
	names := []string{"ssh"}
	for n := range connKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsSSH says the connection name means the SSH transport (the default);
// Ansible's "smart" and "paramiko" mean the same thing here.
func IsSSH(name string) bool {
	switch name {
	case "", "ssh", "smart", "paramiko", "paramiko_ssh":
		return true
	}
	return false
}

// CheckConn validates a host's herd_connection and settings, so a typo is
// refused before anything runs.
func CheckConn(kind string, s ConnSpec) error {
	if IsSSH(kind) {
		return nil
	}
	_, err := ConnLine(kind, s, "true")
	return err
}

var shellVarWord = regexp.MustCompile(`^\$[a-z_]+$`)

// ConnLine returns the /bin/sh command line that runs cmd (itself a shell
// command line, such as Bootstrap's) inside s's target, to be run on
// s.Where: it checks the tool is installed, runs the kind's check, and
// execs the tool. The line is wrapped as `exec /bin/sh -c '...'` so that a
// login shell of any family passes it on intact.
func ConnLine(kind string, s ConnSpec, cmd string) (string, error) {
	k, ok := connKinds[kind]
	if !ok {
		return "", fmt.Errorf("%s: herd_connection = %q: unknown; want one of %s", s.Host, kind, strings.Join(ConnKindNames(), ", "))
	}
	tool := k.Tool
	if t := s.v("herd_connection_tool"); t != "" {
		tool = t
	}
	inv, err := k.Enter(s, tool)
	if err != nil {
		return "", fmt.Errorf("%s: herd_connection = %s: %w", s.Host, kind, err)
	}
	if inv.Tool != "" {
		tool = inv.Tool
	}
	var parts []string
	if tool != "" {
		parts = append(parts, `command -v `+shellQuote(tool)+` >/dev/null 2>&1 || `+
			connFail(tool+" not installed on "+s.Where))
	}
	if inv.Check != "" {
		parts = append(parts, inv.Check)
	}
	words := make([]string, 0, len(inv.Argv)+1)
	for _, w := range inv.Argv {
		if shellVarWord.MatchString(w) {
			words = append(words, `"`+w+`"`)
		} else {
			words = append(words, shellQuote(w))
		}
	}
	if h := s.v("herd_home"); h != "" && !strings.HasPrefix(h, "/") {
		return "", fmt.Errorf("%s: herd_home = %q: want an absolute path inside the target", s.Host, h)
	}
	cmd = home(s) + cmd
	enter := strings.Join(words, " ")
	if s.Seed != nil {
		parts = append(parts, seedStep(s.Seed, enter, home(s)))
	}
	parts = append(parts, "exec "+enter+" "+shellQuote(cmd))
	return "exec /bin/sh -c " + shellQuote(strings.Join(parts, "; ")), nil
}

// connFail is a shell snippet that prints msg (already free of quotes the
// caller did not mean) on stderr and exits ExitConnTool.
func connFail(msg string) string {
	return fmt.Sprintf(`{ echo %s >&2; exit %d; }`, shellQuote(msg), ExitConnTool)
}

// home is the prefix that points $HOME at herd_home inside the target: on a
// read-only target the agent's cache, state and log then go under a
// writable directory (a tmpfs), made private to the user.
func home(s ConnSpec) string {
	h := s.v("herd_home")
	if h == "" {
		return ""
	}
	return `HOME=` + shellQuote(h) + `; export HOME; (umask 077; mkdir -p "$HOME") || exit ` + fmt.Sprint(ExitBootstrapFailed) + `; `
}

// seedStep copies the agent from the parent's cache into the target's,
// when the parent has a copy whose sha256 is the expected one and the
// target has none, by running the tool once more with the binary on its
// stdin. Any failure is ignored: the bootstrap that follows then asks the
// controller for the binary as usual, and it checks the seeded directory
// and the agent its hash exactly as for a binary the controller sent.
func seedStep(sd *Seed, enter, home string) string {
	pdir := `"${HOME:?}"/.cache/herd`
	if sd.ParentDir != "" {
		pdir = AgentDirWord(sd.ParentDir)
	}
	tdir := `"${HOME:?}"/.cache/herd`
	if sd.TargetDir != "" {
		tdir = AgentDirWord(sd.TargetDir)
	}
	h := shellQuote(sd.Hash)
	inside := home + `umask 077; d=` + tdir + `/` + h + `; [ -e "$d/herd" ] && exit 0; mkdir -p "$d" && t="$d/.herd.$$" && cat >"$t" && chmod 700 "$t" && mv -f "$t" "$d/herd" || rm -f "$t"`
	return `herd_pf=` + pdir + `/` + h + `/herd; ` +
		`if [ -f "$herd_pf" ] && [ "$(sha256sum <"$herd_pf" 2>/dev/null | cut -d" " -f1)" = ` + h + ` ]; then ` +
		enter + ` ` + shellQuote(inside) + ` <"$herd_pf" >/dev/null 2>&1; fi`
}

// AgentDirWord is an agent directory as a shell word, "~" and a leading
// "~/" meaning the remote $HOME: the bootstrap snippet (package bootstrap)
// and the parent-cache seeding above spell it the same way.
func AgentDirWord(agentDir string) string {
	switch {
	case agentDir == "~":
		return `"${HOME:?}"`
	case strings.HasPrefix(agentDir, "~/"):
		return `"${HOME:?}"/` + ShellQuote(agentDir[2:])
	}
	return ShellQuote(agentDir)
}

// ExitBootstrapFailed is the exit status of a bootstrap step that failed
// on the target (here: herd_home cannot be made). Package bootstrap, which
// imports this one, uses the same constant.
const ExitBootstrapFailed = 96
