package become

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// Methods herd knows, by the name used in policies and inventories
// (become_method, herd_become_method, ansible_become_method).
const (
	Sudo = "sudo"
	Su   = "su"
	Doas = "doas"
)

// sudoPrompt is what sudo prints instead of its localised prompt, so the
// broker recognises it without guessing.
const sudoPrompt = "herd-become password: "

var userRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)

// Validate checks method and user before anything runs, so a typo is a
// clear error instead of a tool's usage text.
func Validate(method, user string) error {
	switch method {
	case Sudo, Su, Doas:
	default:
		return fmt.Errorf("unknown become method %q (known: sudo, su, doas)", method)
	}
	if !userRE.MatchString(user) {
		return fmt.Errorf("become user %q is not a valid user name", user)
	}
	return nil
}

// Command returns the argv that runs argv as user through method. argv[0]
// must be an absolute path. Nothing secret goes in here.
func Command(method, user string, argv []string) ([]string, error) {
	if err := Validate(method, user); err != nil {
		return nil, err
	}
	if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		return nil, fmt.Errorf("become: command must start with an absolute path")
	}
	switch method {
	case Sudo:
		// -H: HOME of the target user, so its state and log are its own.
		return append([]string{toolPath(Sudo), "-H", "-p", sudoPrompt, "-u", user, "--"}, argv...), nil
	case Doas:
		return append([]string{toolPath(Doas), "-u", user, "--"}, argv...), nil
	default: // su
		quoted := make([]string, len(argv))
		for i, a := range argv {
			quoted[i] = shellQuote(a)
		}
		return []string{toolPath(Su), "-c", "exec " + strings.Join(quoted, " "), user}, nil
	}
}

// toolPath finds the tool on PATH or in the usual places, because an SSH
// exec channel may have a minimal PATH.
func toolPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"} {
		if p, err := exec.LookPath(d + "/" + name); err == nil {
			return p
		}
	}
	return name
}

// isPrompt reports whether the text a tool printed since the last answer
// ends with a password prompt. sudo prints our own prompt; su and doas print
// "Password:" or "doas (user@host) password:".
func isPrompt(method, text string) bool {
	t := strings.TrimRight(text, " \t")
	if method == Sudo && strings.HasSuffix(t, strings.TrimSpace(sudoPrompt)) {
		return true
	}
	last := t[strings.LastIndexByte(t, '\n')+1:]
	return strings.HasSuffix(last, ":") && strings.Contains(strings.ToLower(last), "password")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
