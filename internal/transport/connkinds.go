package transport

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds herd knows. Each runs `/bin/sh -c <bootstrap>` inside its
// target, with the tool's stdin and stdout as the agent's, so none may
// allocate a terminal (that is why machinectl goes through nsenter, as
// Mitogen does: `machinectl shell` only offers a pty).
func init() {
	RegisterConnKind(&ConnKind{Name: "local", Doc: "this machine (or the herd_via host) as the login user",
		Enter: func(s ConnSpec, _ string) (Invocation, error) {
			return Invocation{Argv: []string{"/bin/sh", "-c"}}, nil
		}})
	RegisterConnKind(&ConnKind{Name: "chroot", Tool: "chroot", Doc: "a directory: chroot DIR /bin/sh -c ...",
		Enter: enterChroot})
	RegisterConnKind(&ConnKind{Name: "setns", Tool: "nsenter", Doc: "a process's namespaces (nsenter -t PID -a) or a named network namespace (ip netns exec)",
		Enter: enterSetns}, "nsenter")
	for _, tool := range []string{"docker", "podman"} {
		RegisterConnKind(&ConnKind{Name: tool, Tool: tool, Doc: "a running container: " + tool + " exec -i",
			Enter: enterEngine(tool)})
	}
	RegisterConnKind(&ConnKind{Name: "lxc", Tool: "lxc-attach", Doc: "a classic LXC container: lxc-attach -n NAME",
		Enter: enterLXC})
	RegisterConnKind(&ConnKind{Name: "lxd", Tool: "lxc", Doc: "an LXD/Incus container: lxc exec NAME",
		Enter: enterLXD})
	RegisterConnKind(&ConnKind{Name: "machinectl", Tool: "machinectl", Doc: "a systemd-nspawn machine, entered by its leader's namespaces",
		Enter: enterMachine})
	RegisterConnKind(&ConnKind{Name: "kubectl", Tool: "kubectl", Doc: "a pod's container: kubectl exec -i",
		Enter: enterKubectl})
}

func enterChroot(s ConnSpec, tool string) (Invocation, error) {
	dir := s.v("herd_chroot_dir")
	if dir == "" {
		dir = s.Target
	}
	if !strings.HasPrefix(dir, "/") {
		return Invocation{}, fmt.Errorf("set herd_host (or herd_chroot_dir) to the chroot directory, an absolute path (got %q)", dir)
	}
	check := `[ -x ` + shellQuote(dir) + `/bin/sh ] || ` + connFail("chroot: "+dir+" on "+s.Where+" has no /bin/sh") +
		`; [ -c ` + shellQuote(dir) + `/dev/null ] || ` + connFail("chroot: "+dir+" on "+s.Where+" has no /dev/null (bind-mount /dev there, or mknod it)") +
		`; [ -e ` + shellQuote(dir) + `/proc/self/exe ] || ` + connFail("chroot: "+dir+" on "+s.Where+" has no /proc (mount -t proc proc "+dir+"/proc)")
	argv := []string{tool}
	if s.User != "" {
		argv = append(argv, "--userspec="+s.User)
	}
	return Invocation{Check: check, Argv: append(argv, dir, "/bin/sh", "-c")}, nil
}

func enterSetns(s ConnSpec, tool string) (Invocation, error) {
	pid, netns := s.v("herd_setns_pid"), s.v("herd_netns")
	if pid == "" && netns == "" {
		if t := s.target(); strings.Trim(t, "0123456789") == "" {
			pid = t
		} else {
			netns = t
		}
	}
	if pid != "" {
		if strings.Trim(pid, "0123456789") != "" {
			return Invocation{}, fmt.Errorf("herd_setns_pid = %q is not a process id", pid)
		}
		check := `[ -d /proc/` + pid + `/ns ] || ` + connFail("nsenter: no process "+pid+" on "+s.Where)
		// -r -w: the process's root and working directory too, so a
		// container's own filesystem is what the agent sees.
		return Invocation{Check: check, Argv: []string{tool, "-t", pid, "-a", "-r", "-w", "/bin/sh", "-c"}}, nil
	}
	if strings.ContainsAny(netns, "/\x00") || netns == "." || netns == ".." {
		return Invocation{}, fmt.Errorf("herd_netns = %q is not a network namespace name", netns)
	}
	// A named netns has no other namespace: the files and processes are
	// the tool machine's own, only the network differs.
	ipTool := "ip"
	if s.v("herd_connection_tool") != "" {
		ipTool = tool
	}
	check := `[ -e /run/netns/` + shellQuote(netns) + ` ] || ` + connFail("ip netns: no network namespace "+netns+" on "+s.Where)
	return Invocation{Tool: ipTool, Check: check, Argv: []string{ipTool, "netns", "exec", netns, "/bin/sh", "-c"}}, nil
}

func enterEngine(engine string) func(ConnSpec, string) (Invocation, error) {
	return func(s ConnSpec, tool string) (Invocation, error) {
		c := s.target()
		if err := plainName(c); err != nil {
			return Invocation{}, err
		}
		check := `[ "$(` + shellQuote(tool) + ` inspect -f '{{.State.Running}}' ` + shellQuote(c) + ` 2>/dev/null)" = true ] || ` +
			connFail(engine+": container "+c+" is not running on "+s.Where)
		argv := []string{tool, "exec", "-i"}
		if s.User != "" {
			argv = append(argv, "-u", s.User)
		}
		return Invocation{Check: check, Argv: append(argv, c, "/bin/sh", "-c")}, nil
	}
}

func enterLXC(s ConnSpec, tool string) (Invocation, error) {
	c := s.target()
	if err := plainName(c); err != nil {
		return Invocation{}, err
	}
	check := `lxc-info -s -n ` + shellQuote(c) + ` 2>/dev/null | grep -q RUNNING || ` + connFail("lxc: container "+c+" is not running on "+s.Where)
	return Invocation{Check: check, Argv: []string{tool, "-n", c, "--", "/bin/sh", "-c"}}, nil
}

func enterLXD(s ConnSpec, tool string) (Invocation, error) {
	c := s.target()
	if err := plainName(c); err != nil {
		return Invocation{}, err
	}
	argv := []string{tool, "exec"}
	if r := s.v("herd_lxd_remote"); r != "" {
		c = r + ":" + c
	}
	return Invocation{Argv: append(argv, c, "--", "/bin/sh", "-c")}, nil
}

func enterMachine(s ConnSpec, tool string) (Invocation, error) {
	m := s.target()
	if err := plainName(m); err != nil {
		return Invocation{}, err
	}
	check := `herd_leader=$(` + shellQuote(tool) + ` show -p Leader --value ` + shellQuote(m) + ` 2>/dev/null) && [ -n "$herd_leader" ] || ` +
		connFail("machinectl: machine "+m+" is not running on "+s.Where) +
		`; command -v nsenter >/dev/null 2>&1 || ` + connFail("nsenter not installed on "+s.Where)
	argv := []string{"nsenter", "-t", "$herd_leader", "-a", "-r", "-w"}
	if s.User != "" {
		argv = append(argv, "setpriv", "--reuid="+s.User, "--regid="+s.User, "--init-groups")
	}
	return Invocation{Check: check, Argv: append(argv, "/bin/sh", "-c")}, nil
}

func enterKubectl(s ConnSpec, tool string) (Invocation, error) {
	pod := s.target()
	if err := plainName(pod); err != nil {
		return Invocation{}, err
	}
	var global []string
	if ctx := s.v("herd_kubectl_context", "ansible_kubectl_context"); ctx != "" {
		global = append(global, "--context", ctx)
	}
	if ns := s.v("herd_kubectl_namespace", "ansible_kubectl_namespace"); ns != "" {
		global = append(global, "-n", ns)
	}
	where := pod
	if len(global) > 0 {
		where += " (" + strings.Join(global, " ") + ")"
	}
	q := make([]string, len(global))
	for i, g := range global {
		q[i] = shellQuote(g)
	}
	get := strings.Join(append([]string{shellQuote(tool)}, q...), " ")
	check := `[ "$(` + get + ` get pod ` + shellQuote(pod) + ` -o 'jsonpath={.status.phase}' 2>/dev/null)" = Running ] || ` +
		connFail("kubectl: pod "+where+" is not running, seen from "+s.Where)
	argv := append(append([]string{tool}, global...), "exec", "-i", pod)
	if c := s.v("herd_kubectl_container", "ansible_kubectl_container"); c != "" {
		argv = append(argv, "-c", c)
	}
	return Invocation{Check: check, Argv: append(argv, "--", "/bin/sh", "-c")}, nil
}

// plainName refuses names a tool would take for an option or that no
// container can have.
func plainName(n string) error {
	if n == "" || strings.HasPrefix(n, "-") || strings.ContainsAny(n, " \t\n\x00") {
		return errors.New("the target name (herd_host, else the inventory name) " + fmt.Sprintf("%q", n) + " is not a container, pod or machine name")
	}
	return nil
}
