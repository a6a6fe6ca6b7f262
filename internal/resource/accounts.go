package resource

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The user and group kinds read the account databases themselves instead of
// going through os/user: the static agent has no cgo, and the pure-Go
// fallback cannot list a user's groups or see /etc/shadow. Only the files
// count; NSS sources such as LDAP are outside what herd manages.

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name, home, shell, gecos string
	uid, gid                 int
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	name    string
	gid     int
	members []string
}

// accounts is a snapshot of the account files of one machine.
type accounts struct {
	users  []passwdEntry
	groups []groupEntry
	// hashes maps a user to the password field of /etc/shadow; nil when
	// shadow could not be read (not root), which callers must tell apart
	// from "no hash".
	hashes map[string]string
}

// etcDir is where the account files live; tests point resources elsewhere.
const etcDir = "/etc"

// readAccounts loads passwd, group and, when readable, shadow from dir.
func readAccounts(dir string) (*accounts, error) {
	a := &accounts{}
	var err error
	if a.users, err = parseFile(filepath.Join(dir, "passwd"), parsePasswd); err != nil {
		return nil, err
	}
	if a.groups, err = parseFile(filepath.Join(dir, "group"), parseGroup); err != nil {
		return nil, err
	}
	hashes, err := parseFile(filepath.Join(dir, "shadow"), parseShadow)
	switch {
	case err == nil:
		a.hashes = hashes
	case errors.Is(err, os.ErrPermission):
	default:
		return nil, err
	}
	return a, nil
}

func parseFile[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	fh, err := os.Open(path)
	if err != nil {
		var zero T
		if errors.Is(err, os.ErrNotExist) && filepath.Base(path) == "shadow" {
			return zero, os.ErrPermission // no shadow file: hashes unknown, as when unreadable
		}
		return zero, err
	}
	defer fh.Close()
	v, err := parse(fh)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// fields splits the non-comment lines of an account file into colon
// separated fields, checking that each has at least min of them.
func fields(r io.Reader, min int, each func(line int, f []string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// NIS compat entries (+name, -name, +@netgroup) are not accounts.
		if line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < min {
			return fmt.Errorf("line %d: %d fields, want at least %d", n, len(f), min)
		}
		if err := each(n, f); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

func parseID(what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q is not a number", what, s)
	}
	return n, nil
}

// parsePasswd reads the passwd(5) format: name:x:uid:gid:gecos:home:shell.
func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := fields(r, 7, func(_ int, f []string) error {
		uid, err := parseID("uid", f[2])
		if err != nil {
			return err
		}
		gid, err := parseID("gid", f[3])
		if err != nil {
			return err
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, gecos: f[4], home: f[5], shell: f[6]})
		return nil
	})
	return out, err
}

// parseGroup reads the group(5) format: name:x:gid:member,member.
func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := fields(r, 4, func(_ int, f []string) error {
		gid, err := parseID("gid", f[2])
		if err != nil {
			return err
		}
		g := groupEntry{name: f[0], gid: gid}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				g.members = append(g.members, m)
			}
		}
		out = append(out, g)
		return nil
	})
	return out, err
}

// parseShadow reads the shadow(5) format and keeps only name → password
// field. Errors never quote a line: it holds a hash.
func parseShadow(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	err := fields(r, 2, func(_ int, f []string) error {
		out[f[0]] = f[1]
		return nil
	})
	return out, err
}

func (a *accounts) user(name string) (passwdEntry, bool) {
	for _, u := range a.users {
		if u.name == name {
			return u, true
		}
	}
	return passwdEntry{}, false
}

func (a *accounts) group(name string) (groupEntry, bool) {
	for _, g := range a.groups {
		if g.name == name {
			return g, true
		}
	}
	return groupEntry{}, false
}

func (a *accounts) groupByID(gid int) (groupEntry, bool) {
	for _, g := range a.groups {
		if g.gid == gid {
			return g, true
		}
	}
	return groupEntry{}, false
}

// groupGID resolves a group given by name or number; ok is false when a
// name is not in the group file (yet: it may be created later in the run).
func (a *accounts) groupGID(group string) (gid int, ok bool) {
	if n, err := strconv.Atoi(group); err == nil && n >= 0 {
		return n, true
	}
	g, ok := a.group(group)
	return g.gid, ok
}

// groupLabel names a gid for summaries: its group name when it has one.
func (a *accounts) groupLabel(gid int) string {
	if g, ok := a.groupByID(gid); ok {
		return g.name
	}
	return strconv.Itoa(gid)
}

// memberOf lists, sorted, the groups that name user as a member: the
// supplementary groups, as /etc/group records them.
func (a *accounts) memberOf(user string) []string {
	var out []string
	for _, g := range a.groups {
		for _, m := range g.members {
			if m == user {
				out = append(out, g.name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// validAccountName rejects names that would break the colon-separated files
// or the command lines built from them. The shadow tools apply their own,
// stricter, rules.
func validAccountName(kind, name string) error {
	if name == "" || strings.ContainsAny(name, ":,\n\t /") || strings.HasPrefix(name, "-") {
		return fmt.Errorf("%s %q: not a valid name (no colon, comma, slash, whitespace or leading dash)", kind, name)
	}
	return nil
}
